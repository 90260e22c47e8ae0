"""Every evaluated window as rows of one stable table (docs/batch.md#windows-table).

:class:`WindowHistory` is a window listener and a label-window listener: it
turns each :class:`~detectors.window_report.WindowReport` and
:class:`~detectors.window_report.LabelWindowReport` into rows of
:data:`COLUMNS` (one row per feature, per model output and per segment, and
one window-level row whose ``feature``, ``output`` and ``segment`` are empty),
keeps the last ``keep`` windows of each model version for
``/api/v1/models/{model}/{version}/windows`` and hands every row to an
optional sink (``replay --windows-out``). The values are the results the
detectors returned, the same ones the collector exports to ``/metrics``.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from detectors.data_drift import FeatureDrift
from detectors.embedding_drift import EmbeddingDriftResult
from detectors.fairness import FairnessResult
from detectors.multivariate_drift import MULTIVARIATE_METHODS, MultivariateDriftResult
from detectors.performance_threshold import PerformanceThreshold
from detectors.window_report import LabelWindowReport, WindowReport

Row = dict[str, Any]
RowSink = Callable[[list[Row]], None]
Values = tuple[Any, ...]
"""A kept row: its values in the order of :data:`COLUMNS` (a tuple costs a fifth of the dict)."""

PERFORMANCE_METRICS = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "log_loss",
    "mae",
    "rmse",
    "mape",
    "r2",
)
NAMES = ("feature", "output", "segment", "segment_value")
TEXT = (*NAMES, "embedding")
THRESHOLD_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "mae", "rmse")
LATER_PERFORMANCE_METRICS = (
    "mse",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "precision_weighted",
    "recall_weighted",
    "f1_weighted",
    "roc_auc_ovr",
)
"""Metrics added after the first columns: regression's MSE and the multiclass averages (named
here, not taken from the detectors, so that a detector's new metric never moves a column)."""
MULTIVARIATE_VALUES = (("score", "float"), ("threshold", "float"), ("detected", "bool"))
COLUMN_TYPES: dict[str, str] = {
    "kind": "string",
    "model": "string",
    "model_version": "string",
    "data_version": "string",
    "reference_id": "string",
    "window": "int",
    "start": "float",
    "end": "float",
    "events": "int",
    **dict.fromkeys(NAMES, "string"),
    "drift_method": "string",
    "drift_score": "float",
    "drift_threshold": "float",
    "drift_flagged": "bool",
    "drift_detected": "bool",
    "missing_ratio": "float",
    "type_error_ratio": "float",
    "out_of_range_ratio": "float",
    "new_category_ratio": "float",
    "dataset_drift_share": "float",
    "dataset_drift_detected": "bool",
    "confidence": "float",
    "entropy": "float",
    "low_confidence_ratio": "float",
    "performance_source": "string",
    **dict.fromkeys(PERFORMANCE_METRICS, "float"),
    "concept_drift_detector": "string",
    "concept_drift_detected": "bool",
    "concept_gap": "float",
    "concept_gap_p_value": "float",
    "concept_gap_significant": "bool",
    "positive_rate": "float",
    "segment_accuracy": "float",
    "disparate_impact": "float",
    "parity_difference": "float",
    **{f"{metric}_threshold": "float" for metric in THRESHOLD_METRICS},
    "embedding": "string",
    "drift_p_value": "float",
    **{f"{method}_{value}": kind for method in MULTIVARIATE_METHODS for value, kind in MULTIVARIATE_VALUES},
    **dict.fromkeys(LATER_PERFORMANCE_METRICS, "float"),
    **{f"{metric}_threshold": "float" for metric in LATER_PERFORMANCE_METRICS},
}
"""The columns in order, with their types (new ones only ever at the end); the names of
:data:`TEXT` are empty strings where they do not apply, any other column null."""
COLUMNS: tuple[str, ...] = tuple(COLUMN_TYPES)


def window_rows(report: WindowReport) -> list[Row]:
    """The rows of one prediction window: window level, then features, outputs and segments."""
    base = _identity("window", report, report.data_version, report.n_events)
    health = report.health
    top: Row = {
        **base,
        "dataset_drift_share": report.drift.share,
        "dataset_drift_detected": report.drift.detected,
    }
    for result in report.multivariate.values():
        top.update(_multivariate(result))
    if health.proxy is not None:
        top.update(
            confidence=health.proxy.confidence,
            entropy=health.proxy.entropy,
            low_confidence_ratio=health.proxy.low_confidence_ratio,
        )
    if health.estimated is not None:
        top.update(
            performance_source="estimated", **_performance(health.estimated), **_thresholds(health.thresholds)
        )
    rows = [top]
    quality = {q.feature: q for q in report.quality.features}
    for drift in report.drift.features:
        row = {**base, "feature": drift.feature, **_drift(drift)}
        ratios = quality.get(drift.feature)
        if ratios is not None:
            row.update(
                missing_ratio=ratios.missing_ratio,
                type_error_ratio=ratios.type_error_ratio,
                out_of_range_ratio=ratios.out_of_range_ratio,
                new_category_ratio=ratios.new_category_ratio,
            )
        rows.append(row)
    rows += [{**base, "output": d.feature, **_drift(d)} for d in report.prediction_drift.features]
    rows += [_embedding_row(base, name, result) for name, result in report.embeddings.items()]
    rows += _segment_rows(base, health.fairness, "positive_rate")
    return [_complete(row) for row in rows]


def label_window_rows(report: LabelWindowReport, data_version: str) -> list[Row]:
    """The rows of one label window: realized performance and concept drift, then segment accuracy."""
    base = _identity("label_window", report, data_version, report.n_labels)
    concept = report.concept_drift
    top: Row = {
        **base,
        "performance_source": "realized",
        **_performance(report.performance.metrics),
        **_thresholds(report.thresholds),
        "concept_drift_detector": concept.detector,
        "concept_drift_detected": concept.detected,
        "concept_gap": concept.gap,
        "concept_gap_p_value": concept.p_value,
        "concept_gap_significant": concept.significant,
    }
    rows = [top, *_segment_rows(base, report.segments, "segment_accuracy")]
    return [_complete(row) for row in rows]


class WindowHistory:
    """The last ``keep`` windows (and label windows) of each model version, as rows.

    Thread-safe: the pipeline adds under its lock, the HTTP server reads from
    its own threads.
    """

    def __init__(self, keep: int, sink: RowSink | None = None) -> None:
        if keep < 0:
            raise ValueError(f"keep must be >= 0, got {keep!r}")
        self.keep = keep
        self.sink = sink
        self._windows: dict[tuple[str, str], deque[list[Values]]] = {}
        self._data_versions: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def __call__(self, report: WindowReport) -> None:
        """Window listener: take one evaluated prediction window."""
        key = (report.model, report.model_version)
        with self._lock:
            self._data_versions[key] = report.data_version
        self._add(key, window_rows(report))

    def label_window(self, report: LabelWindowReport) -> None:
        """Label-window listener: take one evaluated window of joined labels."""
        key = (report.model, report.model_version)
        with self._lock:
            data_version = self._data_versions.get(key, "unknown")
        self._add(key, label_window_rows(report, data_version))

    def rows(self, model: str, model_version: str) -> list[Row] | None:
        """The kept rows of a model version, oldest window first; ``None`` for a version never seen."""
        with self._lock:
            windows = self._windows.get((model, model_version))
            if windows is None:
                return None
            return [dict(zip(COLUMNS, values, strict=True)) for window in windows for values in window]

    def export(self, models: Iterable[str]) -> dict[str, Any]:
        """The kept windows of every version of ``models`` as plain data, for a checkpoint.

        Rows are the kept tuples of values in the order of ``columns`` (named
        once; a checkpoint reads them back as lists), so a snapshot holds no key
        per value and a save copies no row; :meth:`restore` reads it back, even
        after columns were added or removed.
        """
        wanted = set(models)
        with self._lock:
            versions = [
                [
                    model,
                    version,
                    self._data_versions.get((model, version)),
                    [list(window) for window in windows],
                ]
                for (model, version), windows in self._windows.items()
                if model in wanted
            ]
        return {"columns": list(COLUMNS), "versions": versions}

    def restore(self, exported: Mapping[str, Any]) -> None:
        """Put back windows from :meth:`export` (replacing those of the same versions), the last ``keep``.

        All or nothing: a damaged export raises before anything is replaced.
        """
        columns = [str(c) for c in exported["columns"]]
        restored: dict[tuple[str, str], deque[list[Values]]] = {}
        data_versions: dict[tuple[str, str], str] = {}
        for model, version, data_version, windows in exported["versions"]:
            key = (str(model), str(version))
            kept = restored[key] = deque(maxlen=self.keep)
            if self.keep:
                kept.extend([_values(_row(columns, values)) for values in window] for window in windows)
            if data_version is not None:
                data_versions[key] = str(data_version)
        with self._lock:
            self._windows.update(restored)
            self._data_versions.update(data_versions)

    def drop(self, models: Iterable[str]) -> None:
        """Forget the windows of every version of ``models`` (their partition moved away)."""
        gone = set(models)
        with self._lock:
            for key in [k for k in self._windows if k[0] in gone]:
                del self._windows[key]
            for key in [k for k in self._data_versions if k[0] in gone]:
                del self._data_versions[key]

    def _add(self, key: tuple[str, str], rows: list[Row]) -> None:
        with self._lock:
            windows = self._windows.get(key)
            if windows is None:
                windows = self._windows[key] = deque(maxlen=self.keep)
            if self.keep:
                windows.append([_values(row) for row in rows])
        if self.sink is not None:
            self.sink(rows)


def _identity(kind: str, report: WindowReport | LabelWindowReport, data_version: str, events: int) -> Row:
    """The columns that say which window a row belongs to."""
    return {
        "kind": kind,
        "model": report.model,
        "model_version": report.model_version,
        "data_version": data_version,
        "reference_id": report.reference_id,
        "window": report.index,
        "start": report.start,
        "end": report.end,
        "events": events,
    }


def _drift(drift: FeatureDrift) -> Row:
    return {
        "drift_method": drift.method,
        "drift_score": drift.score,
        "drift_threshold": drift.threshold,
        "drift_flagged": drift.drifted,
        "drift_detected": drift.detected,
    }


def _multivariate(result: MultivariateDriftResult) -> Row:
    return {
        f"{result.method}_score": result.score,
        f"{result.method}_threshold": result.upper_threshold,
        f"{result.method}_detected": result.detected,
    }


def _embedding_row(base: Row, name: str, result: EmbeddingDriftResult) -> Row:
    return {
        **base,
        "embedding": name,
        "drift_method": "mmd",
        "drift_score": result.score,
        "drift_p_value": result.p_value,
        "drift_flagged": result.detected,
        "drift_detected": result.detected,
    }


def _performance(metrics: Mapping[str, float]) -> Row:
    names = (*PERFORMANCE_METRICS, *LATER_PERFORMANCE_METRICS)
    return {name: metrics[name] for name in names if name in metrics}


def _thresholds(thresholds: Mapping[str, PerformanceThreshold] | None) -> Row:
    known = (*THRESHOLD_METRICS, *LATER_PERFORMANCE_METRICS)
    return {f"{m}_threshold": t.value for m, t in (thresholds or {}).items() if m in known}


def _segment_rows(base: Row, fairness: FairnessResult | None, value_column: str) -> list[Row]:
    """One row per segment value; prediction windows (positive rate) add one per segment
    for its disparate impact and parity difference."""
    if fairness is None:
        return []
    rows: list[Row] = []
    for segment in fairness.segments.values():
        if value_column == "positive_rate":
            rows.append(
                {
                    **base,
                    "segment": segment.segment,
                    "disparate_impact": segment.disparate_impact,
                    "parity_difference": segment.parity_difference,
                }
            )
        for stats in segment.values:
            value = stats.positive_rate if value_column == "positive_rate" else stats.accuracy
            if value is not None:
                rows.append(
                    {**base, "segment": segment.segment, "segment_value": stats.value, value_column: value}
                )
    return rows


def _row(columns: list[str], values: list[Any]) -> Row:
    """A row read back from a checkpoint: columns this version no longer has are left out."""
    return _complete(dict(zip(columns, values, strict=True)))


def _values(row: Row) -> Values:
    """A complete row's values in the order of :data:`COLUMNS`."""
    return tuple(row[column] for column in COLUMNS)


def _complete(row: Row) -> Row:
    """Every column, in order: names empty and other columns ``None`` where they do not apply.

    A value that is not a finite number (a test that did not run) is ``None`` too.
    """
    out: Row = {}
    for column in COLUMNS:
        value = row.get(column, "" if column in TEXT else None)
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        out[column] = value
    return out
