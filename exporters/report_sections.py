"""The sections of a window's HTML report that Evidently does not draw: estimated performance
(binary CBPE, multiclass CBPE or a regressor's DLE, each metric beside its threshold) and
embedding drift. Each renders to an empty string when the window has nothing of its kind."""

from __future__ import annotations

from dataclasses import dataclass

from detectors.window_report import WindowReport
from exporters.pages import render as render_template

ESTIMATORS = {
    "cbpe": (
        "Confidence-based performance estimation (CBPE)",
        "Expected performance from the positive class's calibrated probabilities, before labels come.",
    ),
    "multiclass_cbpe": (
        "Multiclass CBPE",
        "Expected performance from one-vs-rest calibrated class probabilities (expected confusion "
        "matrices), before labels come.",
    ),
    "dle": (
        "Direct loss estimation (DLE)",
        "Expected absolute and squared errors of each prediction from gradient-boosted models fitted "
        "on the labelled reference, averaged over the window, before labels come.",
    ),
}
"""Title and one-line method of each estimator, by ``PredictionHealth.estimator``."""


@dataclass(frozen=True)
class EstimateRow:
    """One estimated metric as the section shows it."""

    metric: str
    value: float
    threshold: float | None
    bound: str | None
    """``lower`` (an alarm below) or ``upper`` (above); None without a threshold."""
    crossed: bool


def estimated_performance(report: WindowReport) -> str:
    """The window's estimated metrics against their thresholds ('' when nothing was estimated)."""
    health = report.health
    if not health.estimated or health.estimator is None:
        return ""
    thresholds = health.thresholds or {}
    rows = []
    for metric, value in sorted(health.estimated.items()):
        threshold = thresholds.get(metric)
        rows.append(
            EstimateRow(
                metric,
                value,
                None if threshold is None else threshold.value,
                None if threshold is None else threshold.bound,
                threshold is not None and threshold.crossed(value),
            )
        )
    title, method = ESTIMATORS[health.estimator]
    return render_template("report_performance.html", title=title, method=method, rows=rows)


def embedding_drift(report: WindowReport) -> str:
    """Each embedding's MMD test of the window ('' when none was tested)."""
    if not report.embeddings:
        return ""
    return render_template("report_embeddings.html", embeddings=sorted(report.embeddings.items()))


def sections(report: WindowReport) -> str:
    """Every section of ours, in page order, to go above Evidently's report."""
    return estimated_performance(report) + embedding_drift(report)
