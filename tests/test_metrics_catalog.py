"""The metric catalog: documented exactly as coded, named by Prometheus conventions,
and complete against the contract (docs/contracts.md#metrics)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from exporters.catalog import CATALOG, CATALOG_BY_NAME, LIMIT_KINDS, LIMITS, MetricDef
from exporters.catalog_doc import DOC_PATH, main, render

NAME = re.compile(r"driftline_[a-z][a-z0-9]*(_[a-z0-9]+)*")
LABEL = re.compile(r"[a-z][a-z0-9_]*")
NON_BASE_UNITS = ("milliseconds", "microseconds", "minutes", "hours", "days", "ms",
                  "percent", "kilobytes", "megabytes", "kb", "mb", "bits")

# The metrics dashboards and alert rules rely on: metric -> labels. Changing one is a contract change.
CONTRACT = {
    "driftline_events_total": ("model", "model_version", "type"),
    "driftline_events_rejected_total": ("reason",),
    "driftline_limit_exceeded_total": ("kind",),
    "driftline_model_info": ("model", "model_version", "data_version", "reference_id", "role"),
    "driftline_feature_drift_score": ("model", "model_version", "feature", "method"),
    "driftline_feature_drift_detected": ("model", "model_version", "feature"),
    "driftline_dataset_drift_share": ("model", "model_version"),
    "driftline_dataset_drift_detected": ("model", "model_version"),
    "driftline_prediction_drift_score": ("model", "model_version", "output", "method"),
    "driftline_prediction_drift_detected": ("model", "model_version", "output"),
    "driftline_feature_missing_ratio": ("model", "model_version", "feature"),
    "driftline_feature_out_of_range_ratio": ("model", "model_version", "feature"),
    "driftline_feature_new_category_ratio": ("model", "model_version", "feature"),
    "driftline_feature_type_error_ratio": ("model", "model_version", "feature"),
    "driftline_performance": ("model", "model_version", "metric", "source"),
    "driftline_predictions_scored_total": ("model", "model_version", "source"),
    "driftline_predictions_correct_total": ("model", "model_version", "source"),
    "driftline_class_recall": ("model", "model_version", "class"),
    "driftline_class_support": ("model", "model_version", "class"),
    "driftline_concept_drift_detected": ("model", "model_version", "detector"),
    "driftline_prediction_confidence": ("model", "model_version"),
    "driftline_prediction_entropy": ("model", "model_version"),
    "driftline_low_confidence_ratio": ("model", "model_version"),
    "driftline_labels_total": ("model", "outcome"),
    "driftline_label_delay_seconds": ("model",),
    "driftline_segment_events_total": ("model", "model_version", "segment", "value"),
    "driftline_segment_positive_rate": ("model", "model_version", "segment", "value"),
    "driftline_segment_accuracy": ("model", "model_version", "segment", "value"),
    "driftline_fairness_disparate_impact": ("model", "model_version", "segment"),
    "driftline_fairness_parity_difference": ("model", "model_version", "segment"),
    "driftline_prediction_latency_seconds": ("model", "model_version"),
    "driftline_prediction_errors_total": ("model", "model_version"),
    "driftline_window_end_timestamp_seconds": ("model", "model_version"),
    "driftline_windows_total": ("model", "model_version"),
    "driftline_dataset_drift_windows_total": ("model", "model_version"),
    "driftline_feature_drift_windows_total": ("model", "model_version", "feature"),
    "driftline_consumer_lag": ("topic", "partition"),
    "driftline_processing_delay_seconds": (),
    "driftline_instance_up": ("model", "model_version", "instance"),
    "driftline_embedding_drift_score": ("model", "model_version", "embedding"),
    "driftline_embedding_drift_detected": ("model", "model_version", "embedding"),
    "driftline_embedding_drift_windows_total": ("model", "model_version", "embedding"),
}
# The table's wildcard rows: driftline_process_*, driftline_host_* (collector CPU and
# memory), driftline_instance_* (heartbeat health per instance).
WILDCARDS = {
    "driftline_process_": {"cpu", "memory"},
    "driftline_host_": {"cpu", "memory"},
    "driftline_instance_": {"cpu", "memory", "requests", "errors"},
}
HISTOGRAMS = {
    "driftline_label_delay_seconds",
    "driftline_prediction_latency_seconds",
    "driftline_processing_delay_seconds",
}


def test_docs_metrics_md_is_up_to_date() -> None:
    assert DOC_PATH.read_text(encoding="utf-8") == render(), (
        "docs/metrics.md is out of date: run python -m exporters.catalog_doc"
    )
    assert main(["--check", str(DOC_PATH)]) == 0


def test_the_check_fails_on_a_stale_page(tmp_path: Path) -> None:
    stale = tmp_path / "metrics.md"
    stale.write_text(render().replace("driftline_windows_total", "driftline_windows"))
    assert main(["--check", str(stale)]) == 1
    assert main([str(stale)]) == 0
    assert main(["--check", str(stale)]) == 0


def test_every_metric_is_documented_with_its_labels() -> None:
    page = render()
    for metric in CATALOG:
        labels = ", ".join(f"`{label}`" for label in metric.labels) or "none"
        assert f"| `{metric.name}` | {metric.kind} | {labels} |" in page


@pytest.mark.parametrize("metric", CATALOG, ids=lambda m: m.name)
def test_names_follow_prometheus_conventions(metric: MetricDef) -> None:
    assert NAME.fullmatch(metric.name), metric.name
    words = metric.name.split("_")
    assert not set(words) & set(NON_BASE_UNITS), f"{metric.name}: use base units"
    if metric.kind == "counter":
        assert metric.name.endswith("_total")
    else:
        assert not metric.name.endswith("_total")
    if metric.kind == "histogram":
        assert metric.buckets and list(metric.buckets) == sorted(set(metric.buckets))
        assert metric.buckets[0] > 0
    else:
        assert not metric.buckets
    assert not metric.name.endswith(("_count", "_sum", "_bucket", "_created", "_info_total"))
    if "ratio" in words:
        assert metric.name.endswith("_ratio"), "a ratio is named by its suffix"
    for label in metric.labels:
        assert LABEL.fullmatch(label) and label not in {"le", "quantile"}, label
        assert not label.startswith("__")
    assert len(set(metric.labels)) == len(metric.labels)
    assert metric.help.endswith(".") and not metric.help[0].islower()
    assert metric.group


def test_names_are_unique() -> None:
    assert len(CATALOG_BY_NAME) == len(CATALOG)


def test_every_contract_metric_is_in_the_catalog() -> None:
    for name, labels in CONTRACT.items():
        assert name in CATALOG_BY_NAME, name
        assert CATALOG_BY_NAME[name].labels == labels, name
        expected_kind = "histogram" if name in HISTOGRAMS else None
        if expected_kind:
            assert CATALOG_BY_NAME[name].kind == expected_kind
    for prefix, topics in WILDCARDS.items():
        names = [name.removeprefix(prefix) for name in CATALOG_BY_NAME if name.startswith(prefix)]
        for topic in topics:
            assert any(topic in rest for rest in names), f"{prefix}* has no {topic} metric"
    for name in CATALOG_BY_NAME:
        if name.startswith("driftline_instance_"):
            assert CATALOG_BY_NAME[name].labels == ("model", "model_version", "instance")


def test_units_come_from_the_suffix() -> None:
    assert CATALOG_BY_NAME["driftline_process_cpu_seconds_total"].unit == "s"
    assert CATALOG_BY_NAME["driftline_process_resident_memory_bytes"].unit == "By"
    assert CATALOG_BY_NAME["driftline_host_cpu_ratio"].unit == "1"
    assert CATALOG_BY_NAME["driftline_events_total"].unit == ""


def test_the_configuration_limits_are_the_catalog_limits() -> None:
    """``limits:`` takes its keys and defaults from the catalog, which documents them."""
    from collector.config import Limits

    defaults = {name: field.default for name, field in Limits.model_fields.items()}
    assert defaults == {limit.setting: limit.default for limit in LIMITS}
    assert [limit.kind for limit in LIMITS] == list(LIMIT_KINDS)
