"""The metric catalog: every metric Driftline exports, defined once.

The Prometheus and OTLP exporters, ``docs/metrics.md``, the dashboards and the
alert rules all follow this list (docs/contracts.md#metrics). A metric not listed
here cannot be written to the :class:`~exporters.store.MetricStore`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from detectors.cbpe import ESTIMATED_METRICS
from detectors.multiclass_cbpe import MULTICLASS_ESTIMATED_METRICS
from detectors.multivariate_drift import MULTIVARIATE_METHODS
from detectors.performance import REGRESSION_METRICS

MetricKind = Literal["gauge", "counter", "histogram"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DELAY_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)
LABEL_DELAY_BUCKETS = (1.0, 10.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 86400.0, 7 * 86400.0)
BATCH_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)



@dataclass(frozen=True)
class LimitDef:
    """One cardinality limit: its key under ``limits:``, its default and the ``kind`` it counts as."""

    setting: str
    default: int
    kind: str
    bounds: str
    """What the limit bounds, in words (for ``docs/metrics.md``)."""


LIMITS = (
    LimitDef("max_models", 100, "model", "distinct model names"),
    LimitDef("max_model_versions", 20, "model_version", "versions per model"),
    LimitDef("max_features", 500, "feature", "features per model"),
    LimitDef("max_segment_values", 50, "segment_value", "values per segment of a model"),
    LimitDef("max_instances", 100, "instance", "serving instances per model version (heartbeats)"),
    LimitDef("max_embeddings", 16, "embedding", "embedding names per model"),
)
"""The cardinality limits, defined here because they bound the label sets of this catalog;
the collector's configuration (``limits:``) takes its keys and defaults from this list."""

LIMIT_KINDS = tuple(limit.kind for limit in LIMITS)
"""Values of ``kind`` in ``driftline_limit_exceeded_total``: which cardinality limit refused input."""

DETECTORS = (
    "window",
    "data_drift",
    "prediction_drift",
    "data_quality",
    "model_health",
    "multivariate_drift",
    "embedding_drift",
    "report",
    "instances",
)
"""Values of ``detector`` in ``driftline_detector_failures_total``: what raised with no message to blame."""
PERFORMANCE_METRICS = tuple(
    dict.fromkeys((*ESTIMATED_METRICS, "log_loss", *MULTICLASS_ESTIMATED_METRICS, "f1", *REGRESSION_METRICS))
)
"""Values of ``metric`` in ``driftline_performance``: binary (precision, recall and F1 of the
positive class), multiclass (accuracy; macro and support-weighted averages; the one-vs-rest
ROC AUC; ``f1`` is also the macro F1) and regression."""

MULTIVARIATE_DRIFT_METHODS = MULTIVARIATE_METHODS
"""Values of ``method`` in ``driftline_multivariate_drift_*``."""

UNIT_SUFFIXES = {"_seconds": "s", "_bytes": "By", "_ratio": "1"}
"""Base-unit name suffixes and their UCUM symbols (what OpenTelemetry's ``unit`` wants)."""

MV = ("model", "model_version")


@dataclass(frozen=True)
class MetricDef:
    """One metric: its full name (counters end in ``_total``), kind, label names and help."""

    name: str
    kind: MetricKind
    labels: tuple[str, ...]
    help: str
    group: str
    buckets: tuple[float, ...] = ()

    @property
    def family_name(self) -> str:
        """The name without ``_total``, as prometheus_client's counter families want it."""
        return self.name.removesuffix("_total") if self.kind == "counter" else self.name

    @property
    def unit(self) -> str:
        """The UCUM unit read from the name's base-unit suffix, or "" for a plain number."""
        stem = self.name.removesuffix("_total")
        return next((u for suffix, u in UNIT_SUFFIXES.items() if stem.endswith(suffix)), "")


def _g(name: str, labels: tuple[str, ...], help_: str, group: str) -> MetricDef:
    return MetricDef(name, "gauge", labels, help_, group)


def _c(name: str, labels: tuple[str, ...], help_: str, group: str) -> MetricDef:
    return MetricDef(name, "counter", labels, help_, group)


def _h(
    name: str, labels: tuple[str, ...], help_: str, group: str, buckets: tuple[float, ...]
) -> MetricDef:
    return MetricDef(name, "histogram", labels, help_, group, buckets)


CATALOG: tuple[MetricDef, ...] = (
    # events
    _c(
        "driftline_events_total",
        (*MV, "type"),
        "Events accepted, by type (labels: the version of their prediction, or unknown).",
        "events",
    ),
    _c(
        "driftline_events_rejected_total",
        ("reason",),
        "Events rejected and written to the dead-letter queue, by reason; checkpointed with the partition"
        " of each message, so exact across restarts (a collector counts the partitions it owns).",
        "events",
    ),
    _c(
        "driftline_state_snapshots_total",
        ("outcome",),
        "Partition state snapshots: saved, save_failed (no commit until saved), restored, unreadable;"
        " per process, from its start.",
        "events",
    ),
    _c(
        "driftline_limit_exceeded_total",
        ("kind",),
        "Input refused or folded by a cardinality limit, by kind; checkpointed with the partition of"
        " each message, so exact across restarts (a collector counts the partitions it owns).",
        "events",
    ),
    _c(
        "driftline_reference_changes_total",
        MV,
        "Times the reference of a model version changed to different data (the id in driftline_model_info).",
        "events",
    ),
    _g(
        "driftline_model_info",
        (*MV, "data_version", "reference_id", "role"),
        "1 per active model version, with its current data version, reference and role "
        "(champion or challenger).",
        "events",
    ),
    # data drift
    _g(
        "driftline_feature_drift_score",
        (*MV, "feature", "method"),
        "Last window's drift statistic per feature.",
        "data_drift",
    ),
    _g(
        "driftline_feature_drift_detected",
        (*MV, "feature"),
        "1 if the feature drifted in the last window (after persistence).",
        "data_drift",
    ),
    _g(
        "driftline_dataset_drift_share",
        MV,
        "Share of drifted features in the last window.",
        "data_drift",
    ),
    _g(
        "driftline_dataset_drift_detected",
        MV,
        "1 if the last window is dataset drift (after persistence).",
        "data_drift",
    ),
    _g(
        "driftline_prediction_drift_score",
        (*MV, "output", "method"),
        "Last window's drift statistic of the model output.",
        "data_drift",
    ),
    _g(
        "driftline_prediction_drift_detected",
        (*MV, "output"),
        "1 if the model output drifted in the last window.",
        "data_drift",
    ),
    _g(
        "driftline_window_end_timestamp_seconds",
        MV,
        "When the last evaluated window closed (Unix seconds).",
        "data_drift",
    ),
    _c("driftline_windows_total", MV, "Windows evaluated.", "data_drift"),
    _g(
        "driftline_multivariate_drift_score",
        (*MV, "method"),
        "Last tested window's multivariate drift statistic: mean PCA reconstruction error "
        "(pca_reconstruction) or cross-validated ROC AUC of reference against window rows "
        "(domain_classifier).",
        "data_drift",
    ),
    _g(
        "driftline_multivariate_drift_detected",
        (*MV, "method"),
        "1 if the last tested window was flagged by the multivariate method, else 0.",
        "data_drift",
    ),
    _c(
        "driftline_multivariate_drift_windows_total",
        (*MV, "method"),
        "Windows flagged by the multivariate method.",
        "data_drift",
    ),
    _g(
        "driftline_embedding_drift_score",
        (*MV, "embedding"),
        "Last tested window's maximum mean discrepancy (squared, Gaussian kernel) between the "
        "embedding's window vectors and its reference sample.",
        "data_drift",
    ),
    _g(
        "driftline_embedding_drift_detected",
        (*MV, "embedding"),
        "1 if the last tested window's embedding vectors drifted (permutation p-value <= alpha), else 0.",
        "data_drift",
    ),
    _c(
        "driftline_embedding_drift_windows_total",
        (*MV, "embedding"),
        "Windows in which the embedding drifted.",
        "data_drift",
    ),
    _c(
        "driftline_dataset_drift_windows_total",
        MV,
        "Windows flagged as dataset drift.",
        "data_drift",
    ),
    _c(
        "driftline_feature_drift_windows_total",
        (*MV, "feature"),
        "Windows in which the feature was flagged.",
        "data_drift",
    ),
    # data quality
    _g(
        "driftline_feature_missing_ratio",
        (*MV, "feature"),
        "Share of missing values in the last window.",
        "data_quality",
    ),
    _g(
        "driftline_feature_out_of_range_ratio",
        (*MV, "feature"),
        "Share of values outside the reference range in the last window.",
        "data_quality",
    ),
    _g(
        "driftline_feature_new_category_ratio",
        (*MV, "feature"),
        "Share of categories unseen in the reference in the last window.",
        "data_quality",
    ),
    _g(
        "driftline_feature_type_error_ratio",
        (*MV, "feature"),
        "Share of values of the wrong type in the last window.",
        "data_quality",
    ),
    # model health
    _g(
        "driftline_performance",
        (*MV, "metric", "source"),
        "Model performance per window: realized (labels) or estimated (no labels: CBPE for "
        "classifiers, direct loss estimation of mae, mse and rmse for regressors).",
        "model_health",
    ),
    _c(
        "driftline_predictions_scored_total",
        (*MV, "source"),
        "Classifier predictions whose correctness is known (realized: joined labels) or "
        "estimated (CBPE, no labels).",
        "model_health",
    ),
    _c(
        "driftline_predictions_correct_total",
        (*MV, "source"),
        "Of those, the correct ones (realized) or the expected number correct (estimated): "
        "accuracy over any range is increase(correct) / increase(scored).",
        "model_health",
    ),
    _c(
        "driftline_regression_scored_total",
        (*MV, "source"),
        "Regressor predictions whose error is known (realized: joined labels; the counters have no "
        "estimated source: DLE's estimate is driftline_performance).",
        "model_health",
    ),
    _c(
        "driftline_regression_absolute_error_total",
        (*MV, "source"),
        "Of those, the sum of absolute errors |label - prediction|: mean absolute error over any "
        "range is increase(absolute_error) / increase(scored).",
        "model_health",
    ),
    _c(
        "driftline_regression_squared_error_total",
        (*MV, "source"),
        "Of those, the sum of squared errors: with the two above, the variance of the absolute "
        "error for a two-sample test between versions.",
        "model_health",
    ),
    _g(
        "driftline_performance_threshold",
        (*MV, "metric", "source", "bound"),
        "Where a performance metric's alarm starts at the window size: the performance_alpha quantile "
        "of the metric over bootstrap windows of the reference, on its worse side (bound lower or upper).",
        "model_health",
    ),
    _g(
        "driftline_class_recall",
        (*MV, "class"),
        "Recall per class in the last window of joined labels.",
        "model_health",
    ),
    _g(
        "driftline_class_support",
        (*MV, "class"),
        "Labelled events per class in the last window of joined labels.",
        "model_health",
    ),
    _g(
        "driftline_concept_drift_detected",
        (*MV, "detector"),
        "1 if the detector flags concept drift in the last label window: detector is the sequential "
        "detector (adwin, page_hinkley or ddm) or gap_test (realized error above expected error).",
        "model_health",
    ),
    _g(
        "driftline_prediction_confidence",
        MV,
        "Mean top-class probability in the last window.",
        "model_health",
    ),
    _g(
        "driftline_prediction_entropy",
        MV,
        "Mean entropy of the predicted probabilities in the last window.",
        "model_health",
    ),
    _g(
        "driftline_low_confidence_ratio",
        MV,
        "Share of predictions under the configured confidence in the last window.",
        "model_health",
    ),
    _c(
        "driftline_labels_total",
        ("model", "outcome"),
        "Labels by final outcome: joined, unmatched (including early labels that waited in vain), expired.",
        "model_health",
    ),
    _g(
        "driftline_labels_early",
        ("model",),
        "Labels held because their prediction has not been read yet (joined when it comes).",
        "model_health",
    ),
    _h(
        "driftline_label_delay_seconds",
        ("model",),
        "Delay between a prediction and its label.",
        "model_health",
        LABEL_DELAY_BUCKETS,
    ),
    _c(
        "driftline_segment_events_total",
        (*MV, "segment", "value"),
        "Predictions per segment value.",
        "fairness",
    ),
    _g(
        "driftline_segment_positive_rate",
        (*MV, "segment", "value"),
        "Positive-prediction rate per segment value in the last window.",
        "fairness",
    ),
    _g(
        "driftline_segment_accuracy",
        (*MV, "segment", "value"),
        "Realized accuracy per segment value in the last window of joined labels.",
        "fairness",
    ),
    _g(
        "driftline_fairness_disparate_impact",
        (*MV, "segment"),
        "Lowest over highest positive rate across segment values.",
        "fairness",
    ),
    _g(
        "driftline_fairness_parity_difference",
        (*MV, "segment"),
        "Highest minus lowest positive rate across segment values.",
        "fairness",
    ),
    # serving system
    _h(
        "driftline_prediction_latency_seconds",
        MV,
        "Prediction latency reported by the serving code.",
        "system",
        LATENCY_BUCKETS,
    ),
    _c("driftline_prediction_errors_total", MV, "Prediction events that carry an error.", "system"),
    _g(
        "driftline_instance_up",
        (*MV, "instance"),
        "1 while a serving instance sends heartbeats, 0 after it stops.",
        "system",
    ),
    _g(
        "driftline_instance_cpu_ratio",
        (*MV, "instance"),
        "Serving instance CPU use (0-1) from its last heartbeat.",
        "system",
    ),
    _g(
        "driftline_instance_resident_memory_bytes",
        (*MV, "instance"),
        "Serving instance resident memory from its last heartbeat.",
        "system",
    ),
    _c(
        "driftline_instance_requests_total",
        (*MV, "instance"),
        "Requests served by the instance, summed over its restarts, from heartbeats.",
        "system",
    ),
    _c(
        "driftline_instance_errors_total",
        (*MV, "instance"),
        "Failed requests of the instance, summed over its restarts, from heartbeats.",
        "system",
    ),
    _g(
        "driftline_instance_uptime_seconds",
        (*MV, "instance"),
        "Serving instance uptime from its last heartbeat.",
        "system",
    ),
    _g(
        "driftline_instance_last_heartbeat_timestamp_seconds",
        (*MV, "instance"),
        "When the collector processed the instance's last heartbeat (event time in replay).",
        "system",
    ),
    # collector pipeline
    _g(
        "driftline_consumer_lag",
        ("topic", "partition"),
        "Messages behind the end of the partition.",
        "collector",
    ),
    _h(
        "driftline_processing_delay_seconds",
        (),
        "Delay from event time to processed; per process, from its start.",
        "collector",
        DELAY_BUCKETS,
    ),
    _h(
        "driftline_batch_duration_seconds",
        (),
        "Time to process one polled batch, decode to export; per process, from its start.",
        "collector",
        BATCH_BUCKETS,
    ),
    _c(
        "driftline_detector_failures_total",
        ("detector",),
        "Failures of the collector's own code with no message to dead-letter (a window's"
        " detectors, the HTML report, the instance check), by detector; each skips that"
        " work (a window: not evaluated) and the collector goes on; per process, from its start.",
        "collector",
    ),
    _c(
        "driftline_exporter_failures_total",
        ("exporter",),
        "Failed exports, by exporter: otlp, otlp_traces; per process, from its start.",
        "collector",
    ),
    _c(
        "driftline_commit_failures_total",
        (),
        "Kafka offset commits that failed (rebalance, coordinator unreachable); retried with the next"
        " batch; per process, from its start.",
        "collector",
    ),
    _g(
        "driftline_source_connected",
        (),
        "1 while the Kafka consumer group's coordinator is reachable, 0 while it is not.",
        "collector",
    ),
    # collector process and host (psutil)
    _c(
        "driftline_process_cpu_seconds_total",
        (),
        "CPU time of the collector process, user plus system.",
        "process",
    ),
    _g(
        "driftline_process_resident_memory_bytes",
        (),
        "Resident memory of the collector process.",
        "process",
    ),
    _g(
        "driftline_process_open_fds",
        (),
        "Open file descriptors of the collector process.",
        "process",
    ),
    _g("driftline_process_threads", (), "Threads of the collector process.", "process"),
    _g(
        "driftline_process_start_time_seconds",
        (),
        "When the collector process started (Unix seconds).",
        "process",
    ),
    _g(
        "driftline_host_cpu_ratio",
        (),
        "Host CPU use (0-1) since the previous sample, over all cores.",
        "process",
    ),
    _g(
        "driftline_host_memory_used_ratio",
        (),
        "Host memory in use (0-1): total minus available, over total.",
        "process",
    ),
)

CATALOG_BY_NAME: dict[str, MetricDef] = {metric.name: metric for metric in CATALOG}
