"""HTML drift reports: Evidently's own report for the latest window of each model version.

The writer only keeps the latest (reference, window) tables per version when a
window closes, which is cheap; the report is rendered when someone asks for it,
so Evidently never runs on the hot path. Evidently is imported lazily for the
same reason.
"""

from __future__ import annotations

import re
import threading

import pandas as pd

from detectors.base import FeatureTable
from detectors.window_report import WindowReport
from exporters.evidently_preset import run_data_drift_preset

_BODY = re.compile(r"<body[^>]*>", re.IGNORECASE)


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
        header = (
            f"<h2>Driftline: {model} / {model_version}, window {report.index} "
            f"({report.n_events} events, reference {report.reference_id}, "
            f"data version {report.data_version})</h2>"
        )
        page: str = snapshot.get_html_str(as_iframe=False)
        return _BODY.sub(lambda match: match.group(0) + header, page, count=1)


def _frame(table: FeatureTable) -> pd.DataFrame:
    return pd.DataFrame({name: table.columns[name] for name in table.kinds})
