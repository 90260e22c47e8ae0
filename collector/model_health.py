"""Model health of one model version: proxy metrics, CBPE and fairness per prediction window;
realized performance, concept drift and segment accuracy per window of joined labels.

The detectors live in ``detectors/``; this module only feeds them the window's
arrays and writes their results into the metric store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from driftline.schema import Prediction, Scalar

from collector.label_join import JoinResult, PredictionRecord
from collector.references import Reference
from detectors.cbpe import CBPE
from detectors.concept_drift import GAP_TEST, ConceptDriftDetector
from detectors.fairness import FairnessEvaluator, FairnessResult
from detectors.performance import PerformanceEvaluator, Task, class_key
from detectors.proxy_metrics import ProxyMetrics, positive_probability, probability_matrix
from exporters.store import MetricStore


class ModelHealth:
    """Evaluates and exports the model-health metrics of one (model, model_version)."""

    def __init__(
        self,
        store: MetricStore,
        labels: dict[str, str],
        *,
        task: Task | None,
        positive_class: str,
        segments: Sequence[str],
        max_segment_values: int,
        label_window_events: int,
    ) -> None:
        self.store = store
        self.labels = labels
        self.task = task
        self.positive_class = positive_class
        self.segments = list(segments)
        self.label_window_events = label_window_events
        self.max_segment_values = max_segment_values
        self.performance = PerformanceEvaluator(task, positive_class)
        self.concept = ConceptDriftDetector()
        self.proxy = ProxyMetrics()
        self.cbpe: CBPE | None = None
        self.reference_error: float | None = None
        self._joined: list[JoinResult] = []

    def fit(self, reference: Reference) -> None:
        """Fit CBPE on the reference's positive-class probabilities (and labels, when given)."""
        column = reference.outputs.columns.get(f"proba_{self.positive_class}")
        if column is None or self.task not in (None, "binary_classification"):
            return
        probabilities = column.astype(float)
        labels = None
        if reference.labels is not None:
            labels = np.array(
                [v is not None and class_key(v) == self.positive_class for v in reference.labels], dtype=float
            )
        present = ~np.isnan(probabilities)
        cbpe = CBPE()
        cbpe.fit(probabilities[present], labels[present] if labels is not None else None)
        self.cbpe = cbpe

    def evaluate_predictions(self, predictions: Sequence[Prediction]) -> None:
        """Proxy metrics, estimated performance and fairness of one closed prediction window."""
        mappings = [p.probabilities for p in predictions]
        if any(m for m in mappings):
            self._proxy(mappings)
        predicted_positive = np.array([class_key(p.prediction) == self.positive_class for p in predictions])
        if self.cbpe is not None:
            p = positive_probability(mappings, self.positive_class)
            present = ~np.isnan(p)
            if present.any():
                estimate = self.cbpe.estimate(p[present], predicted_positive[present])
                for metric, value in estimate.metrics.items():
                    if value is not None:
                        self._set("driftline_performance", value, metric=metric, source="estimated")
        names = self._segment_names(predictions)
        if names:
            values = {name: [(p.segments or {}).get(name) for p in predictions] for name in names}
            self._fairness(
                FairnessEvaluator(names, self.max_segment_values).evaluate(values, predicted_positive)
            )

    def add_label(self, result: JoinResult) -> None:
        """Take one joined label; evaluate when a label window is full."""
        self._joined.append(result)
        if len(self._joined) >= self.label_window_events:
            joined, self._joined = self._joined, []
            self._evaluate_labels(joined)

    def _evaluate_labels(self, joined: list[JoinResult]) -> None:
        records: list[PredictionRecord] = [r.prediction for r in joined if r.prediction is not None]
        labels = [r.label for r in joined if r.prediction is not None]
        predictions = [r.prediction for r in records]
        mappings = [r.probabilities for r in records]
        p = positive_probability(mappings, self.positive_class) if any(mappings) else None
        result = self.performance.evaluate(labels, predictions, p)
        for metric, value in result.metrics.items():
            if value is not None:
                self._set("driftline_performance", value, metric=metric, source="realized")
        for cls, recall in result.class_recall.items():
            self._set("driftline_class_recall", recall, **{"class": cls})
        for cls, support in result.class_support.items():
            self._set("driftline_class_support", float(support), **{"class": cls})
        if result.task != "regression":
            self._concept_drift(labels, predictions, p)
            correct = np.array(
                [class_key(y) == class_key(v) for y, v in zip(labels, predictions, strict=True)]
            )
            names = self._segment_names(records)
            if names:
                positive = np.array([class_key(v) == self.positive_class for v in predictions])
                values = {name: [(r.segments or {}).get(name) for r in records] for name in names}
                evaluator = FairnessEvaluator(names, self.max_segment_values)
                fairness = evaluator.evaluate(values, positive, correct.astype(float))
                for segment in fairness.segments.values():
                    for stats in segment.values:
                        if stats.accuracy is not None:
                            self._set(
                                "driftline_segment_accuracy",
                                stats.accuracy,
                                segment=segment.segment,
                                value=stats.value,
                            )

    def _concept_drift(self, labels: list[Scalar], predictions: list[Scalar], p: np.ndarray | None) -> None:
        errors = np.array([class_key(y) != class_key(v) for y, v in zip(labels, predictions, strict=True)])
        if self.cbpe is not None and p is not None and not np.isnan(p).any():
            positive = np.array([class_key(v) == self.positive_class for v in predictions])
            expected: np.ndarray | float = self.cbpe.expected_errors(p, positive)
        else:
            if self.reference_error is None:
                self.reference_error = float(errors.mean())
            expected = self.reference_error
        drift = self.concept.update(errors.astype(float), expected)
        self._set("driftline_concept_drift_detected", float(drift.detected), detector=drift.detector)
        self._set("driftline_concept_drift_detected", float(drift.significant), detector=GAP_TEST)

    def _proxy(self, mappings: list[Mapping[str, float] | None]) -> None:
        classes = sorted({c for m in mappings if m for c in m})
        matrix = probability_matrix(mappings, classes)
        matrix = matrix[~np.isnan(matrix).any(axis=1)]
        result = self.proxy.evaluate(matrix, classes)
        self._set("driftline_prediction_confidence", result.confidence)
        self._set("driftline_prediction_entropy", result.entropy)
        self._set("driftline_low_confidence_ratio", result.low_confidence_ratio)

    def _fairness(self, result: FairnessResult) -> None:
        for segment in result.segments.values():
            for stats in segment.values:
                self._set(
                    "driftline_segment_positive_rate",
                    stats.positive_rate,
                    segment=segment.segment,
                    value=stats.value,
                )
            if segment.disparate_impact is not None:
                self._set(
                    "driftline_fairness_disparate_impact", segment.disparate_impact, segment=segment.segment
                )
            if segment.parity_difference is not None:
                self._set(
                    "driftline_fairness_parity_difference", segment.parity_difference, segment=segment.segment
                )

    def _segment_names(self, events: Sequence[Prediction] | Sequence[PredictionRecord]) -> list[str]:
        """The configured segments, or every segment the events carry when none is configured."""
        if self.segments:
            return self.segments
        return sorted({name for e in events for name in (e.segments or {})})

    def _set(self, name: str, number: float, /, **labels: str) -> None:
        self.store.set(name, {**self.labels, **labels}, float(number))
