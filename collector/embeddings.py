"""The embedding drift tests of one model version: one MMD test per embedding name, and their metrics.

A name is tested when the reference holds at least 10 of its vectors; a
window is tested for each such name it holds at least 2 vectors of. The test
(:class:`~detectors.embedding_drift.EmbeddingDrift`) uses the drift
settings' ``alpha`` and ``seed``. A model version without embeddings has no
test and costs nothing; a reference sample a test cannot fit turns that name
off with a warning instead of stopping the model version.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from collector.config import DriftConfig
from collector.embedding_buffer import Vectors
from detectors.embedding_drift import EmbeddingDrift, EmbeddingDriftResult
from exporters.store import MetricStore

log = logging.getLogger(__name__)

MIN_WINDOW_VECTORS = 2


class EmbeddingDriftTests:
    """Fits one test per embedding name of a reference and exports each window's results."""

    def __init__(self, config: DriftConfig, store: MetricStore, labels: dict[str, str]) -> None:
        self.alpha = config.alpha
        self.seed = config.seed
        self.store = store
        self.labels = labels
        self.detectors: dict[str, EmbeddingDrift] = {}
        self.last: dict[str, EmbeddingDriftResult] = {}

    def fit(self, reference: Mapping[str, Vectors]) -> None:
        """Prepare a test for each embedding of the reference (replacing any earlier ones)."""
        self.detectors = {}
        self.last = {}
        for name, vectors in sorted(reference.items()):
            detector = EmbeddingDrift(
                alpha=self.alpha, permutations=max(200, math.ceil(1.0 / self.alpha)), seed=self.seed
            )
            try:
                detector.fit(vectors)
            except ValueError as error:  # too few vectors: this name is not tested
                log.warning("embedding %r not tested for %s: %s", name, self.labels, error)
                continue
            self.detectors[name] = detector

    def evaluate(self, window: Mapping[str, Vectors]) -> dict[str, EmbeddingDriftResult]:
        """Test each embedding the window holds enough vectors of; export score, flag and flagged count."""
        results = {}
        for name, detector in self.detectors.items():
            vectors = window.get(name)
            if vectors is None or len(vectors) < MIN_WINDOW_VECTORS:
                continue
            result = detector.evaluate(vectors)
            labels = {**self.labels, "embedding": name}
            self.store.set("driftline_embedding_drift_score", labels, result.score)
            self.store.set("driftline_embedding_drift_detected", labels, float(result.detected))
            self.store.inc("driftline_embedding_drift_windows_total", labels, float(result.detected))
            results[name] = self.last[name] = result
        return results

    def status(self) -> dict[str, dict[str, object]]:
        """The last result of each embedding tested, for ``/api/v1/models``."""
        return {name: {**asdict(result), "alpha": self.alpha} for name, result in self.last.items()}

    def state(self) -> dict[str, Any]:
        """Each test's window count, which seeds its next permutations (see :meth:`restore_state`)."""
        return {name: detector.state() for name, detector in self.detectors.items()}

    def restore_state(self, state: Mapping[str, Any]) -> None:
        """Continue the tests of a snapshot taken against the same reference."""
        for name, detector_state in state.items():
            if name in self.detectors:
                self.detectors[name].restore_state(detector_state)
