"""Per-window cost of the multivariate drift tests against the univariate detector, same run.

A seeded model of 20 features (16 numerical, 4 categorical), a 5,000-row
reference and windows of 1,000 rows. Prints the median per-window time of
the univariate ``DataDriftDetector`` (the baseline, calibrated mode), of
``PCAReconstructionDrift`` and of one ``DomainClassifierDrift`` evaluation
(which runs only every ``every_windows`` windows), each with its ratio to the
baseline, and the one-off fit costs.

Run: ``.venv/bin/python bench/multivariate_cost.py``
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detectors.base import FeatureKind, FeatureTable
from detectors.data_drift import DataDriftDetector
from detectors.domain_classifier import DomainClassifierDrift
from detectors.multivariate_drift import PCAReconstructionDrift

NUMERICAL, CATEGORICAL, WINDOWS = 16, 4, 7


def _table(rng: np.random.Generator, n: int) -> FeatureTable:
    kinds: dict[str, FeatureKind] = {}
    columns: dict[str, np.ndarray] = {}
    mixing = np.random.default_rng(0).normal(size=(NUMERICAL, NUMERICAL)) / 4
    x = rng.normal(size=(n, NUMERICAL)) @ (np.eye(NUMERICAL) + mixing)
    for i in range(NUMERICAL):
        kinds[f"n{i}"], columns[f"n{i}"] = "numerical", x[:, i]
    for i in range(CATEGORICAL):
        values = np.array([f"v{k}" for k in range(6)], dtype=object)
        kinds[f"c{i}"], columns[f"c{i}"] = "categorical", rng.choice(values, size=n)
    return FeatureTable(kinds, columns, n)


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    rng = np.random.default_rng(1)
    reference = _table(rng, 5000)
    windows = [_table(rng, 1000) for _ in range(WINDOWS)]
    univariate = DataDriftDetector(seed=0)
    pca = PCAReconstructionDrift()
    classifier = DomainClassifierDrift(every_windows=1)
    fits = {
        name: _timed(lambda d=d: d.fit(reference))
        for name, d in (("univariate", univariate), ("pca", pca), ("domain classifier", classifier))
    }
    for detector in (univariate, pca):
        detector.evaluate(windows[0])  # thresholds for this window size, computed once
    times = {
        "univariate (baseline)": [_timed(lambda w=w: univariate.evaluate(w)) for w in windows[1:]],
        "pca_reconstruction": [_timed(lambda w=w: pca.evaluate(w)) for w in windows[1:]],
        "domain_classifier": [_timed(lambda w=w: classifier.evaluate(w)) for w in windows[1:4]],
    }
    baseline = float(np.median(times["univariate (baseline)"]))
    print(f"20 features, reference 5000 rows, windows of 1000; PCA keeps {pca.n_components} components")
    for name, values in times.items():
        median = float(np.median(values))
        print(f"{name:24} {median * 1000:8.1f} ms per window  ratio {median / baseline:6.2f}")
    print("fit: " + ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in fits.items()))
    print(f"PCA threshold for a new window size: {_timed(lambda: pca.thresholds(1500)) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
