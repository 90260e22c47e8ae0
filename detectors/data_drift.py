"""Data drift: per-feature drift against the reference, and the share of drifted features.

Walking-skeleton version: Wasserstein distance normed by the reference
standard deviation for numerical features, Jensen-Shannon distance for
categorical ones, both with Evidently's fixed threshold of 0.1.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> ref = FeatureTable({"x": "numerical"}, {"x": rng.normal(size=2000)}, 2000)
>>> cur = FeatureTable({"x": "numerical"}, {"x": rng.normal(1.0, size=500)}, 500)
>>> detector = DataDriftDetector()
>>> detector.fit(ref)
>>> detector.evaluate(cur).detected
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.spatial import distance

from detectors.base import FeatureTable


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's drift in one window."""

    feature: str
    method: str
    score: float
    threshold: float
    drifted: bool
    """This window alone crosses the threshold."""
    detected: bool
    """Drift declared after persistence."""


@dataclass(frozen=True)
class DataDriftResult:
    """Per-feature drift and the dataset-level verdict for one window."""

    features: tuple[FeatureDrift, ...]
    share: float
    detected: bool


class DataDriftDetector:
    """Per-feature drift and dataset drift share against a fitted reference."""

    def __init__(self, drift_share: float = 0.5, threshold: float = 0.1, persistence: int = 1) -> None:
        if not 0.0 < drift_share <= 1.0:
            raise ValueError(f"drift_share must be in (0, 1], got {drift_share!r}")
        if threshold <= 0.0:
            raise ValueError(f"threshold must be > 0, got {threshold!r}")
        if persistence < 1:
            raise ValueError(f"persistence must be >= 1, got {persistence!r}")
        self.drift_share = drift_share
        self.threshold = threshold
        self.persistence = persistence
        self.reset()

    def __repr__(self) -> str:
        return (
            f"DataDriftDetector(drift_share={self.drift_share}, threshold={self.threshold}, "
            f"persistence={self.persistence})"
        )

    def reset(self) -> None:
        self._reference: FeatureTable | None = None
        self._streaks: dict[str, int] = {}
        self._dataset_streak = 0

    def fit(self, reference: FeatureTable) -> None:
        self.reset()
        self._reference = reference

    def evaluate(self, window: FeatureTable) -> DataDriftResult:
        if self._reference is None:
            raise RuntimeError("DataDriftDetector.evaluate called before fit")
        drifts = []
        for name, kind in self._reference.kinds.items():
            if name not in window.kinds:
                continue
            ref = self._reference.present(name)
            cur = window.present(name)
            if len(ref) == 0 or len(cur) == 0:
                continue
            if kind == "numerical":
                score = _wasserstein_normed(ref.astype(float), cur.astype(float))
                method = "wasserstein"
            else:
                score = _jensenshannon(ref, cur)
                method = "jensenshannon"
            drifted = score >= self.threshold
            streak = self._streaks.get(name, 0) + 1 if drifted else 0
            self._streaks[name] = streak
            drifts.append(
                FeatureDrift(name, method, score, self.threshold, drifted, streak >= self.persistence)
            )
        share = sum(d.drifted for d in drifts) / len(drifts) if drifts else 0.0
        self._dataset_streak = self._dataset_streak + 1 if share >= self.drift_share else 0
        return DataDriftResult(tuple(drifts), share, self._dataset_streak >= self.persistence)


def _wasserstein_normed(reference: np.ndarray, current: np.ndarray) -> float:
    norm = max(float(np.std(reference)), 0.001)
    return float(stats.wasserstein_distance(reference, current) / norm)


def _jensenshannon(reference: np.ndarray, current: np.ndarray) -> float:
    categories = sorted(set(reference.tolist()) | set(current.tolist()))
    ref_freq = np.array([np.sum(reference == c) for c in categories], dtype=float) / len(reference)
    cur_freq = np.array([np.sum(current == c) for c in categories], dtype=float) / len(current)
    return float(distance.jensenshannon(ref_freq, cur_freq))
