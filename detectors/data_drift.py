"""Data drift: per-feature drift against the reference, and the share of drifted features.

Each feature gets a method once, at :meth:`DataDriftDetector.fit`, by
Evidently's default rules (:mod:`detectors.method_choice`) unless configured,
and every window reports Evidently's statistic for it
(:mod:`detectors.drift_methods`). What decides that a feature *drifted* depends
on the mode:

* ``mode="evidently"``: Evidently's fixed thresholds (p-value 0.05 for ks,
  chisquare and ztest; 0.1 for wasserstein, psi and jensenshannon).
* ``mode="calibrated"`` (the default): a robust rank or count statistic with a
  per-feature threshold from resampling the reference, so that in a window
  without drift the chance that *any* feature is flagged is at most ``alpha``
  (:mod:`detectors.drift_calibration`). Thresholds are computed per window
  size on first use and cached: in memory for every detector of the process,
  and on disk when ``threshold_cache`` is a :class:`~detectors.threshold_cache.ThresholdCache`
  with a folder.

In calibrated mode ``pooled_windows`` k > 1 also tests each feature on the
window pooled with the previous k - 1 windows (their cell counts summed; the
null of the sum is exact, so the same calibration applies), with the family-wise
alpha split between the two tests. A shift too small to see in one window shows
in k of them: at 0.1 standard deviation with windows of 1,000 and a 50,000-row
reference one window is flagged about a third of the time, with four pooled
windows 87% of windows are (``bench/false_alarms.py``). The price: a drift
that has ended keeps a feature flagged for up to k - 1 more windows.

``persistence`` k declares drift only after k consecutive drifted windows,
per feature and for the dataset. Nothing assumes feature names, so the same
detector serves prediction drift on an outputs table.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> ref = FeatureTable({"x": "numerical"}, {"x": rng.normal(size=2000)}, 2000)
>>> cur = FeatureTable({"x": "numerical"}, {"x": rng.normal(1.0, size=500)}, 500)
>>> detector = DataDriftDetector()
>>> detector.fit(ref)
>>> result = detector.evaluate(cur)
>>> result.detected, result.features[0].method
(True, 'wasserstein')
"""

from __future__ import annotations

import functools
import math
import operator
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from detectors import drift_methods
from detectors.base import FeatureKind, FeatureTable
from detectors.drift_calibration import Calibrator, Cells, CountCells, FloatArray, NullRequest, RankCells
from detectors.drift_methods import (
    EVIDENTLY_THRESHOLDS,
    P_VALUE_METHODS,
    CategoricalReference,
    NumericReference,
)
from detectors.method_choice import FEW_VALUES, check_override, choose_method
from detectors.threshold_cache import ThresholdCache

Mode = Literal["calibrated", "evidently"]
MODES: tuple[Mode, ...] = ("calibrated", "evidently")


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's drift in one window."""

    feature: str
    method: str
    score: float
    """Evidently's statistic for ``method`` (a p-value when ``p_value``)."""
    threshold: float
    """What ``flag_value`` is compared with: Evidently's threshold, or the calibrated one."""
    drifted: bool
    """Flagged in this window (before persistence): ``flag_value`` crosses ``threshold`` or
    ``pooled_flag_value`` crosses ``pooled_threshold``."""
    detected: bool
    """Drift declared after persistence."""
    p_value: bool = False
    """The score is a p-value: small means drift."""
    flag_value: float = math.nan
    """The statistic compared with ``threshold``: the score in evidently mode, the robust
    rank/count statistic in calibrated mode."""
    size: int = 0
    """Present (non-missing) values of the feature in the window."""
    pooled_flag_value: float = math.nan
    """Calibrated mode with pooled windows: the flag statistic over this window and the
    previous ``pooled_windows - 1`` (NaN until that many windows were seen)."""
    pooled_threshold: float = math.nan
    pooled_size: int = 0
    """Present values in the pooled windows (0 when there was no pooled test)."""


@dataclass(frozen=True)
class DataDriftResult:
    """Per-feature drift and the dataset-level verdict for one window."""

    features: tuple[FeatureDrift, ...]
    share: float
    detected: bool
    drifted: bool = False
    """The share crosses ``drift_share`` in this window alone (before persistence)."""


@dataclass(frozen=True)
class _FittedFeature:
    name: str
    kind: FeatureKind
    method: str
    reference: NumericReference | CategoricalReference
    cells: Cells


@dataclass(frozen=True)
class _FlagTest:
    value: float
    threshold: float
    size: int

    @property
    def crossed(self) -> bool:
        return self.value > self.threshold


class DataDriftDetector:
    """Per-feature drift and dataset drift share against a fitted reference."""

    def __init__(
        self,
        mode: Mode = "calibrated",
        alpha: float = 0.01,
        persistence: int = 1,
        drift_share: float = 0.5,
        methods: Mapping[str, str] = MappingProxyType({}),
        seed: int = 0,
        pooled_windows: int = 4,
        threshold_cache: ThresholdCache | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be 'calibrated' or 'evidently', got {mode!r}")
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
        if isinstance(persistence, bool) or not isinstance(persistence, int) or persistence < 1:
            raise ValueError(f"persistence must be an integer >= 1, got {persistence!r}")
        if isinstance(pooled_windows, bool) or not isinstance(pooled_windows, int) or pooled_windows < 1:
            raise ValueError(f"pooled_windows must be an integer >= 1, got {pooled_windows!r}")
        if not 0.0 < drift_share <= 1.0:
            raise ValueError(f"drift_share must be in (0, 1], got {drift_share!r}")
        for feature, method in methods.items():
            if method not in drift_methods.METHODS:
                raise ValueError(f"unknown drift method {method!r} for feature {feature!r}")
        self.mode = mode
        self.alpha = alpha
        self.persistence = persistence
        self.drift_share = drift_share
        self.methods = dict(methods)
        self.seed = seed
        self.pooled_windows = pooled_windows
        self.threshold_cache = threshold_cache
        self.reset()

    def __repr__(self) -> str:
        return (
            f"DataDriftDetector(mode={self.mode!r}, alpha={self.alpha}, persistence={self.persistence}, "
            f"drift_share={self.drift_share}, methods={self.methods!r}, seed={self.seed}, "
            f"pooled_windows={self.pooled_windows}, threshold_cache={self.threshold_cache!r})"
        )

    def reset(self) -> None:
        """Forget the reference, the calibrated thresholds, the pooled windows and the streaks."""
        self._fitted = False
        self._features: tuple[_FittedFeature, ...] = ()
        self._calibrator: Calibrator | None = None
        self._streaks: dict[str, int] = {}
        self._pools: dict[str, deque[tuple[FloatArray, int]]] = {}
        self._dataset_streak = 0

    def fit(self, reference: FeatureTable) -> None:
        """Choose each feature's method from the reference and prepare it (once)."""
        self.reset()
        fitted = []
        for name, kind in reference.kinds.items():
            present = reference.present(name)
            if len(present) == 0:
                continue
            fitted.append(self._fit_feature(name, kind, present))
        self._features = tuple(fitted)
        self._fitted = True
        if self.mode == "calibrated" and fitted:
            self._calibrator = Calibrator(
                alpha=self.alpha,
                n_features=len(fitted),
                seed=self.seed,
                tests_per_feature=2 if self.pooled_windows > 1 else 1,
                cache=self.threshold_cache or ThresholdCache(),
            )

    def _fit_feature(self, name: str, kind: FeatureKind, present: npt.NDArray[np.generic]) -> _FittedFeature:
        prepared: NumericReference | CategoricalReference
        if kind == "numerical":
            prepared = NumericReference.from_values(_finite(present))
        else:
            prepared = CategoricalReference.from_values(present)
        if name in self.methods:
            method: str = check_override(name, kind, self.methods[name])
        else:
            method = choose_method(kind, reference_size=prepared.size, n_unique=prepared.n_unique)
        cells: Cells
        if isinstance(prepared, NumericReference) and prepared.n_unique > FEW_VALUES:
            cells = RankCells.from_sorted(prepared.sorted_values)
        else:
            cells = CountCells.from_counter(prepared.counts)
        return _FittedFeature(name, kind, method, prepared, cells)

    def evaluate(self, window: FeatureTable) -> DataDriftResult:
        """Score every fitted feature present in the window; flag, then apply persistence.

        A reference without a single present value fits no feature: every window
        then has no drift to report (an empty result), rather than an error.
        """
        if not self._fitted:
            raise RuntimeError("DataDriftDetector.evaluate called before fit")
        drifts = []
        for feature in self._features:
            drift = self._evaluate_feature(feature, window)
            if drift is None:
                self._streaks[feature.name] = 0
                continue
            drifts.append(drift)
        share = sum(d.drifted for d in drifts) / len(drifts) if drifts else 0.0
        drifted = bool(drifts) and share >= self.drift_share
        self._dataset_streak = self._dataset_streak + 1 if drifted else 0
        return DataDriftResult(tuple(drifts), share, self._dataset_streak >= self.persistence, drifted)

    def pending_thresholds(self, window: FeatureTable) -> list[NullRequest]:
        """The calibrations :meth:`evaluate` would have to simulate for ``window`` now (the
        window's size and, when due, its pooled size, per feature), so they can run elsewhere first."""
        if self._calibrator is None:
            return []
        requests = []
        for feature in self._features:
            values = _values(feature, window)
            if values is None:
                continue
            sizes = [len(values)]
            previous = list(self._pools.get(feature.name, ()))[-(self.pooled_windows - 1) :]
            if self.pooled_windows > 1 and len(previous) == self.pooled_windows - 1:
                sizes.append(len(values) + sum(size for _, size in previous))
            requests += [self._calibrator.pending(feature.cells, size) for size in sizes]
        return [request for request in requests if request is not None]

    def expected_thresholds(self, size: int) -> list[NullRequest]:
        """The calibrations not stored yet that windows of ``size`` values per feature will need,
        their pooled test's included (to start them as soon as the reference is fitted)."""
        if self._calibrator is None:
            return []
        sizes = [size, size * self.pooled_windows] if self.pooled_windows > 1 else [size]
        requests = [self._calibrator.pending(feature.cells, n) for feature in self._features for n in sizes]
        return [request for request in requests if request is not None]

    def _evaluate_feature(self, feature: _FittedFeature, window: FeatureTable) -> FeatureDrift | None:
        values = _values(feature, window)
        if values is None:
            return None
        ordered = feature.kind == "numerical"
        if ordered:  # sorted once, for the score and the rank cells
            values = np.sort(values)
        score = drift_methods.evaluate(feature.method, feature.reference, values, ordered=ordered)
        pooled: _FlagTest | None = None
        if self._calibrator is None:
            single = _FlagTest(score, EVIDENTLY_THRESHOLDS[feature.method], len(values))
            drifted = drift_methods.is_drifted(feature.method, score, single.threshold)
        else:
            single, pooled = self._calibrated_tests(self._calibrator, feature, values)
            drifted = single.crossed or (pooled is not None and pooled.crossed)
        streak = self._streaks.get(feature.name, 0) + 1 if drifted else 0
        self._streaks[feature.name] = streak
        return FeatureDrift(
            feature=feature.name,
            method=feature.method,
            score=score,
            threshold=single.threshold,
            drifted=bool(drifted),
            detected=streak >= self.persistence,
            p_value=feature.method in P_VALUE_METHODS,
            flag_value=single.value,
            size=len(values),
            pooled_flag_value=pooled.value if pooled else math.nan,
            pooled_threshold=pooled.threshold if pooled else math.nan,
            pooled_size=pooled.size if pooled else 0,
        )

    def _calibrated_tests(
        self, calibrator: Calibrator, feature: _FittedFeature, values: npt.NDArray[np.generic]
    ) -> tuple[_FlagTest, _FlagTest | None]:
        """The window's flag test and, once ``pooled_windows`` windows were seen, the pooled one."""
        cells, size = feature.cells, len(values)
        counts = _window_counts(cells, values)
        single = _FlagTest(float(cells.statistic(counts, size)), calibrator.threshold(cells, size), size)
        if self.pooled_windows == 1:
            return single, None
        pool = self._pools.setdefault(feature.name, deque(maxlen=self.pooled_windows))
        pool.append((counts, size))
        if len(pool) < self.pooled_windows:
            return single, None
        pooled_counts = functools.reduce(operator.add, [c for c, _ in pool])  # whole counts: exact
        pooled_size = sum(s for _, s in pool)
        pooled = _FlagTest(
            float(cells.statistic(pooled_counts, pooled_size)),
            calibrator.threshold(cells, pooled_size),
            pooled_size,
        )
        return single, pooled

    def thresholds(self) -> Mapping[str, dict[str, Any]]:
        """Per feature: method, mode and the thresholds in use (per window-size bucket when calibrated)."""
        report: dict[str, dict[str, Any]] = {}
        for feature in self._features:
            entry: dict[str, Any] = {"kind": feature.kind, "method": feature.method, "mode": self.mode}
            if self._calibrator is None:
                entry["threshold"] = EVIDENTLY_THRESHOLDS[feature.method]
            else:
                entry["flag_statistic"] = "rank" if isinstance(feature.cells, RankCells) else "chi_square"
                entry["level"] = self._calibrator.level
                entry["pooled_windows"] = self.pooled_windows
                entry["thresholds_by_size"] = self._calibrator.thresholds_for(feature.cells)
            report[feature.name] = entry
        return report

    def state(self) -> dict[str, Any]:
        """What evaluating windows taught the fitted detector (streaks, pooled windows), as plain data.

        Everything else follows from the reference: restore with :meth:`fit` on the
        same reference, then :meth:`restore_state`.
        """
        return {
            "streaks": dict(self._streaks),
            "dataset_streak": self._dataset_streak,
            "pools": {
                name: [[counts.tolist(), size] for counts, size in pool] for name, pool in self._pools.items()
            },
        }

    def restore_state(self, state: Mapping[str, Any]) -> None:
        """Take back what :meth:`state` returned (after :meth:`fit` on the same reference)."""
        self._streaks = {str(name): int(streak) for name, streak in state["streaks"].items()}
        self._dataset_streak = int(state["dataset_streak"])
        self._pools = {
            str(name): deque(
                ((np.asarray(counts, dtype=np.float64), int(size)) for counts, size in pool),
                maxlen=self.pooled_windows,
            )
            for name, pool in state["pools"].items()
        }

    @property
    def features(self) -> tuple[str, ...]:
        """The fitted features, in reference order."""
        return tuple(feature.name for feature in self._features)


def _window_counts(cells: Cells, values: npt.NDArray[np.generic]) -> FloatArray:
    if isinstance(cells, RankCells):  # a numerical feature's values, sorted by _evaluate_feature
        return cells.window_counts(np.asarray(values, dtype=np.float64), ordered=True)
    return cells.window_counts(values.tolist())


def _finite(values: npt.NDArray[np.generic]) -> npt.NDArray[np.float64]:
    numbers = np.asarray(values, dtype=np.float64)
    return numbers[np.isfinite(numbers)]


def _values(feature: _FittedFeature, window: FeatureTable) -> npt.NDArray[np.generic] | None:
    """The window's values of ``feature`` a test uses (finite ones for a number); None without any."""
    if feature.name not in window.columns:
        return None
    values = window.present(feature.name)
    if feature.kind == "numerical":
        values = _finite(values)
    return values if len(values) else None
