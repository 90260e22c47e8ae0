"""HTML drift reports: an index of each model version's windows and Evidently's report for kept ones.

The writer is a window listener. When a window closes it records a one-line
summary for the index (time, data version, reference id, what was flagged)
and keeps the window's report -- its feature table and the reference table it
was compared with -- when the window is the version's latest or one of its
last ``keep_flagged`` flagged windows; everything is bounded by
:class:`~exporters.report_config.ReportsConfig`. Evidently runs only when
someone asks for a page (on the HTTP server's render workers), never on the
hot path, and is imported lazily for the same reason.

Evidently embeds the report's data as JSON in an inline ``<script>``; its JSON
escapes nothing that HTML cares about, so a feature name or category value
``</script>...`` would end the script. :func:`neutralise_inline_data` rewrites
``<`` in those data lines as ``\\u003c``, which means the same to JavaScript and
nothing to the HTML tokenizer. Our own header goes through a Jinja2 template.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from detectors.base import FeatureTable
from detectors.data_drift import DataDriftResult
from detectors.window_report import WindowReport
from exporters.evidently_preset import run_data_drift_preset
from exporters.pages import render as render_template
from exporters.pages import report_href
from exporters.report_config import ReportsConfig
from exporters.report_sections import sections

_BODY = re.compile(r"<body[^>]*>", re.IGNORECASE)
# Evidently's data lines: ``var metric_<hex> = <json>;`` and ``var additional_graphs_metric_<hex> = ...``.
# json.dumps never writes a raw newline, so each one is exactly one line of the page.
_DATA_LINE = re.compile(r"^(\s*var (?:additional_graphs_)?metric_[0-9a-f]+ = )(.*;)$", re.MULTILINE)


@dataclass(frozen=True)
class WindowSummary:
    """One window as the index lists it."""

    index: int
    closed: str
    """When the window closed, in UTC (event time in replays)."""
    n_events: int
    data_version: str
    reference_id: str
    drift_share: float
    flagged_features: tuple[str, ...]
    """Features whose drift was flagged in this window (before or after persistence)."""
    flagged_outputs: tuple[str, ...]
    """Model outputs (prediction, probabilities) whose drift was flagged."""
    flagged_embeddings: tuple[str, ...] = ()
    """Embedding names whose vectors drifted."""

    @classmethod
    def of(cls, report: WindowReport) -> WindowSummary:
        return cls(
            index=report.index,
            closed=_utc(report.end),
            n_events=report.n_events,
            data_version=report.data_version,
            reference_id=report.reference_id,
            drift_share=report.drift.share,
            flagged_features=_flagged(report.drift),
            flagged_outputs=_flagged(report.prediction_drift),
            flagged_embeddings=tuple(sorted(n for n, r in report.embeddings.items() if r.detected)),
        )

    @property
    def flagged(self) -> bool:
        return bool(self.flagged_features or self.flagged_outputs or self.flagged_embeddings)

    def describe_flags(self) -> str:
        """``income, purpose; outputs: prediction; embeddings: query`` or ``none``."""
        parts = [", ".join(self.flagged_features)] if self.flagged_features else []
        if self.flagged_outputs:
            parts.append("outputs: " + ", ".join(self.flagged_outputs))
        if self.flagged_embeddings:
            parts.append("embeddings: " + ", ".join(self.flagged_embeddings))
        return "; ".join(parts) or "none"


class _VersionReports:
    """One model version's index lines and kept reports, each bounded."""

    def __init__(self, settings: ReportsConfig) -> None:
        self.windows: deque[WindowSummary] = deque(maxlen=settings.index_windows)
        self.flagged: deque[WindowReport] = deque(maxlen=settings.keep_flagged)
        self.latest: WindowReport | None = None

    def add(self, report: WindowReport, summary: WindowSummary) -> None:
        self.windows.append(summary)
        if summary.flagged:
            self.flagged.append(report)  # a no-op when keep_flagged is 0
        self.latest = report

    def restarted_by(self, report: WindowReport) -> bool:
        """The version's windows count from 1 again (it was retired or its partition moved and came back)."""
        return self.latest is not None and report.index <= self.latest.index

    def kept(self, index: int | None) -> WindowReport | None:
        """The kept report of window ``index`` (None: the latest)."""
        if index is None or (self.latest is not None and self.latest.index == index):
            return self.latest
        return next((report for report in self.flagged if report.index == index), None)

    def kept_indices(self) -> set[int]:
        indices = {report.index for report in self.flagged}
        return indices | ({self.latest.index} if self.latest is not None else set())


class HtmlReportWriter:
    """A window listener serving the report index and the Evidently report of each kept window."""

    def __init__(self, settings: ReportsConfig | None = None) -> None:
        self.settings = settings or ReportsConfig()
        self._versions: dict[tuple[str, str], _VersionReports] = {}
        """Oldest last window first: the first entry is the one forgotten beyond ``max_versions``."""
        self._lock = threading.Lock()

    def __call__(self, report: WindowReport) -> None:
        key, summary = (report.model, report.model_version), WindowSummary.of(report)
        with self._lock:
            reports = self._versions.pop(key, None)
            if reports is None or reports.restarted_by(report):
                reports = _VersionReports(self.settings)
            reports.add(report, summary)
            self._versions[key] = reports
            while len(self._versions) > self.settings.max_versions:
                del self._versions[next(iter(self._versions))]

    def index_page(self) -> str:
        """The /reports/ page: every version's windows, newest first, linked where a report is kept."""
        with self._lock:
            listed = [
                (key, list(reports.windows), reports.kept_indices())
                for key, reports in sorted(self._versions.items())
            ]
        versions = [
            {
                "model": model,
                "model_version": model_version,
                "latest_href": report_href(model, model_version),
                "windows": [_index_row(model, model_version, w, w.index in kept) for w in reversed(windows)],
            }
            for (model, model_version), windows, kept in listed
        ]
        return render_template("index.html", versions=versions, settings=self.settings)

    def render(self, model: str, model_version: str, window: int | None = None) -> str | None:
        """The HTML page of a kept window (None: the latest), or None if it is not kept."""
        with self._lock:
            reports = self._versions.get((model, model_version))
            report = reports.kept(window) if reports is not None else None
        if report is None:
            return None
        reference = report.reference_features
        snapshot = run_data_drift_preset(reference.kinds, _frame(reference), _frame(report.features))
        summary = WindowSummary.of(report)
        header = render_template(
            "report_header.html",
            model=model,
            model_version=model_version,
            index=report.index,
            n_events=report.n_events,
            reference_id=report.reference_id,
            data_version=report.data_version,
            closed=summary.closed,
            flagged=summary.describe_flags(),
        )
        header += sections(report)
        page = neutralise_inline_data(snapshot.get_html_str(as_iframe=False))
        return _BODY.sub(lambda match: match.group(0) + header, page, count=1)


def neutralise_inline_data(page: str) -> str:
    """Evidently's page with ``<`` in its inline JSON written ``\\u003c``: no ``</script>`` or ``<!--``."""
    return _DATA_LINE.sub(lambda match: match.group(1) + match.group(2).replace("<", "\\u003c"), page)


def _flagged(drift: DataDriftResult) -> tuple[str, ...]:
    return tuple(sorted(f.feature for f in drift.features if f.drifted or f.detected))


def _index_row(model: str, model_version: str, window: WindowSummary, kept: bool) -> dict[str, object]:
    """The window's link (None when its report is not kept) and the cells after it, in table order."""
    cells = (
        window.closed,
        window.n_events,
        window.data_version,
        window.reference_id,
        f"{window.drift_share:.2f}",
        window.describe_flags(),
    )
    return {
        "index": window.index,
        "href": report_href(model, model_version, window.index) if kept else None,
        "cells": cells,
    }


def _utc(timestamp: float) -> str:
    """The time in UTC; an event time no calendar holds (replays read it from events) as the number."""
    try:
        return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return f"{timestamp:g}"


def _frame(table: FeatureTable) -> pd.DataFrame:
    return pd.DataFrame({name: table.columns[name] for name in table.kinds})
