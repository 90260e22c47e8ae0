"""Model health of one model version: proxy metrics, CBPE and fairness per prediction window;
realized performance, concept drift and segment accuracy per window of joined labels.

The reference performance (what concept drift and CBPE's calibration compare
with) comes from the labelled reference file when it has a ``label`` column,
otherwise from the labels joined to the reference period's predictions, once
``reference_labels`` of them have arrived. The detectors live in
``detectors/``; this module feeds them the window's arrays and writes their
results into the metric store.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from driftline.schema import Scalar

from collector.config import ModelConfig
from collector.expected_errors import ExpectedErrors
from collector.label_join import JoinResult, PredictionRecord
from collector.multiclass_health import MulticlassEstimator
from collector.references import Reference
from collector.regression_health import RegressionEstimator
from collector.tables import Value
from collector.threshold_worker import ThresholdWorker
from collector.windows import Window
from detectors.base import BatchStatistic, FeatureTable
from detectors.cbpe import CBPE
from detectors.concept_drift import GAP_TEST, ConceptDriftDetector, ConceptDriftResult
from detectors.fairness import FairnessEvaluator, FairnessResult
from detectors.performance import PerformanceEvaluator, PerformanceResult, class_keys
from detectors.performance_threshold import PerformanceThreshold, PerformanceThresholds
from detectors.proxy_metrics import ProxyMetrics, ProxyResult, positive_probability
from detectors.window_report import Estimator, LabelWindowReport, PredictionHealth
from exporters.store import MetricStore

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
LabelWindowListener = Callable[[LabelWindowReport], None]
Fitted = dict[str, PerformanceThreshold]
"""One source's fitted thresholds, by metric."""


@dataclass(frozen=True)
class _ClassKeys:
    """A classifier's labelled window, compared by class name (:func:`~detectors.performance.class_key`)
    once for the realized accuracy, the concept-drift errors and the segments."""

    correct: npt.NDArray[np.bool_]
    """Per event: the prediction names the label's class."""
    positive: npt.NDArray[np.bool_]
    """Per event: the prediction names the positive class."""

    @classmethod
    def of(
        cls, labels: Sequence[Scalar], predictions: Sequence[Scalar], positive_class: str | None
    ) -> _ClassKeys:
        predicted = class_keys(predictions)
        return cls(
            np.asarray(class_keys(labels) == predicted, dtype=np.bool_),
            np.asarray(predicted == positive_class, dtype=np.bool_),
        )


class ModelHealth:
    """Evaluates and exports the model-health metrics of one (model, model_version)."""

    def __init__(
        self,
        store: MetricStore,
        labels: dict[str, str],
        model_config: ModelConfig,
        *,
        max_segment_values: int,
        label_window_events: int,
        label_listeners: tuple[LabelWindowListener, ...] = (),
        replay_events: int = 100_000,
        expected_errors_kept: int = 100_000,
        threshold_worker: ThresholdWorker | None = None,
    ) -> None:
        self.store = store
        self.labels = labels
        self.task = model_config.task
        self.positive_class = model_config.positive_class
        self.segments = list(model_config.segments)
        self.reference_labels_needed = model_config.reference_labels
        self.label_window_events = label_window_events
        self.max_segment_values = max_segment_values
        self.label_listeners = label_listeners
        self.label_windows_evaluated = 0
        self._fairness_evaluators: dict[tuple[str, ...], FairnessEvaluator] = {}
        self.performance = PerformanceEvaluator(model_config.task, model_config.positive_class)
        drift = model_config.concept_drift
        self.concept = ConceptDriftDetector(
            drift.detector, alpha=drift.alpha, tolerance=drift.tolerance, max_log=replay_events
        )
        self.proxy = ProxyMetrics(model_config.confidence_threshold)
        self.threshold_fitter = PerformanceThresholds(alpha=model_config.performance_alpha)
        self.thresholds: dict[str, dict[str, PerformanceThreshold]] = {}
        """Per source (``realized``, ``estimated``): each metric's threshold at the window size
        (a fit still running on ``threshold_worker`` is in ``_fitting`` until taken)."""
        self.threshold_worker = threshold_worker
        """Where threshold fits run (collect); None: inline (replay)."""
        self._fitting: dict[str, tuple[Future[Fitted], Callable[[], Fitted]]] = {}
        """Per source: the fit running on the worker, and the fit itself (to run here if it fails)."""
        self.cbpe: CBPE | None = None
        self.multiclass: MulticlassEstimator | None = None
        self.regression: RegressionEstimator | None = None
        self.expected_errors = ExpectedErrors(expected_errors_kept)
        """A regressor's expected absolute errors (DLE) of predictions whose labels have not come."""
        self.reference_performance: PerformanceResult | None = None
        self._reference: Reference | None = None
        self._reference_ids: set[str] | None = None
        self._reference_joined: list[JoinResult] = []
        self._joined: list[JoinResult] = []
        self.last_performance: dict[str, dict[str, float]] = {}
        if self.task != "regression":  # the counts of a two-proportion test between versions
            for source in ("realized", "estimated"):
                self._scored(source, 0, 0.0)
        else:  # the sums of a two-sample test of absolute errors between versions
            self._errors(np.zeros(0))
        self._fitted_at: int | None = None
        """How many reference-period labels had joined when :meth:`fit` ran (for snapshots)."""

    def fit(self, reference: Reference, reference_ids: set[str]) -> None:
        """Prepare CBPE from the reference; ``reference_ids`` are the automatic reference's events."""
        self._reference = reference
        self._reference_ids = reference_ids
        self._fitted_at = len(self._reference_joined)
        if self.task == "multiclass_classification":
            self.multiclass = MulticlassEstimator.from_reference(reference)
        if self.task == "regression":
            self.regression = RegressionEstimator(self.labels)
            if reference.labels is not None:
                self._fit_dle(list(reference.labels))
        probabilities = self._reference_probabilities()
        predictions = reference.outputs.columns.get("prediction")
        if reference.labels is not None and predictions is not None:
            self._fit_reference(list(reference.labels), list(predictions), probabilities)
        elif len(self._reference_joined) >= self._reference_labels_target():
            self._fit_from_joined()  # multiclass thresholds included, once calibrated
            return
        elif probabilities is not None:
            self.cbpe = CBPE()
            present = probabilities[~np.isnan(probabilities)]
            self.cbpe.fit(present)
            self._fit_estimated_thresholds(present, None)
        self._fit_multiclass_thresholds()

    def evaluate_predictions(self, window: Window, features: FeatureTable | None = None) -> PredictionHealth:
        """Proxy metrics, estimated performance and fairness of one closed prediction window.

        ``features`` (the window's, in the reference's kinds) are what a regressor's DLE reads.
        """
        self.take_thresholds(wait=True)
        predictions = window.prediction_values()
        proxy = self._proxy(*window.probability_matrix()) if window.gives_probabilities() else None
        predicted_positive = np.asarray(class_keys(predictions) == self.positive_class, dtype=np.bool_)
        estimated = None
        estimator: Estimator | None = None
        if self.cbpe is not None:
            p = window.positive_probability(self.positive_class)
            present = ~np.isnan(p)
            if present.any():
                estimate = self.cbpe.estimate(p[present], predicted_positive[present])
                estimated = {m: v for m, v in estimate.metrics.items() if v is not None}
                estimator = "cbpe"
                self._performance(estimated, "estimated")
                accuracy = estimated.get("accuracy")
                if accuracy is not None:
                    scored = int(present.sum())
                    self._scored("estimated", scored, accuracy * scored)
        if self.multiclass is not None:
            multiclass = self.multiclass.estimate(window.probability_mappings(), predictions)
            if multiclass is not None:
                estimated, estimator = dict(multiclass.metrics), "multiclass_cbpe"
                self._performance(estimated, "estimated")
                self._scored("estimated", multiclass.n, estimated["accuracy"] * multiclass.n)
        if features is not None and self.regression is not None and self.regression.dle is not None:
            errors = self._estimate_errors(features, predictions, window.event_ids())
            if errors is not None:
                estimated, estimator = errors, "dle"
        fairness = None
        segments = window.segment_mappings()
        names = self._segment_names(segments)
        if names:
            values = {name: [(s or {}).get(name) for s in segments] for name in names}
            fairness = self._fairness_for(names).evaluate(values, predicted_positive)
            self._fairness(fairness)
        return PredictionHealth(proxy, estimated, fairness, self.thresholds.get("estimated"), estimator)

    def add_label(self, result: JoinResult) -> None:
        """Take one joined label: into the reference period's labels, or the current label window."""
        if self._reference_ids is None or result.event_id in self._reference_ids:
            self._reference_joined.append(result)
            if self._reference is not None and len(self._reference_joined) == self._reference_labels_target():
                self._fit_from_joined()
            return
        self._joined.append(result)
        if len(self._joined) >= self.label_window_events:
            joined, self._joined = self._joined, []
            self._evaluate_labels(joined)

    def snapshot(self) -> dict[str, Any]:
        """The labels and detector inputs this version's health depends on, as plain data."""
        return {
            "fitted_at": self._fitted_at,
            "reference_joined": [_join_to_dict(r) for r in self._reference_joined],
            "joined": [_join_to_dict(r) for r in self._joined],
            "task": self.performance.task_,
            "concept": self.concept.state(),
            "fairness": [[list(names), e.state()] for names, e in self._fairness_evaluators.items()],
            "label_windows": self.label_windows_evaluated,
            "expected_errors": self.expected_errors.state(),
        }

    def restore_before_fit(self, snapshot: Mapping[str, Any]) -> None:
        """First half of a restore: the reference-period labels that had joined before :meth:`fit`."""
        joined = [_join_from_dict(item) for item in snapshot["reference_joined"]]
        fitted_at = snapshot["fitted_at"]
        self._reference_joined = joined if fitted_at is None else joined[:fitted_at]

    def restore_after_fit(self, snapshot: Mapping[str, Any]) -> None:
        """Second half: replay the later reference-period labels, then take the rest back."""
        fitted_at = snapshot["fitted_at"]
        if fitted_at is not None and self._reference is not None:
            for item in snapshot["reference_joined"][fitted_at:]:
                self.add_label(_join_from_dict(item))
        self._joined = [_join_from_dict(item) for item in snapshot["joined"]]
        self.label_windows_evaluated = int(snapshot.get("label_windows", 0))
        if "expected_errors" in snapshot:  # absent from snapshots written before the store existed
            self.expected_errors.restore_state(snapshot["expected_errors"])
        self.performance.task_ = snapshot["task"]
        self.concept.restore_state(snapshot["concept"])
        for names, known in snapshot["fairness"]:
            self._fairness_for(list(names)).restore_state(known)

    def status(self) -> dict[str, object]:
        reference = self.reference_performance
        return {
            "reference_labels_joined": len(self._reference_joined),
            "reference_performance": dict(reference.metrics) if reference is not None else None,
            "cbpe_calibrated": self.cbpe.calibrated if self.cbpe is not None else None,
            "cbpe_calibrated_classes": (
                list(self.multiclass.cbpe.calibrated_classes) if self.multiclass is not None else None
            ),
            "dle_fitted": self.regression.dle is not None if self.regression is not None else None,
            "labels_in_current_window": len(self._joined),
            "performance": {
                source: dict(self.last_performance[source]) if source in self.last_performance else None
                for source in ("realized", "estimated")
            },
        }

    def _reference_labels_target(self) -> int:
        known = len(self._reference_ids) if self._reference_ids else self.reference_labels_needed
        return max(1, min(self.reference_labels_needed, known))

    def _reference_probabilities(self) -> FloatArray | None:
        if self._reference is None or self.task not in (None, "binary_classification"):
            return None
        column = self._reference.outputs.columns.get(f"proba_{self.positive_class}")
        return None if column is None else column.astype(np.float64)

    def _fit_from_joined(self) -> None:
        records = [r.prediction for r in self._reference_joined if r.prediction is not None]
        actual = [r.label for r in self._reference_joined if r.prediction is not None]
        mappings = [r.probabilities for r in records]
        if self.multiclass is not None:
            self.multiclass.calibrate(self.multiclass.matrix(mappings), actual)
            self._fit_multiclass_thresholds()
        probabilities = positive_probability(mappings, self.positive_class) if any(mappings) else None
        self._fit_reference(actual, [r.prediction for r in records], probabilities)
        if self.regression is not None and self._reference is not None and self._reference.event_ids:
            by_id = {r.event_id: r.label for r in self._reference_joined}
            self._fit_dle(RegressionEstimator.joined_labels(self._reference, by_id))

    def _fit_multiclass_thresholds(self) -> None:
        """Thresholds of multiclass CBPE's estimate (as calibrated now) over reference windows."""
        if self.multiclass is None or self._reference is None:
            return
        fitted = self.multiclass.reference_statistic(self._reference)
        if fitted is not None:
            self._fit_thresholds("estimated", *fitted)

    def _fit_dle(self, actual: Sequence[object]) -> None:
        """Fit DLE on the reference's labelled rows, then the thresholds of its estimate."""
        assert self.regression is not None and self._reference is not None
        if not self.regression.fit(self._reference, actual):
            return
        fitted = self.regression.reference_statistic()
        if fitted is not None:
            self._fit_thresholds("estimated", *fitted)

    def _estimate_errors(
        self, features: FeatureTable, predictions: Sequence[Value], event_ids: Sequence[str]
    ) -> dict[str, float] | None:
        """A regressor's estimated errors (exported), its events' expected errors kept for their labels."""
        assert self.regression is not None
        absolute, squared = self.regression.expected_errors(features, predictions)
        result = self.regression.estimate(absolute, squared)
        if result is None:
            return None
        kept = np.flatnonzero(np.isfinite(absolute))
        self.expected_errors.add((event_ids[i] for i in kept.tolist()), absolute[kept])
        estimated = dict(result.metrics)
        self._performance(estimated, "estimated")
        return estimated

    def _fit_reference(
        self,
        actual: Sequence[Scalar | None],
        predictions: Sequence[Scalar | None],
        probabilities: FloatArray | None,
    ) -> None:
        """Reference performance and, for a binary model with probabilities, CBPE calibrated on it."""
        pairs = [
            (i, y, v)
            for i, (y, v) in enumerate(zip(actual, predictions, strict=True))
            if y is not None and v is not None
        ]
        if not pairs:
            return
        rows = [i for i, _, _ in pairs]
        labels = [y for _, y, _ in pairs]
        predicted = [v for _, _, v in pairs]
        p = probabilities[rows] if probabilities is not None else None
        self.reference_performance = self.performance.evaluate(labels, predicted, p)
        self._fit_thresholds("realized", self.performance.on_resamples(labels, predicted, p), len(labels))
        if p is not None and self.reference_performance.task == "binary_classification":
            present = ~np.isnan(p)
            y = (class_keys(labels) == self.positive_class).astype(np.float64)
            self.cbpe = CBPE()
            self.cbpe.fit(p[present], y[present])
            positive = class_keys(predicted) == self.positive_class
            self._fit_estimated_thresholds(p[present], positive[present])

    def _fit_estimated_thresholds(self, p: FloatArray, positive: npt.NDArray[np.bool_] | None) -> None:
        """Thresholds of CBPE's estimate: its spread over reference windows of the window size."""
        cbpe = self.cbpe
        if cbpe is None or len(p) == 0:
            return
        self._fit_thresholds("estimated", cbpe.on_resamples(p, positive), len(p))

    def take_thresholds(self, wait: bool = False) -> None:
        """Install the thresholds of the fits done on the worker (with ``wait``, of all of them)."""
        for source, (future, _) in list(self._fitting.items()):
            if wait or future.done():
                self._take(source)

    def _fit_thresholds(self, source: str, statistic: BatchStatistic, n_rows: int) -> None:
        """Fit and export ``driftline_performance_threshold`` for one source, replacing earlier ones.

        With a worker the fit runs there and is installed by :meth:`take_thresholds`;
        an earlier fit of the same source is installed first, so the store sees the
        same removals and sets in the same order as inline.
        """
        if source in self._fitting:
            self._take(source)
        for old in self.thresholds.pop(source, {}).values():
            self.store.remove(
                "driftline_performance_threshold",
                {**self.labels, "metric": old.metric, "source": source, "bound": old.bound},
            )
        fit = functools.partial(self.threshold_fitter.fit, statistic, n_rows, self.label_window_events)
        if self.threshold_worker is None:
            self._install(source, fit())
        else:
            self._fitting[source] = (self.threshold_worker.submit(fit), fit)

    def _take(self, source: str) -> None:
        """Install the worker's fit of ``source`` (waiting for it); a fit that failed there, or
        was cancelled at a stop, is run here instead: the same thresholds, or the same error."""
        future, fit = self._fitting.pop(source)
        try:
            fitted = future.result()
        except Exception as error:
            log.warning("threshold fit on the worker failed (%r): fitting here", error)
            fitted = fit()
        self._install(source, fitted)

    def _install(self, source: str, fitted: Fitted) -> None:
        """Keep and export one source's thresholds."""
        self.thresholds[source] = fitted
        for threshold in fitted.values():
            self._set(
                "driftline_performance_threshold",
                threshold.value,
                metric=threshold.metric,
                source=source,
                bound=threshold.bound,
            )

    def _evaluate_labels(self, joined: list[JoinResult]) -> None:
        self.take_thresholds(wait=True)
        records: list[PredictionRecord] = [r.prediction for r in joined if r.prediction is not None]
        labels = [r.label for r in joined if r.prediction is not None]
        predictions = [r.prediction for r in records]
        mappings = [r.probabilities for r in records]
        p = positive_probability(mappings, self.positive_class) if any(mappings) else None
        matrix = self.multiclass.matrix(mappings) if self.multiclass is not None else None
        complete = matrix is not None and not np.isnan(matrix).any()
        classes = self.multiclass.classes if self.multiclass is not None else ()
        result = self.performance.evaluate(
            labels, predictions, p, matrix if complete else None, classes if complete else ()
        )
        self._performance(result.metrics, "realized")
        for cls, recall in result.class_recall.items():
            self._set("driftline_class_recall", recall, **{"class": cls})
        for cls, support in result.class_support.items():
            self._set("driftline_class_support", float(support), **{"class": cls})
        expected = None
        if self.multiclass is not None and matrix is not None:
            expected = self.multiclass.expected_errors(matrix, predictions)
        if result.task == "regression":
            expected = self._expected_absolute_errors(records)
        keys = None
        if result.task != "regression":
            keys = _ClassKeys.of(labels, predictions, self.positive_class)
        concept = self._concept_drift(result, labels, predictions, p, expected, keys)
        segments = None
        if keys is None:
            self._errors(np.array(labels, dtype=np.float64) - np.array(predictions, dtype=np.float64))
        else:
            self._scored("realized", len(labels), float(np.count_nonzero(keys.correct)))
            segments = self._segment_accuracy(records, keys)
        self.label_windows_evaluated += 1
        times = [r.timestamp for r in records]
        report = LabelWindowReport(
            model=self.labels["model"],
            model_version=self.labels["model_version"],
            reference_id=self._reference.reference_id if self._reference is not None else "collecting",
            index=self.label_windows_evaluated,
            n_labels=len(records),
            start=min(times, default=0.0),
            end=max(times, default=0.0),
            performance=result,
            concept_drift=concept,
            segments=segments,
            thresholds=self.thresholds.get("realized"),
        )
        for listener in self.label_listeners:
            listener(report)

    def _concept_drift(
        self,
        result: PerformanceResult,
        labels: list[Scalar],
        predictions: list[Scalar],
        p: FloatArray | None,
        per_event: FloatArray | None,
        keys: _ClassKeys | None,
    ) -> ConceptDriftResult:
        """Errors against what the model was expected to get right: CBPE (binary or multiclass) or
        DLE (regression; ``per_event`` has NaN where an event has none), else the reference's error;
        a classifier's errors are its ``keys`` (None for a regressor)."""
        reference = self.reference_performance or result
        expected: FloatArray | float
        if result.task == "regression":
            scale = max(float(reference.metrics.get("mae") or 0.0), 1e-12)
            errors = (
                np.abs(np.array(labels, dtype=np.float64) - np.array(predictions, dtype=np.float64)) / scale
            )
            expected = 1.0 if per_event is None else np.where(np.isnan(per_event), 1.0, per_event / scale)
        else:
            assert keys is not None, "a classifier's window is compared by class"
            errors = (~keys.correct).astype(np.float64)
            if self.cbpe is not None and p is not None and not np.isnan(p).any():
                expected = self.cbpe.expected_errors(p, keys.positive)
            elif per_event is not None:
                expected = per_event
            else:
                expected = 1.0 - float(reference.metrics.get("accuracy") or 0.0)
        drift = self.concept.update(errors.astype(np.float64), expected)
        self._set("driftline_concept_drift_detected", float(drift.detected), detector=drift.detector)
        self._set("driftline_concept_drift_detected", float(drift.significant), detector=GAP_TEST)
        return drift

    def _expected_absolute_errors(self, records: list[PredictionRecord]) -> FloatArray | None:
        """Each labelled event's expected absolute error from DLE, taken from the store (NaN: none kept)."""
        if self.regression is None:
            return None
        kept = [self.expected_errors.pop(r.event_id) for r in records]
        return np.array([math.nan if e is None else e for e in kept], dtype=np.float64)

    def _segment_accuracy(self, records: list[PredictionRecord], keys: _ClassKeys) -> FairnessResult | None:
        names = self._segment_names([r.segments for r in records])
        if not names:
            return None
        values = {name: [(r.segments or {}).get(name) for r in records] for name in names}
        fairness = self._fairness_for(names).evaluate(values, keys.positive, keys.correct.astype(np.float64))
        for segment in fairness.segments.values():
            for stats in segment.values:
                if stats.accuracy is not None:
                    self._set(
                        "driftline_segment_accuracy",
                        stats.accuracy,
                        segment=segment.segment,
                        value=stats.value,
                    )
        return fairness

    def _performance(self, metrics: Mapping[str, float | None], source: str) -> None:
        """Export one window's realized or estimated metrics and keep them for the status."""
        known = {metric: value for metric, value in metrics.items() if value is not None}
        for metric, value in known.items():
            self._set("driftline_performance", value, metric=metric, source=source)
        self.last_performance[source] = known

    def _scored(self, source: str, scored: int, correct: float) -> None:
        labels = {**self.labels, "source": source}
        self.store.inc("driftline_predictions_scored_total", labels, float(scored))
        self.store.inc("driftline_predictions_correct_total", labels, correct)

    def _errors(self, errors: FloatArray) -> None:
        """Count a window's realized regression errors. An error whose square is not finite
        (a label of 1e200) is left out: it would make the sums infinite for good."""
        with np.errstate(over="ignore", invalid="ignore"):
            squares = np.square(errors)
        kept = np.isfinite(squares)
        labels = {**self.labels, "source": "realized"}
        self.store.inc("driftline_regression_scored_total", labels, float(kept.sum()))
        self.store.inc("driftline_regression_absolute_error_total", labels, float(np.abs(errors[kept]).sum()))
        self.store.inc("driftline_regression_squared_error_total", labels, float(squares[kept].sum()))

    def _proxy(self, classes: list[str], matrix: FloatArray) -> ProxyResult:
        """Proxy metrics over the events that give probabilities (``matrix`` rows, NaN: none)."""
        matrix = matrix[~np.isnan(matrix).any(axis=1)]
        result = self.proxy.evaluate(matrix, classes)
        self._set("driftline_prediction_confidence", result.confidence)
        self._set("driftline_prediction_entropy", result.entropy)
        self._set("driftline_low_confidence_ratio", result.low_confidence_ratio)
        return result

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

    def _fairness_for(self, names: list[str]) -> FairnessEvaluator:
        """One evaluator per set of segment names, so values fold the same way in every window."""
        key = tuple(names)
        evaluator = self._fairness_evaluators.get(key)
        if evaluator is None:
            evaluator = self._fairness_evaluators[key] = FairnessEvaluator(names, self.max_segment_values)
        return evaluator

    def _segment_names(self, segments: Sequence[Mapping[str, str] | None]) -> list[str]:
        """The configured segments, or every segment the events carry when none is configured."""
        if self.segments:
            return self.segments
        return sorted({name for s in segments for name in (s or {})})

    def _set(self, name: str, number: float, /, **labels: str) -> None:
        self.store.set(name, {**self.labels, **labels}, float(number))


def _join_to_dict(result: JoinResult) -> dict[str, Any]:
    assert result.prediction is not None
    return {
        "event_id": result.event_id,
        "label": result.label,
        "prediction": result.prediction.to_dict(),
        "delay_seconds": result.delay_seconds,
    }


def _join_from_dict(item: Mapping[str, Any]) -> JoinResult:
    prediction = PredictionRecord.from_dict(item["prediction"])
    return JoinResult("joined", str(item["event_id"]), item["label"], prediction, item["delay_seconds"])
