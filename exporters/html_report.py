"""HTML drift reports: Evidently's own report for the latest window of each model version.

The writer only keeps the latest (reference, window) tables per version when a
window closes, which is cheap; the report is rendered when someone asks for it,
so Evidently never runs on the hot path. Evidently is imported lazily for the
same reason.

Evidently embeds the report's data as JSON in an inline ``<script>``; its JSON
escapes nothing that HTML cares about, so a feature name or category value
``</script>...`` would end the script. :func:`neutralise_inline_data` rewrites
``<`` in those data lines as ``\\u003c``, which means the same to JavaScript and
nothing to the HTML tokenizer. Our own header goes through a Jinja2 template.
"""

from __future__ import annotations

import re
import threading

import pandas as pd

from detectors.base import FeatureTable
from detectors.window_report import WindowReport
from exporters.evidently_preset import run_data_drift_preset
from exporters.pages import render as render_template

_BODY = re.compile(r"<body[^>]*>", re.IGNORECASE)
# Evidently's data lines: ``var metric_<hex> = <json>;`` and ``var additional_graphs_metric_<hex> = ...``.
# json.dumps never writes a raw newline, so each one is exactly one line of the page.
_DATA_LINE = re.compile(r"^(\s*var (?:additional_graphs_)?metric_[0-9a-f]+ = )(.*;)$", re.MULTILINE)


class HtmlReportWriter:
    """A window listener that renders the latest window of a version as an Evidently report."""

    def __init__(self) -> None:
        self._latest: dict[tuple[str, str], WindowReport] = {}
        self._lock = threading.Lock()

    def __call__(self, report: WindowReport) -> None:
        with self._lock:
            self._latest[(report.model, report.model_version)] = report

    def render(self, model: str, model_version: str) -> str | None:
        """The HTML page for the version's latest evaluated window, or None if it has none."""
        with self._lock:
            report = self._latest.get((model, model_version))
        if report is None:
            return None
        reference = report.reference_features
        snapshot = run_data_drift_preset(reference.kinds, _frame(reference), _frame(report.features))
        header = render_template(
            "report_header.html",
            model=model,
            model_version=model_version,
            index=report.index,
            n_events=report.n_events,
            reference_id=report.reference_id,
            data_version=report.data_version,
        )
        page = neutralise_inline_data(snapshot.get_html_str(as_iframe=False))
        return _BODY.sub(lambda match: match.group(0) + header, page, count=1)


def neutralise_inline_data(page: str) -> str:
    """Evidently's page with ``<`` in its inline JSON written ``\\u003c``: no ``</script>`` or ``<!--``."""
    return _DATA_LINE.sub(lambda match: match.group(1) + match.group(2).replace("<", "\\u003c"), page)


def _frame(table: FeatureTable) -> pd.DataFrame:
    return pd.DataFrame({name: table.columns[name] for name in table.kinds})
