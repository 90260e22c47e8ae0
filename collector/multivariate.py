"""The multivariate drift tests of one model version: which run, and their metrics.

PCA reconstruction error runs when the reference has at least two numerical
features (``drift.multivariate.pca``, on by default); the domain classifier
only when ``drift.multivariate.domain_classifier`` is set, and then on one
window in ``classifier_every_windows``. A model with neither costs nothing.
A reference the tests cannot use (too few rows, values they cannot fit)
disables them with a warning instead of stopping the model version.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

from collector.config import DriftConfig
from detectors.base import FeatureTable
from detectors.domain_classifier import DomainClassifierDrift
from detectors.multivariate_drift import MultivariateDriftResult, PCAReconstructionDrift
from exporters.store import MetricStore

log = logging.getLogger(__name__)

Detector = PCAReconstructionDrift | DomainClassifierDrift


class MultivariateDrift:
    """Fits the configured multivariate tests on a reference and exports each window's results."""

    def __init__(self, config: DriftConfig, store: MetricStore, labels: dict[str, str]) -> None:
        self.config = config.multivariate
        self.alpha = config.alpha
        self.seed = config.seed
        self.store = store
        self.labels = labels
        self.detectors: list[Detector] = []
        self.last: dict[str, MultivariateDriftResult] = {}

    def fit(self, reference: FeatureTable) -> None:
        """Prepare the tests that apply to this reference (replacing any earlier ones)."""
        self.detectors = []
        self.last = {}
        numerical = sum(kind == "numerical" for kind in reference.kinds.values())
        if self.config.pca and numerical >= 2:
            self._add(
                PCAReconstructionDrift(self.alpha, self.config.variance_share, self.seed), reference
            )
        if self.config.domain_classifier and reference.kinds:
            classifier = DomainClassifierDrift(
                self.alpha,
                every_windows=self.config.classifier_every_windows,
                max_rows=self.config.classifier_max_rows,
                seed=self.seed,
            )
            self._add(classifier, reference)

    def evaluate(self, window: FeatureTable) -> list[MultivariateDriftResult]:
        """Run the tests due on this window and export their score, flag and flagged-window count."""
        results = []
        for detector in self.detectors:
            result = detector.evaluate(window)
            if result is None:
                continue
            labels = {**self.labels, "method": result.method}
            self.store.set("driftline_multivariate_drift_score", labels, result.score)
            self.store.set("driftline_multivariate_drift_detected", labels, float(result.detected))
            self.store.inc("driftline_multivariate_drift_windows_total", labels, float(result.detected))
            results.append(result)
            self.last[result.method] = result
        return results

    def status(self) -> dict[str, dict[str, object]]:
        """The last result of each test that has run, for ``/api/v1/models``."""
        return {method: asdict(result) for method, result in self.last.items()}

    def _add(self, detector: Detector, reference: FeatureTable) -> None:
        try:
            detector.fit(reference)
        except Exception as error:  # an unusable reference turns the test off, never the model version
            log.warning("%s disabled for %s: %s", type(detector).__name__, self.labels, error)
            return
        self.detectors.append(detector)
