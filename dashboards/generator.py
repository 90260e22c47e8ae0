"""The four Driftline dashboards, built with grafana-foundation-sdk (Grafana 11 line).

Every panel reads the Prometheus datasource by the fixed uid ``driftline-prometheus``
(provisioned by ``dashboards/provisioning/datasources/prometheus.yaml``), so the JSON
works unchanged in the compose stack and, through :func:`dashboards.push`, in an
existing Grafana that provisions a datasource with that uid.

Every metric a query names is in ``exporters/catalog.py``; the tests check it, and
the end-to-end test runs every query against a real Prometheus scraping a real
collector. Queries never paper over missing data with constant fallbacks.

The output is reproducible byte for byte: keys sorted, two-space indentation, one
trailing newline, panel ids numbered in order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import (
    bargauge,
    dashboard,
    prometheus,
    stat,
    statetimeline,
    table,
    text,
    timeseries,
)
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import (
    DashboardLinkType,
    DataSourceRef,
    DataTransformerConfig,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat
from grafana_foundation_sdk.models.text import TextMode

DATASOURCE_UID = "driftline-prometheus"
JSON_DIR = Path(__file__).resolve().parent / "json"
DATASOURCE = DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
TAGS = ["driftline"]
RATE = "$__rate_interval"
MV = 'model=~"$model", model_version=~"$model_version"'
ANNOTATION_NAME = "Model version changes"
REPORT_URL = "${collector_url}/reports/${model}/${model_version}/latest"

Dashboard = dashboard.Dashboard
Query = prometheus.Dataquery


# --- small builders -----------------------------------------------------------------------


def _query(expr: str, legend: str = "", ref: str = "A", *, instant: bool = False) -> Query:
    query = Query().expr(expr).ref_id(ref).datasource(DATASOURCE)
    if legend:
        query = query.legend_format(legend)
    return query.instant() if instant else query.range()


def _table_query(expr: str, ref: str = "A") -> Query:
    return _query(expr, ref=ref, instant=True).format(PromQueryFormat.TABLE)


def _thresholds(*steps: tuple[float | None, str]) -> dashboard.ThresholdsConfig:
    return (
        dashboard.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=value, color=color) for value, color in steps])
    )


def _drift_mapping() -> list[Any]:
    return [
        ValueMap(
            options={
                "0": ValueMappingResult(text="no drift", color="green", index=0),
                "1": ValueMappingResult(text="drift", color="red", index=1),
            }
        )
    ]


def _flag_panel(title: str, description: str, prefix: str, label: str) -> timeseries.Panel:
    """A drift test's ``<prefix>_score``, ``_detected`` and flagged windows per hour, per ``label``."""
    legend = f"{{{{{label}}}}}"
    return _timeseries(
        title,
        description,
        "short",
        _query(f"{prefix}_score{{{MV}}}", f"{legend} score"),
        _query(f"{prefix}_detected{{{MV}}}", f"{legend} flagged", "B"),
        _query(f"increase({prefix}_windows_total{{{MV}}}[1h])", f"{legend} windows flagged per hour", "C"),
        span=24,
    )


def _timeseries(title: str, description: str, unit: str, *queries: Query, span: int = 12) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(span)
        .height(8)
    )
    for query in queries:
        panel = panel.with_target(query)
    return panel


def _stat(title: str, description: str, unit: str, query: Query, span: int = 6) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(span)
        .height(5)
        .with_target(query)
    )


def _timeline(title: str, description: str, query: Query, span: int = 12) -> statetimeline.Panel:
    return (
        statetimeline.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .span(span)
        .height(8)
        .mappings(_drift_mapping())
        .thresholds(_thresholds((None, "green"), (1, "red")))
        .with_target(query)
    )


def _table(title: str, description: str, *queries: Query, span: int = 12) -> table.Panel:
    panel = (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .span(span)
        .height(8)
        .with_transformation(DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            DataTransformerConfig(
                id_val="organize", options={"excludeByName": {"Time": True, "__name__": True}}
            )
        )
    )
    for query in queries:
        panel = panel.with_target(query)
    return panel


def _bars(title: str, description: str, unit: str, *queries: Query, span: int = 12) -> bargauge.Panel:
    panel = (
        bargauge.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(span)
        .height(8)
    )
    for query in queries:
        panel = panel.with_target(query)
    return panel


def _base(uid: str, title: str, description: str, selector: str = "") -> Dashboard:
    """A dashboard with the shared tags, links and the version-change annotation.

    A version change is a ``driftline_model_info`` series that did not exist 10 minutes
    earlier: a new model version, data version or reference.
    """
    info = f"driftline_model_info{selector}"
    return (
        Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .link(
            dashboard.DashboardLink("Driftline")
            .type(DashboardLinkType.DASHBOARDS)
            .tags(TAGS)
            .as_dropdown(True)
            .include_vars(False)
            .keep_time(True)
        )
        .annotation(
            dashboard.AnnotationQuery()
            .name(ANNOTATION_NAME)
            .datasource(DATASOURCE)
            .enable(True)
            .icon_color("purple")
            .expr(f"{info} unless {info} offset 10m")
        )
    )


def _model_variables(board: Dashboard) -> Dashboard:
    return board.with_variable(
        dashboard.QueryVariable("model")
        .label("Model")
        .datasource(DATASOURCE)
        .query("label_values(driftline_model_info, model)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
    ).with_variable(
        dashboard.QueryVariable("model_version")
        .label("Model version")
        .datasource(DATASOURCE)
        .query('label_values(driftline_model_info{model=~"$model"}, model_version)')
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_DESC)
    )


# --- the dashboards -----------------------------------------------------------------------


def overview() -> Dashboard:
    """Every active model version at a glance: traffic, errors, latency, drift, performance."""
    predictions = 'driftline_events_total{type="prediction"}'
    by_mv = "sum by (model, model_version)"
    return (
        _base(
            "driftline-overview",
            "Driftline / Overview",
            "Every active model version: traffic, errors, latency, drift, performance, alerts.",
        )
        .with_row(dashboard.Row("Model versions"))
        .with_panel(
            _table(
                "Active model versions",
                "One row per active model version with its data version and reference.",
                _table_query("driftline_model_info"),
                span=12,
            )
        )
        .with_panel(
            _table(
                "Active alerts",
                "Driftline alerts pending or firing in Prometheus (see docs/runbook.md).",
                _table_query('ALERTS{alertname=~"Driftline.+"}'),
                span=12,
            )
        )
        .with_row(dashboard.Row("Serving"))
        .with_panel(
            _timeseries(
                "Predictions per second",
                "Accepted prediction events per second per model version.",
                "reqps",
                _query(f"{by_mv} (rate({predictions}[{RATE}]))", "{{model}} {{model_version}}"),
                span=8,
            )
        )
        .with_panel(
            _timeseries(
                "Error ratio",
                "Share of prediction events that carry an error.",
                "percentunit",
                _query(
                    f"{by_mv} (rate(driftline_prediction_errors_total[{RATE}]))"
                    f" / {by_mv} (rate({predictions}[{RATE}]))",
                    "{{model}} {{model_version}}",
                ),
                span=8,
            )
        )
        .with_panel(
            _timeseries(
                "Latency p95",
                "95th percentile of the latency reported by the serving code.",
                "s",
                _query(
                    "histogram_quantile(0.95, sum by (model, model_version, le) "
                    f"(rate(driftline_prediction_latency_seconds_bucket[{RATE}])))",
                    "{{model}} {{model_version}}",
                ),
                span=8,
            )
        )
        .with_row(dashboard.Row("Drift and performance"))
        .with_panel(
            _timeseries(
                "Dataset drift share",
                "Share of drifted features in each model version's last window.",
                "percentunit",
                _query("driftline_dataset_drift_share", "{{model}} {{model_version}}"),
            ).max(1)
        )
        .with_panel(
            _timeline(
                "Dataset drift",
                "Whether each model version's last window is dataset drift.",
                _query("driftline_dataset_drift_detected", "{{model}} {{model_version}}"),
            )
        )
        .with_panel(
            _timeseries(
                "Realized performance",
                "Performance per window from joined ground-truth labels.",
                "none",
                _query(
                    'driftline_performance{source="realized"}',
                    "{{model}} {{model_version}} {{metric}}",
                ),
            )
        )
        .with_panel(
            _timeseries(
                "Estimated performance",
                "Performance estimated without labels: classifiers' from the predicted probabilities "
                "(CBPE), regressors' errors from the features and predictions (DLE).",
                "none",
                _query(
                    'driftline_performance{source="estimated"}',
                    "{{model}} {{model_version}} {{metric}}",
                ),
            )
        )
    )


def model() -> Dashboard:
    """One model version in depth: drift, quality, predictions, performance, fairness."""
    report_link = (
        dashboard.DashboardLink("Latest drift report")
        .type(DashboardLinkType.LINK)
        .url(REPORT_URL)
        .target_blank(True)
        .icon("doc")
    )
    board = _model_variables(
        _base(
            "driftline-model",
            "Driftline / Model",
            "One model version: data drift and quality, predictions, performance, fairness.",
            '{model=~"$model"}',
        )
    )
    board = board.with_variable(
        dashboard.TextBoxVariable("collector_url")
        .label("Collector URL")
        .default_value("http://localhost:9108")
    ).link(report_link)
    for build_rows in (_model_version_rows, _model_drift_rows, _model_quality_rows):
        board = build_rows(board)
    for build_rows in (_model_prediction_rows, _model_performance_rows, _model_comparison_rows):
        board = build_rows(board)
    return _model_fairness_rows(board)


def _model_version_rows(board: Dashboard) -> Dashboard:
    return (
        board.with_row(dashboard.Row("Version"))
        .with_panel(
            _table(
                "Data version and reference",
                "The data version and the reference this model version is compared against.",
                _table_query(f"driftline_model_info{{{MV}}}"),
                span=12,
            )
        )
        .with_panel(
            _stat(
                "Last window age",
                "Seconds since the last evaluated window closed.",
                "s",
                _query(f"time() - driftline_window_end_timestamp_seconds{{{MV}}}", instant=True),
            )
        )
        .with_panel(
            _stat(
                "Reference changes (24 h)",
                "Times the reference of this version changed to different data (its id in the table).",
                "short",
                _query(f"sum(increase(driftline_reference_changes_total{{{MV}}}[24h]))", instant=True),
            )
        )
        .with_panel(
            text.Panel()
            .title("Drift report")
            .span(6)
            .height(5)
            .mode(TextMode.MARKDOWN)
            .content(f"[Open the latest drift report]({REPORT_URL})")
        )
    )


def _model_drift_rows(board: Dashboard) -> Dashboard:
    return (
        board.with_row(dashboard.Row("Data drift"))
        .with_panel(
            _timeseries(
                "Drift share over time",
                "Share of drifted features per window.",
                "percentunit",
                _query(f"driftline_dataset_drift_share{{{MV}}}", "drift share"),
                _query(f"driftline_dataset_drift_detected{{{MV}}}", "dataset drift", "B"),
            ).max(1)
        )
        .with_panel(
            _bars(
                "Top drifted features",
                "Features flagged in the most windows over the dashboard's time range.",
                "short",
                _query(
                    f"topk(10, increase(driftline_feature_drift_windows_total{{{MV}}}[$__range]))",
                    "{{feature}}",
                    instant=True,
                ),
            )
        )
        .with_panel(
            _table(
                "Per-feature drift",
                "Last window's drift statistic, its method and the flag, per feature.",
                _table_query(f"driftline_feature_drift_score{{{MV}}}", "A"),
                _table_query(f"driftline_feature_drift_detected{{{MV}}}", "B"),
                span=24,
            )
        )
        .with_panel(
            _flag_panel(
                "Multivariate drift",
                "Multivariate drift score per method (mean PCA reconstruction error, or the domain "
                "classifier's ROC AUC) and its flag: features moving together in a way no single "
                "feature shows.",
                "driftline_multivariate_drift",
                "method",
            )
        )
        .with_panel(
            _flag_panel(
                "Embedding drift",
                "Per embedding name, the maximum mean discrepancy (squared) of the window's vectors "
                "against the reference sample, and its flag (permutation p-value at most alpha): "
                "the texts or images behind the vectors changed.",
                "driftline_embedding_drift",
                "embedding",
            )
        )
        .with_panel(
            _timeseries(
                "Windows evaluated and flagged",
                "Windows evaluated and windows flagged as dataset drift, per hour.",
                "short",
                _query(f"increase(driftline_windows_total{{{MV}}}[1h])", "evaluated"),
                _query(
                    f"increase(driftline_dataset_drift_windows_total{{{MV}}}[1h])",
                    "dataset drift",
                    "B",
                ),
                span=24,
            )
        )
    )


def _model_quality_rows(board: Dashboard) -> Dashboard:
    board = board.with_row(dashboard.Row("Data quality"))
    checks = (
        ("Missing values", "driftline_feature_missing_ratio"),
        ("Out of reference range", "driftline_feature_out_of_range_ratio"),
        ("New categories", "driftline_feature_new_category_ratio"),
        ("Type errors", "driftline_feature_type_error_ratio"),
    )
    for title, metric in checks:
        board = board.with_panel(
            _timeseries(
                title,
                f"{metric} per feature in the last window.",
                "percentunit",
                _query(f"{metric}{{{MV}}}", "{{feature}}"),
                span=6,
            )
        )
    return board


def _model_prediction_rows(board: Dashboard) -> Dashboard:
    return (
        board.with_row(dashboard.Row("Predictions"))
        .with_panel(
            _timeseries(
                "Prediction drift",
                "Drift statistic of the predicted value and class probabilities.",
                "none",
                _query(f"driftline_prediction_drift_score{{{MV}}}", "{{output}} ({{method}})"),
                span=8,
            )
        )
        .with_panel(
            _timeline(
                "Prediction drift detected",
                "Whether the model output drifted in the last window.",
                _query(f"driftline_prediction_drift_detected{{{MV}}}", "{{output}}"),
                span=8,
            )
        )
        .with_panel(
            _timeseries(
                "Confidence",
                "Mean top-class probability, mean entropy and share of low-confidence predictions.",
                "none",
                _query(f"driftline_prediction_confidence{{{MV}}}", "mean confidence"),
                _query(f"driftline_prediction_entropy{{{MV}}}", "mean entropy", "B"),
                _query(f"driftline_low_confidence_ratio{{{MV}}}", "low-confidence share", "C"),
                span=8,
            )
        )
    )


def _model_performance_rows(board: Dashboard) -> Dashboard:
    return (
        board.with_row(dashboard.Row("Performance"))
        .with_panel(
            _timeseries(
                "Realized vs estimated performance",
                "Realized from joined labels; estimated without labels (CBPE from probabilities; "
                "a regressor's MAE, MSE and RMSE by DLE). Also each metric's threshold from the "
                "reference at the window size (the alerts fire past it).",
                "none",
                _query(f"driftline_performance{{{MV}}}", "{{source}} {{metric}}"),
                _query(
                    f"driftline_performance_threshold{{{MV}}}",
                    "{{source}} {{metric}} threshold ({{bound}})",
                    "B",
                ),
            )
        )
        .with_panel(
            _timeline(
                "Concept drift",
                "Whether each concept-drift detector flags a change in the error stream.",
                _query(f"driftline_concept_drift_detected{{{MV}}}", "{{detector}}"),
            )
        )
        .with_panel(
            _timeseries(
                "Recall per class",
                "Recall per class in the last window of joined labels.",
                "percentunit",
                _query(f"driftline_class_recall{{{MV}}}", "{{class}}"),
                span=8,
            )
        )
        .with_panel(
            _timeseries(
                "Labelled events per class",
                "Class balance of the joined labels in the last window.",
                "short",
                _query(f"driftline_class_support{{{MV}}}", "{{class}}"),
                span=8,
            )
        )
        .with_panel(
            _timeseries(
                "Label delay and joins",
                "Median and 95th percentile delay from prediction to label.",
                "s",
                _query(
                    "histogram_quantile(0.5, sum by (le) "
                    f'(rate(driftline_label_delay_seconds_bucket{{model=~"$model"}}[{RATE}])))',
                    "p50",
                ),
                _query(
                    "histogram_quantile(0.95, sum by (le) "
                    f'(rate(driftline_label_delay_seconds_bucket{{model=~"$model"}}[{RATE}])))',
                    "p95",
                    "B",
                ),
                span=8,
            )
        )
        .with_panel(
            _timeseries(
                "Labels by outcome",
                "Labels per second by final outcome: joined, unmatched, expired.",
                "ops",
                _query(
                    f'sum by (outcome) (rate(driftline_labels_total{{model=~"$model"}}[{RATE}]))',
                    "{{outcome}}",
                ),
                span=12,
            )
        )
        .with_panel(
            _timeseries(
                "Early labels waiting",
                "Labels read before their prediction, waiting for it (to join, or expire unmatched).",
                "short",
                _query('sum(driftline_labels_early{model=~"$model"})', "waiting"),
                span=12,
            )
        )
    )


def _model_comparison_rows(board: Dashboard) -> Dashboard:
    """Every live version of the model, champion and challengers, with the version as the series."""
    model = 'model=~"$model"'
    role = "* on(model, model_version) group_left(role) driftline_model_info"
    counts = "sum by (model, model_version, source) (increase(driftline_predictions_{}_total{{{}}}[1h]))"
    errors = "sum by (model, model_version, source) (increase(driftline_regression_{}_total{{{}}}[1h]))"
    scored = errors.format("scored", model)
    return (
        board.with_row(dashboard.Row("Version comparison"))
        .with_panel(
            _timeseries(
                "Performance and drift by version",
                "Every version of the model on the same axes: realized (else estimated) accuracy "
                "per window and the share of drifted features, one series per version and role.",
                "percentunit",
                _query(
                    f'driftline_performance{{{model}, metric="accuracy"}} {role}',
                    "{{model_version}} ({{role}}) accuracy, {{source}}",
                ),
                _query(
                    f"driftline_dataset_drift_share{{{model}}} {role}",
                    "{{model_version}} ({{role}}) drift share",
                    "B",
                ),
                span=12,
            ).max(1)
        )
        .with_panel(
            _bars(
                "Accuracy over the last hour by version",
                "Correct over scored predictions in the last hour: what DriftlineChallengerWorse "
                "compares between each challenger and the champion.",
                "percentunit",
                _query(
                    f"({counts.format('correct', model)} / {counts.format('scored', model)}) {role}",
                    "{{model_version}} ({{role}}), {{source}}",
                    instant=True,
                ),
                span=6,
            ).max(1)
        )
        .with_panel(
            _bars(
                "Regression errors over the last hour by version",
                "Mean absolute error (what DriftlineChallengerWorse compares for a regressor) and "
                "root mean squared error of each version's predictions with joined labels in the "
                "last hour; regressors only, in the label's unit.",
                "none",
                _query(
                    f"({errors.format('absolute_error', model)} / {scored}) {role}",
                    "{{model_version}} ({{role}}) MAE",
                    instant=True,
                ),
                _query(
                    f"sqrt({errors.format('squared_error', model)} / {scored}) {role}",
                    "{{model_version}} ({{role}}) RMSE",
                    "B",
                    instant=True,
                ),
                span=6,
            )
        )
    )


def _model_fairness_rows(board: Dashboard) -> Dashboard:
    return (
        board.with_row(dashboard.Row("Fairness by segment"))
        .with_panel(
            _timeseries(
                "Positive rate by segment",
                "Positive-prediction rate per segment value.",
                "percentunit",
                _query(f"driftline_segment_positive_rate{{{MV}}}", "{{segment}}={{value}}"),
                span=8,
            )
        )
        .with_panel(
            _timeseries(
                "Accuracy by segment",
                "Realized accuracy per segment value.",
                "percentunit",
                _query(f"driftline_segment_accuracy{{{MV}}}", "{{segment}}={{value}}"),
                span=8,
            )
        )
        .with_panel(
            _timeseries(
                "Traffic by segment",
                "Predictions per second per segment value.",
                "reqps",
                _query(
                    f"rate(driftline_segment_events_total{{{MV}}}[{RATE}])",
                    "{{segment}}={{value}}",
                ),
                span=8,
            )
        )
        .with_panel(
            _timeseries(
                "Disparate impact",
                "Lowest over highest positive rate across a segment's values (four-fifths rule).",
                "none",
                _query(f"driftline_fairness_disparate_impact{{{MV}}}", "{{segment}}"),
            )
            .thresholds(_thresholds((None, "red"), (0.8, "green")))
            .max(1)
        )
        .with_panel(
            _timeseries(
                "Parity difference",
                "Highest minus lowest positive rate across a segment's values.",
                "percentunit",
                _query(f"driftline_fairness_parity_difference{{{MV}}}", "{{segment}}"),
            ).max(1)
        )
    )


def feature_drift() -> Dashboard:
    """Per-feature drift over time for one model version."""
    board = _model_variables(
        _base(
            "driftline-feature-drift",
            "Driftline / Feature drift",
            "Per-feature drift scores and flags over time for one model version.",
            '{model=~"$model"}',
        )
    )
    return (
        board.with_row(dashboard.Row("Features"))
        .with_panel(
            _timeline(
                "Drift flags per feature",
                "Each feature's drift flag per window (after persistence).",
                _query(f"driftline_feature_drift_detected{{{MV}}}", "{{feature}}"),
                span=24,
            )
        )
        .with_panel(
            _timeseries(
                "Drift score per feature",
                "Each feature's drift statistic; compare features that share a method.",
                "none",
                _query(f"driftline_feature_drift_score{{{MV}}}", "{{feature}} ({{method}})"),
                span=24,
            )
        )
        .with_panel(
            _bars(
                "Share of windows flagged per feature",
                "Windows in which the feature drifted over windows evaluated, in the time range.",
                "percentunit",
                _query(
                    f"increase(driftline_feature_drift_windows_total{{{MV}}}[$__range])"
                    " / ignoring(feature) group_left "
                    f"increase(driftline_windows_total{{{MV}}}[$__range])",
                    "{{feature}}",
                    instant=True,
                ),
                span=24,
            ).max(1)
        )
    )


def system_health() -> Dashboard:
    """The collector's own health and the serving instances' heartbeats."""
    board = _base(
        "driftline-system-health",
        "Driftline / System health",
        "Collector resources, throughput, lag and delay; serving instances' health.",
    )
    for build_rows in (_collector_rows, _pipeline_rows, _instance_rows):
        board = build_rows(board)
    return board


def _collector_rows(board: Dashboard) -> Dashboard:
    return (
        board.with_row(dashboard.Row("Collector resources"))
        .with_panel(
            _timeseries(
                "Collector CPU",
                "CPU seconds per second used by the collector process, and host CPU use.",
                "percentunit",
                _query(f"rate(driftline_process_cpu_seconds_total[{RATE}])", "process {{instance}}"),
                _query("driftline_host_cpu_ratio", "host {{instance}}", "B"),
                span=8,
            )
        )
        .with_panel(
            _timeseries(
                "Collector memory",
                "Resident memory of the collector process.",
                "bytes",
                _query("driftline_process_resident_memory_bytes", "{{instance}}"),
                span=8,
            )
        )
        .with_panel(
            _timeseries(
                "Host memory in use",
                "Share of the host's memory in use (total minus available).",
                "percentunit",
                _query("driftline_host_memory_used_ratio", "{{instance}}"),
                span=8,
            ).max(1)
        )
        .with_panel(
            _timeseries(
                "Open files and threads",
                "File descriptors and threads of the collector process.",
                "short",
                _query("driftline_process_open_fds", "open fds {{instance}}"),
                _query("driftline_process_threads", "threads {{instance}}", "B"),
                span=12,
            )
        )
        .with_panel(
            _stat(
                "Collector uptime",
                "Time since the collector process started.",
                "s",
                _query("time() - driftline_process_start_time_seconds", "{{instance}}", instant=True),
                span=12,
            )
        )
    )


def _pipeline_rows(board: Dashboard) -> Dashboard:
    return (
        board.with_row(dashboard.Row("Pipeline"))
        .with_panel(
            _timeseries(
                "Throughput",
                "Events accepted per second by type, and rejected per second by reason.",
                "ops",
                _query(f"sum by (type) (rate(driftline_events_total[{RATE}]))", "{{type}}"),
                _query(
                    f"sum by (reason) (rate(driftline_events_rejected_total[{RATE}]))",
                    "rejected: {{reason}}",
                    "B",
                ),
                span=8,
            )
        )
        .with_panel(
            _timeseries(
                "Consumer lag",
                "Messages behind the end of each partition.",
                "short",
                _query("driftline_consumer_lag", "{{topic}}/{{partition}}"),
                span=8,
            )
        )
        .with_panel(
            _timeseries(
                "Limits, failures and state snapshots",
                "Input refused or folded by a cardinality limit, failed exports, detectors that raised on a"
                " window (that window skipped), and partition state snapshots by outcome, per second.",
                "ops",
                _query(f"sum by (kind) (rate(driftline_limit_exceeded_total[{RATE}]))", "limit: {{kind}}"),
                _query(
                    f"sum by (exporter) (rate(driftline_exporter_failures_total[{RATE}]))",
                    "export failed: {{exporter}}",
                    "B",
                ),
                _query(
                    f"sum by (detector) (rate(driftline_detector_failures_total[{RATE}]))",
                    "detector failed: {{detector}}",
                    "C",
                ),
                _query(
                    f"sum by (outcome) (rate(driftline_state_snapshots_total[{RATE}]))",
                    "state: {{outcome}}",
                    "D",
                ),
                span=8,
            )
        )
        .with_panel(
            _timeseries(
                "Processing delay",
                "Delay from event time to processed: median and 95th percentile.",
                "s",
                _histogram_quantile(0.5, "driftline_processing_delay_seconds", "p50"),
                _histogram_quantile(0.95, "driftline_processing_delay_seconds", "p95", "B"),
            )
        )
        .with_panel(
            _timeseries(
                "Batch duration",
                "Time to process one polled batch, decode to export: median and 95th percentile.",
                "s",
                _histogram_quantile(0.5, "driftline_batch_duration_seconds", "p50"),
                _histogram_quantile(0.95, "driftline_batch_duration_seconds", "p95", "B"),
            )
        )
        .with_panel(
            _timeseries(
                "Kafka connection and commits",
                "1 while the collector reaches its consumer group's coordinator, 0 while not; "
                "failed offset commits per second.",
                "short",
                _query("driftline_source_connected", "connected {{instance}}"),
                _query(
                    f"rate(driftline_commit_failures_total[{RATE}])",
                    "commit failures/s {{instance}}",
                    "B",
                ),
                span=24,
            )
        )
    )


def _histogram_quantile(quantile: float, metric: str, legend: str, ref: str = "A") -> Query:
    return _query(f"histogram_quantile({quantile}, sum by (le) (rate({metric}_bucket[{RATE}])))", legend, ref)


def _instance_rows(board: Dashboard) -> Dashboard:
    instance = "{{model}} {{model_version}} {{instance}}"
    return (
        board.with_row(dashboard.Row("Serving instances"))
        .with_panel(
            _timeline(
                "Instances up",
                "1 while a serving instance sends heartbeats, 0 after it stops.",
                _query("driftline_instance_up", instance),
                span=24,
            )
            .mappings(
                [
                    ValueMap(
                        options={
                            "0": ValueMappingResult(text="down", color="red", index=0),
                            "1": ValueMappingResult(text="up", color="green", index=1),
                        }
                    )
                ]
            )
            .thresholds(_thresholds((None, "red"), (1, "green")))
        )
        .with_panel(
            _timeseries(
                "Instance CPU",
                "CPU use of each serving instance from its last heartbeat.",
                "percentunit",
                _query("driftline_instance_cpu_ratio", instance),
                span=8,
            )
        )
        .with_panel(
            _timeseries(
                "Instance memory",
                "Resident memory of each serving instance from its last heartbeat.",
                "bytes",
                _query("driftline_instance_resident_memory_bytes", instance),
                span=8,
            )
        )
        .with_panel(
            _timeseries(
                "Instance uptime and heartbeat age",
                "Uptime reported by each instance, and seconds since its last heartbeat.",
                "s",
                _query("driftline_instance_uptime_seconds", "uptime " + instance),
                _query(
                    "time() - driftline_instance_last_heartbeat_timestamp_seconds",
                    "heartbeat age " + instance,
                    "B",
                ),
                span=8,
            )
        )
        .with_panel(
            _timeseries(
                "Instance requests",
                "Requests per second served by each instance.",
                "reqps",
                _query(f"rate(driftline_instance_requests_total[{RATE}])", instance),
            )
        )
        .with_panel(
            _timeseries(
                "Instance error ratio",
                "Failed over served requests of each instance.",
                "percentunit",
                _query(
                    f"rate(driftline_instance_errors_total[{RATE}])"
                    f" / rate(driftline_instance_requests_total[{RATE}])",
                    instance,
                ),
            )
        )
    )


# --- rendering ----------------------------------------------------------------------------


def dashboards() -> dict[str, Dashboard]:
    """The dashboards by output file stem."""
    return {
        "overview": overview(),
        "model": model(),
        "feature-drift": feature_drift(),
        "system-health": system_health(),
    }


def to_dict(board: Dashboard) -> dict[str, Any]:
    """The dashboard as Grafana JSON, with panel ids numbered and annotation formats set."""
    doc: dict[str, Any] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    for number, panel in enumerate(_all_panels(doc), start=1):
        panel["id"] = number
    for annotation in doc.get("annotations", {}).get("list", []):
        if annotation.get("name") == ANNOTATION_NAME:
            # The SDK's generic annotation model lacks the Prometheus-specific fields.
            annotation.update(
                {
                    "step": "1m",
                    "tagKeys": "model,model_version,data_version",
                    "titleFormat": "{{model}} {{model_version}} (data {{data_version}})",
                    "textFormat": "reference {{reference_id}}",
                }
            )
    return doc


def render(board: Dashboard) -> str:
    """The dashboard's JSON text exactly as committed."""
    return json.dumps(to_dict(board), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def build(out_dir: Path) -> list[Path]:
    """Write every dashboard to ``out_dir/<stem>.json``; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, board in dashboards().items():
        path = out_dir / f"{stem}.json"
        path.write_text(render(board), encoding="utf-8")
        written.append(path)
    return written


def panel_queries(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL expression) for every query target of every panel."""
    return [
        (str(panel.get("title", "")), str(target["expr"]))
        for panel in _all_panels(doc)
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def _all_panels(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in doc.get("panels", []):
        yield panel
        yield from panel.get("panels", [])
