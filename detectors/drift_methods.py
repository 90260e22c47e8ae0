"""The drift statistics, one pure function per method, equal to Evidently 0.7.23's to 1e-9.

Every function takes the reference prepared once (:class:`NumericReference` or
:class:`CategoricalReference`) and the window's present values (missing values
already removed), and returns the statistic Evidently reports: a p-value for
``ks``, ``chisquare`` and ``ztest`` (small means drift), a distance for
``wasserstein``, ``psi`` and ``jensenshannon`` (large means drift).

Evidently's numeric PSI and Jensen-Shannon bins (``get_binned_data``) are
Sturges bins over the reference and the window together, so they depend on the
window and are computed per window; what the reference allows (sorted values,
prefix sums, the standard deviation, category counts) is prepared once.

>>> import numpy as np
>>> ref = NumericReference.from_values(np.arange(100.0))
>>> round(wasserstein(ref, np.arange(100.0) + 10.0), 6)
0.346427
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import special, stats
from scipy.spatial import distance

Method = Literal["ks", "wasserstein", "psi", "jensenshannon", "chisquare", "ztest"]
METHODS: tuple[Method, ...] = ("ks", "wasserstein", "psi", "jensenshannon", "chisquare", "ztest")
P_VALUE_METHODS: frozenset[str] = frozenset({"ks", "chisquare", "ztest"})
EVIDENTLY_THRESHOLDS: dict[str, float] = {
    "ks": 0.05,
    "chisquare": 0.05,
    "ztest": 0.05,
    "wasserstein": 0.1,
    "psi": 0.1,
    "jensenshannon": 0.1,
}
"""Evidently's default threshold per method (``StatTest.default_threshold``)."""

FloatArray = npt.NDArray[np.float64]
_KS_2SAMP = getattr(stats.ks_2samp, "__wrapped__", stats.ks_2samp)
_CHISQUARE = getattr(stats.chisquare, "__wrapped__", stats.chisquare)
"""scipy's tests under their NaN-policy wrappers (see :func:`ks`): inputs here are 1-D and present."""
_CROSSING_SIZES = 4
"""Window sizes whose :meth:`NumericReference.crossings` a reference keeps."""


@dataclass(frozen=True)
class NumericReference:
    """A numerical reference prepared once: sorted values, centred prefix sums, std, counts."""

    sorted_values: FloatArray
    centre: float
    """Subtracted before the prefix sums so Wasserstein keeps its precision far from zero."""
    prefix_sums: FloatArray
    """``prefix_sums[k]`` is the sum of the ``k`` smallest centred values."""
    cdf_integral: FloatArray
    """G(t) = integral of F_ref up to t (up to a constant), at each sorted reference value."""
    std: float
    n_unique: int
    _crossings: dict[int, tuple[FloatArray, FloatArray, FloatArray]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def from_values(cls, values: npt.NDArray[np.float64]) -> NumericReference:
        ordered = np.sort(np.asarray(values, dtype=np.float64))
        if len(ordered) == 0:
            raise ValueError("a numerical reference needs at least one present value, got 0")
        centre = float(ordered[len(ordered) // 2])
        prefix = np.concatenate(([0.0], np.cumsum(ordered - centre)))
        ranks = np.searchsorted(ordered, ordered, side="right")
        return cls(
            sorted_values=ordered,
            centre=centre,
            prefix_sums=prefix,
            cdf_integral=(ranks * (ordered - centre) - prefix[ranks]) / len(ordered),
            std=float(np.std(ordered)),
            n_unique=len(np.unique(ordered)),
        )

    def crossings(self, m: int) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Where F_ref reaches each level j/m of a window of ``m`` values: the reference value
        (``-inf`` for level 0), the level, and G there (see :func:`_wasserstein_distance`).

        They depend on the window's size only, so they are kept for the last few sizes
        (read-only): most windows of a feature have the same number of values.
        """
        cached = self._crossings.get(m)
        if cached is not None:
            return cached
        n = len(self.sorted_values)
        levels = np.arange(m + 1, dtype=np.int64)
        below_crossing = np.maximum(-((-levels * n) // m) - 1, 0)  # ceil(j n / m) - 1: F_ref reaches j/m
        crossing = self.sorted_values[below_crossing]
        crossing[0] = -np.inf  # F_ref >= 0 everywhere
        arrays = (crossing, levels / m, self.cdf_integral[below_crossing])
        for array in arrays:
            array.setflags(write=False)
        if len(self._crossings) >= _CROSSING_SIZES:
            self._crossings.clear()
        self._crossings[m] = arrays
        return arrays

    @cached_property
    def counts(self) -> Counter[Hashable]:
        """Count per distinct value, built on first use: only few-valued features (and methods
        that count, when chosen for a many-valued one) need it, and as a ``Counter`` of a
        continuous feature it would hold a Python object per reference value."""
        unique, counts = np.unique(self.sorted_values, return_counts=True)
        return Counter(dict(zip(unique.tolist(), counts.tolist(), strict=True)))

    @property
    def size(self) -> int:
        return len(self.sorted_values)


@dataclass(frozen=True)
class CategoricalReference:
    """A categorical (or few-valued numerical) reference prepared once: counts per value."""

    counts: Counter[Hashable]
    size: int

    @classmethod
    def from_values(cls, values: Sequence[Hashable] | npt.NDArray[np.generic]) -> CategoricalReference:
        items = list(values.tolist() if isinstance(values, np.ndarray) else values)
        if not items:
            raise ValueError("a categorical reference needs at least one present value, got 0")
        return cls(counts=Counter(items), size=len(items))

    @property
    def n_unique(self) -> int:
        return len(self.counts)


Reference = NumericReference | CategoricalReference


def ks(reference: NumericReference, current: FloatArray) -> float:
    """Two-sample Kolmogorov-Smirnov p-value (scipy's ``ks_2samp``, as Evidently).

    scipy's function under its NaN-policy wrapper when there is one: the wrapper
    inspects signatures and checks for NaN on every call, half the cost of a test
    between 1,000 and 200 values; the values here are present and 1-D (an empty
    window still goes through the wrapper, which answers NaN).
    """
    if len(current) == 0:
        return float(stats.ks_2samp(reference.sorted_values, current).pvalue)
    return float(_KS_2SAMP(reference.sorted_values, current).pvalue)


def wasserstein(reference: NumericReference, current: FloatArray, ordered: bool = False) -> float:
    """First Wasserstein distance divided by ``max(std(reference), 0.001)``.

    Computed in O(m log n) from the reference's prefix sums instead of sorting
    the reference and the window together on every call; ``ordered`` says
    ``current`` is sorted already.
    """
    values = np.asarray(current, dtype=np.float64)
    norm = max(reference.std, 0.001)
    return _wasserstein_distance(reference, values if ordered else np.sort(values)) / norm


def psi(reference: Reference, current: npt.NDArray[np.generic]) -> float:
    """Population stability index on Evidently's bins (zeros filled as Evidently does)."""
    ref_share, cur_share = binned_shares(reference, current, fill_zeroes=True)
    return float(np.sum((ref_share - cur_share) * np.log(ref_share / cur_share)))


def jensenshannon(reference: Reference, current: npt.NDArray[np.generic]) -> float:
    """Jensen-Shannon distance (natural log) on Evidently's bins."""
    ref_share, cur_share = binned_shares(reference, current, fill_zeroes=False)
    return float(distance.jensenshannon(ref_share, cur_share))


def chisquare(reference: Reference, current: npt.NDArray[np.generic]) -> float:
    """Chi-square goodness-of-fit p-value of the window's counts against the scaled reference's."""
    ref_counts, cur_counts = _aligned_counts(reference.counts, _counter(current))
    scale = len(current) / reference.size
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(_CHISQUARE(cur_counts, ref_counts * scale)[1])


def ztest(reference: Reference, current: npt.NDArray[np.generic]) -> float:
    """Two-proportion z-test p-value; the first value in sorted order is the 'zero' class."""
    cur_counter = _counter(current)
    ref_keys, cur_keys = set(reference.counts), set(cur_counter)
    if len(ref_keys) == 1 and len(cur_keys) == 1 and ref_keys == cur_keys:
        return 1.0
    first = sorted(ref_keys | cur_keys)[0]  # type: ignore[type-var]
    n1, n2 = reference.size, len(current)
    p1 = float(n1 - reference.counts.get(first, 0)) / n1
    p2 = float(n2 - cur_counter.get(first, 0)) / n2
    pooled = float(p1 * n1 + p2 * n2) / (n1 + n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - special.ndtr(np.abs(z))))


def evaluate(
    method: str, reference: Reference, current: npt.NDArray[np.generic], ordered: bool = False
) -> float:
    """Dispatch to the function of ``method``; numerical-only methods need a NumericReference.

    ``ordered`` says ``current`` is sorted already (no statistic depends on the order).
    """
    if method in ("ks", "wasserstein"):
        if not isinstance(reference, NumericReference):
            raise ValueError(f"method {method!r} needs a numerical feature")
        values = np.asarray(current, dtype=np.float64)
        return ks(reference, values) if method == "ks" else wasserstein(reference, values, ordered)
    if method == "psi":
        return psi(reference, current)
    if method == "jensenshannon":
        return jensenshannon(reference, current)
    if method == "chisquare":
        return chisquare(reference, current)
    if method == "ztest":
        return ztest(reference, current)
    raise ValueError(f"unknown drift method {method!r}; expected one of {', '.join(METHODS)}")


def is_drifted(method: str, score: float, threshold: float) -> bool:
    """Evidently's comparison: ``p <= t`` for ks, ``p < t`` for chisquare and ztest, ``d >= t`` else."""
    if method == "ks":
        return score <= threshold
    if method in P_VALUE_METHODS:
        return score < threshold
    return score >= threshold


def binned_shares(
    reference: Reference, current: npt.NDArray[np.generic], *, fill_zeroes: bool
) -> tuple[FloatArray, FloatArray]:
    """Evidently's ``get_binned_data``: Sturges bins for a numerical reference with > 20
    unique values, otherwise one bin per value seen in the reference or the window."""
    if isinstance(reference, NumericReference) and reference.n_unique > 20:
        ref_share, cur_share = _sturges_shares(reference, np.asarray(current, dtype=np.float64))
    else:
        ref_counts, cur_counts = _aligned_counts(reference.counts, _counter(current))
        ref_share, cur_share = ref_counts / reference.size, cur_counts / len(current)
    if fill_zeroes:
        ref_share, cur_share = _fill_zeroes(ref_share), _fill_zeroes(cur_share)
    return ref_share, cur_share


def _sturges_shares(reference: NumericReference, current: FloatArray) -> tuple[FloatArray, FloatArray]:
    ref = reference.sorted_values
    edges = np.histogram_bin_edges(np.concatenate((ref, current)), bins="sturges")
    return _histogram_sorted(ref, edges) / len(ref), np.histogram(current, edges)[0] / len(current)


def _histogram_sorted(ordered: FloatArray, edges: FloatArray) -> FloatArray:
    """``np.histogram(values, edges)[0]`` for sorted values: bins [e_i, e_i+1), the last closed."""
    below = np.searchsorted(ordered, edges, side="left")
    below[-1] = np.searchsorted(ordered, edges[-1], side="right")
    return np.diff(below).astype(np.float64)


def _fill_zeroes(shares: FloatArray) -> FloatArray:
    filled = shares.copy()
    smallest = float(filled[filled != 0].min())
    filled[filled == 0] = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return filled


def _counter(values: npt.NDArray[np.generic]) -> Counter[Hashable]:
    return Counter(np.asarray(values).tolist())


def _aligned_counts(
    reference: Counter[Hashable], current: Counter[Hashable]
) -> tuple[FloatArray, FloatArray]:
    # A fixed order: a set's order follows the process's string hash seed, and the sums below
    # would then differ in the last bit from one run (or restart) of the collector to the next.
    keys = sorted(set(reference) | set(current), key=lambda key: (type(key).__name__, str(key)))
    ref = np.array([reference.get(key, 0) for key in keys], dtype=np.float64)
    cur = np.array([current.get(key, 0) for key in keys], dtype=np.float64)
    return ref, cur


def _wasserstein_distance(reference: NumericReference, ordered: FloatArray) -> float:
    """Integral of |F_ref - F_cur| split at the window's sorted values ``ordered``.

    On the interval between the window's j-th and (j+1)-th values F_cur is j/m;
    there the integral of |F_ref - j/m| is a difference of G(t) = integral of
    F_ref up to t, which the reference's prefix sums give in O(log n).
    """
    ref = reference.sorted_values
    points = np.concatenate(([min(ref[0], ordered[0])], ordered, [max(ref[-1], ordered[-1])]))
    starts, ends = points[:-1], points[1:]
    g_points = _integral_of_cdf(reference, points)
    g_start, g_end = g_points[:-1], g_points[1:]
    crossing, level, g_crossing = reference.crossings(len(ordered))
    split = np.clip(crossing, starts, ends)
    g_split = np.where(crossing <= starts, g_start, np.where(crossing >= ends, g_end, g_crossing))
    below = level * (split - starts) - (g_split - g_start)
    above = (g_end - g_split) - level * (ends - split)
    return float(np.sum(below) + np.sum(above))


def _integral_of_cdf(reference: NumericReference, points: FloatArray) -> FloatArray:
    """G(t) = integral of F_ref from -inf to t, up to a constant shared by all t."""
    ranks = np.searchsorted(reference.sorted_values, points, side="right")
    centred = points - reference.centre
    return (ranks * centred - reference.prefix_sums[ranks]) / reference.size
