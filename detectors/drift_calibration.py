"""Calibrated drift thresholds: the flagging statistics and their null distribution by resampling.

The score Driftline reports is Evidently's statistic (:mod:`detectors.drift_methods`),
but in calibrated mode a feature is *flagged* on a robust statistic whose
distribution under no drift is estimated by resampling from the reference:

* numerical features: the window's values are placed in ``G`` cells cut at the
  reference's quantiles (ranks, so one or two extreme values move a cell count
  by one or two and nothing more). Two standardized rank scores are computed
  from the cell counts: *location* (the mean reference rank of the window's
  values, a Wilcoxon-Mann-Whitney statistic) and *scale* (the mean squared
  distance of the ranks from the median, a Mood statistic). The statistic is
  the larger of their absolute values, the scale one weighted by ``SCALE_WEIGHT``.
* categorical features (and numerical ones with at most 5 distinct values): a
  chi-square statistic of the window's counts per reference category against
  the reference's shares, divided by ``1 + m/n`` so it barely depends on the
  window size. The least frequent categories are merged into one cell expected
  at least 5 times in a window. Values never seen in the reference count in the window's
  size but in no cell: a couple of them change nothing, a large share shows as
  a deficit everywhere else.

Null distribution: the probabilities of the reference's cells are drawn from
``Dirichlet(reference counts)`` -- the distribution of the true mass between
the reference's order statistics, which is exactly how the reference's own
sampling error enters (a pseudo-reference; a numerical reference's n values cut
the line into n + 1 spacings, so its last cell holds one more) -- and a pseudo-window of ``m``
values is drawn from them (``Multinomial(m, p)``). For a continuous feature
this is the exact null of the statistic whatever the feature's distribution, so
features whose cells hold the same counts share one simulation.

Family-wise error: each of the ``F`` features is tested ``T`` times per window
(once on the window alone and, when windows are pooled, once on the window
pooled with the previous ones), each test at level ``alpha / (F T)``
(Bonferroni), so the chance that any feature is falsely flagged in a window
without drift is at most ``alpha`` whatever the dependence between features
and between the tests. The threshold is the simulated ``1 - alpha/(F T)``
quantile taken one standard error to the safe side (:func:`upper_quantile`).
Window sizes are bucketed (eighth-octaves, about 9% apart). A threshold depends on
nothing but the cells' counts, the bucket, the level, the number of replicates and
the seed, so it is computed once per process for every detector with the same ones
and, with a cache directory, once across restarts (:mod:`detectors.threshold_cache`).
A :class:`NullRequest` holds everything one simulation depends on and pickles, so a
caller can run :func:`simulate_threshold` elsewhere first (the collector does, on a worker
process) and store the result where :meth:`Calibrator.threshold` finds it.

>>> import numpy as np
>>> cells = RankCells.from_sorted(np.sort(np.random.default_rng(0).normal(size=5000)))
>>> calibrator = Calibrator(alpha=0.01, n_features=1, seed=0)
>>> 2.5 < calibrator.threshold(cells, 1000) < 3.2
True
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import numpy.typing as npt

from detectors.threshold_cache import ThresholdCache

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

RANK_CELLS = 32
"""Number of reference-quantile cells of a numerical feature's flagging statistic."""
SCALE_WEIGHT = 0.85
"""The scale score's weight in the numerical flag: under no drift it then sets the maximum in
about 1 window in 10, so the location test keeps nearly all of its power (a mean shift is the
commonest drift) while a change of spread about 18% larger than a location-only test would
need is still caught."""
MIN_EXPECTED = 5.0
"""A category expected fewer times than this in a window is merged with the other rare ones."""
CHUNK = 10_000


@dataclass(frozen=True)
class RankCells:
    """A numerical feature's reference cut at its quantiles, with the rank scores per cell."""

    edges: FloatArray
    """Cell k holds values in (edges[k-1], edges[k]]; the first and last cells are open."""
    ref_counts: IntArray
    null_alphas: FloatArray
    """Dirichlet parameters of the cells' true masses: n+1 uniform spacings, the last cell
    holding the spacing above the reference's maximum."""
    location: FloatArray
    """Centred mid-rank of each cell (reference mean 0)."""
    scale: FloatArray
    """Centred squared distance of each cell's mid-rank from 0.5 (reference mean 0)."""
    location_var: float
    scale_var: float

    @classmethod
    def from_sorted(cls, ordered: FloatArray) -> RankCells:
        n = len(ordered)
        n_cells = max(2, min(RANK_CELLS, n // 5))
        cuts = np.quantile(ordered, np.arange(1, n_cells) / n_cells, method="inverted_cdf")
        edges = np.unique(cuts)
        edges = edges[edges < ordered[-1]]
        ref_counts = np.bincount(np.searchsorted(edges, ordered, side="left"), minlength=len(edges) + 1)
        alphas = ref_counts.astype(np.float64)
        alphas[-1] += 1.0
        shares = alphas / alphas.sum()
        mid_rank = np.cumsum(shares) - shares / 2
        location = mid_rank - 0.5
        scale = location**2
        location, scale = location - shares @ location, scale - shares @ scale
        return cls(
            edges=edges.astype(np.float64),
            ref_counts=ref_counts.astype(np.int64),
            null_alphas=alphas,
            location=location,
            scale=scale,
            location_var=float(shares @ location**2),
            scale_var=float(shares @ scale**2),
        )

    @cached_property
    def key(self) -> tuple[str, tuple[int, ...]]:
        return ("rank", tuple(self.ref_counts.tolist()))

    @cached_property
    def ref_size(self) -> int:
        return int(self.ref_counts.sum())

    @cached_property
    def _scored_parts(self) -> tuple[tuple[FloatArray, float, float], ...]:
        """(scores, variance, weight) of the location and scale parts that vary."""
        parts = ((self.location, self.location_var, 1.0), (self.scale, self.scale_var, SCALE_WEIGHT))
        return tuple(part for part in parts if part[1] > 1e-15)

    def window_counts(self, values: FloatArray, ordered: bool = False) -> FloatArray:
        """Values per cell; ``ordered`` (sorted values) needs a search per edge, not per value."""
        if ordered and len(self.edges):
            at_most = np.searchsorted(values, self.edges, side="right")  # values in cells 0..k
            counts = np.empty(len(at_most) + 1)
            counts[0], counts[-1] = at_most[0], len(values) - at_most[-1]
            np.subtract(at_most[1:], at_most[:-1], out=counts[1:-1])
            return counts
        cells = np.searchsorted(self.edges, values, side="left")
        return np.bincount(cells, minlength=len(self.ref_counts)).astype(np.float64)

    def statistic(self, counts: FloatArray, size: int) -> FloatArray:
        """max(|location z|, SCALE_WEIGHT |scale z|) for window counts of shape (..., cells)."""
        inflation = 1.0 / size + 1.0 / self.ref_size
        parts = self._scored_parts
        if counts.ndim == 1:  # one window: the same arithmetic on Python floats, no array temporaries
            z = [
                weight * abs(float(counts @ scores) / size) / math.sqrt(var * inflation)
                for scores, var, weight in parts
            ]
            return np.array(max(z, default=0.0))
        z_parts = [
            weight * np.abs(counts @ scores / size) / math.sqrt(var * inflation)
            for scores, var, weight in parts
        ]
        if not z_parts:
            return np.zeros(counts.shape[:-1])
        return np.maximum.reduce(z_parts)


@dataclass(frozen=True)
class CountCells:
    """A categorical feature's reference counts per category, for the chi-square flag."""

    index: dict[Hashable, int]
    ref_counts: IntArray

    @classmethod
    def from_counter(cls, counts: Counter[Hashable]) -> CountCells:
        ordered = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
        return cls(
            index={value: i for i, (value, _) in enumerate(ordered)},
            ref_counts=np.array([count for _, count in ordered], dtype=np.int64),
        )

    @cached_property
    def key(self) -> tuple[str, tuple[int, ...]]:
        return ("counts", tuple(self.ref_counts.tolist()))

    @property
    def null_alphas(self) -> FloatArray:
        """Dirichlet parameters of the categories' probabilities: the reference's counts."""
        return self.ref_counts.astype(np.float64)

    def window_counts(self, values: list[Hashable]) -> FloatArray:
        counts = np.zeros(len(self.ref_counts))
        for value, count in Counter(values).items():
            position = self.index.get(value)
            if position is not None:
                counts[position] = count
        return counts

    def merged(self, counts: FloatArray, size: int) -> tuple[FloatArray, FloatArray]:
        """Counts and reference shares with the least frequent categories merged into one cell
        expected at least ``MIN_EXPECTED`` times in a window of ``size`` (cells are sorted by
        decreasing reference frequency, so the merged ones are a tail). The most frequent
        category always keeps its own cell, so a rare class of a binary feature is still seen."""
        shares = self.ref_counts / self.ref_counts.sum()
        start = int(np.count_nonzero(shares * size >= MIN_EXPECTED))
        if start == len(shares):
            return counts, shares
        while start > 1 and shares[start:].sum() * size < MIN_EXPECTED:
            start -= 1
        tail_counts = counts[..., start:].sum(axis=-1, keepdims=True)
        merged_counts = np.concatenate((counts[..., :start], tail_counts), axis=-1)
        return merged_counts, np.append(shares[:start], shares[start:].sum())

    def statistic(self, counts: FloatArray, size: int) -> FloatArray:
        """Chi-square of counts (..., categories) against the reference shares, over 1 + m/n."""
        merged_counts, shares = self.merged(counts, size)
        expected = shares * size
        chi2 = np.sum((merged_counts - expected) ** 2 / expected, axis=-1)
        return chi2 / (1.0 + size / int(self.ref_counts.sum()))


Cells = RankCells | CountCells


def size_bucket(size: int) -> int:
    """The representative window size of ``size``'s eighth-octave bucket."""
    if size < 1:
        raise ValueError(f"window size must be >= 1, got {size!r}")
    return max(1, round(2 ** (round(8 * math.log2(size)) / 8)))


@dataclass
class Calibrator:
    """Thresholds at family-wise level ``alpha`` over ``n_features`` features tested
    ``tests_per_feature`` times each per window, cached per (cells, window-size bucket)."""

    alpha: float
    n_features: int
    seed: int = 0
    n_sims: int = 0
    """Null replicates per (cells, size); 0 means ``clip(50 F T / alpha, 20,000, 200,000)``, so
    about 50 replicates lie beyond the threshold and its sampling error stays small."""
    tests_per_feature: int = 1
    cache: ThresholdCache = field(default_factory=ThresholdCache, repr=False)
    """Where thresholds are shared: the process-wide memory store, and a folder if it has one."""
    _cache: dict[tuple[tuple[str, tuple[int, ...]], int], float] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha!r}")
        if self.n_features < 1:
            raise ValueError(f"n_features must be >= 1, got {self.n_features!r}")
        if self.tests_per_feature < 1:
            raise ValueError(f"tests_per_feature must be >= 1, got {self.tests_per_feature!r}")
        if self.n_sims == 0:
            self.n_sims = int(min(200_000, max(20_000, math.ceil(50 / self.level))))

    @property
    def level(self) -> float:
        """The false-alarm level of one test of one feature."""
        return self.alpha / (self.n_features * self.tests_per_feature)

    def threshold(self, cells: Cells, size: int) -> float:
        """The ``1 - level`` quantile of the statistic under no drift for windows of ``size``."""
        key = (cells.key, size_bucket(size))
        found = self._cache.get(key)
        if found is None:
            request = self.request(cells, size)
            found = self.cache.threshold(request.key(), lambda: simulate_threshold(request))
            self._cache[key] = found
        return found

    def request(self, cells: Cells, size: int) -> NullRequest:
        """The simulation that gives the threshold of ``cells`` for windows of ``size``."""
        return NullRequest(cells, size_bucket(size), self.n_sims, self.seed, self.level)

    def pending(self, cells: Cells, size: int) -> NullRequest | None:
        """The simulation :meth:`threshold` would run for ``(cells, size)``; None when it is stored."""
        request = self.request(cells, size)
        if (cells.key, request.bucket) in self._cache or self.cache.lookup(request.key()) is not None:
            return None
        return request

    def thresholds_for(self, cells: Cells) -> dict[int, float]:
        """The thresholds computed so far for ``cells``, by window-size bucket."""
        return {int(bucket): value for (key, bucket), value in self._cache.items() if key == cells.key}


@dataclass(frozen=True)
class NullRequest:
    """One threshold's simulation, everything it depends on: picklable, for a worker process."""

    cells: Cells
    bucket: int
    n_sims: int
    seed: int
    level: float

    def key(self) -> dict[str, object]:
        """The threshold's key in a :class:`~detectors.threshold_cache.ThresholdCache`
        (the statistics use only the counts, so the cells' values are left out)."""
        kind, counts = self.cells.key
        return {
            "cells": kind,
            "counts": list(counts),
            "bucket": self.bucket,
            "n_sims": self.n_sims,
            "seed": self.seed,
            "level": self.level,
            "scale_weight": SCALE_WEIGHT,
            "min_expected": MIN_EXPECTED,
            "chunk": CHUNK,
            "numpy": np.__version__,
        }


def simulate_threshold(request: NullRequest) -> float:
    """The threshold ``request`` describes, simulated (a pure function of the request)."""
    rng = np.random.default_rng([request.seed, request.bucket])
    null = null_statistics(request.cells, request.bucket, request.n_sims, rng)
    return upper_quantile(null, request.level)


def upper_quantile(null: FloatArray, level: float) -> float:
    """A threshold exceeded with probability at most ``level`` with about 84% confidence.

    With ``k = level * len(null)`` replicates expected beyond the true quantile,
    the ``k - sqrt(k)``-th largest replicate (one standard deviation of that count
    to the safe side) is taken, so the threshold's own sampling error (about
    +-15% of the level at 50 replicates) errs towards fewer false alarms.
    """
    expected = level * len(null)
    rank = max(1, math.floor(expected - math.sqrt(expected)))
    return float(np.partition(null, len(null) - rank)[len(null) - rank])


def null_statistics(cells: Cells, size: int, n_sims: int, rng: np.random.Generator) -> FloatArray:
    """The flagging statistic for ``n_sims`` pseudo-windows of ``size`` under no drift."""
    alphas = cells.null_alphas
    parts = []
    for start in range(0, n_sims, CHUNK):
        batch = min(CHUNK, n_sims - start)
        gammas = rng.gamma(alphas, size=(batch, len(alphas)))
        probabilities = gammas / gammas.sum(axis=1, keepdims=True)
        counts = rng.multinomial(size, probabilities).astype(np.float64)
        parts.append(cells.statistic(counts, size))
    return np.concatenate(parts)
