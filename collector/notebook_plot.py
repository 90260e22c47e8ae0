"""A picture of the windows table: drift share, performance and feature drift per window.

Draws what :func:`collector.notebook.analyze` (or ``replay --windows-out``)
returned; it computes nothing. Needs matplotlib (``pip install
'driftline-collector[notebook]'``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DRIFT = "tab:red"


NAME_COLUMNS = ("feature", "output", "segment", "embedding")
"""Empty on a window-level row."""


def plot_windows(
    table: pd.DataFrame,
    *,
    metric: str = "accuracy",
    features: Sequence[str] | None = None,
    drift_share: float = 0.5,
) -> Figure:
    """One figure, panels sharing the time axis (window end):

    the dataset drift share with the ``drift_share`` threshold (the
    configuration's ``drift.drift_share``) and the windows where dataset drift
    was detected; ``metric`` estimated (prediction windows, CBPE) and realized
    (label windows); and the drift score of each of ``features`` (default: the
    features drifted in any window) with the windows where its drift was
    detected.
    """
    plt = _pyplot()
    names = [name for name in NAME_COLUMNS if name in table]  # a table of before 2026-12 lacks embedding
    top = table[(table[names] == "").all(axis=1)]
    windows = top[top.kind == "window"].assign(time=lambda f: pd.to_datetime(f.end, unit="s"))
    labels = top[top.kind == "label_window"].assign(time=lambda f: pd.to_datetime(f.end, unit="s"))
    rows = table[table.feature != ""].assign(time=lambda f: pd.to_datetime(f.end, unit="s"))
    drifted = sorted(rows[rows.drift_detected.eq(True)].feature.unique())
    shown = list(features) if features is not None else drifted
    figure, axes = plt.subplots(2 + len(shown), 1, sharex=True, figsize=(10, 2.4 * (2 + len(shown))))
    _series(axes[0], windows, "dataset_drift_share", "dataset drift share", "dataset_drift_detected")
    axes[0].axhline(drift_share, color="grey", linestyle="--", label=f"threshold {drift_share:g}")
    axes[0].legend(loc="upper left", fontsize="small")
    _performance(axes[1], windows, labels, metric)
    for ax, feature in zip(axes[2:], shown, strict=True):
        _series(ax, rows[rows.feature == feature], "drift_score", f"{feature} drift score", "drift_detected")
    axes[-1].set_xlabel("window end")
    figure.tight_layout()
    return figure


def _series(ax: Any, frame: pd.DataFrame, column: str, title: str, flag: str) -> None:
    ax.plot(frame.time, frame[column], marker="o", markersize=3, color="tab:blue")
    flagged = frame[frame[flag].eq(True)]  # the column may hold None
    ax.scatter(flagged.time, flagged[column], color=DRIFT, zorder=3, label="detected")
    ax.set_title(title, fontsize="medium", loc="left")


def _performance(ax: Any, windows: pd.DataFrame, labels: pd.DataFrame, metric: str) -> None:
    ax.plot(windows.time, windows[metric], marker="o", markersize=3, label=f"{metric} estimated (CBPE)")
    ax.plot(labels.time, labels[metric], marker="s", markersize=3, label=f"{metric} realized")
    ax.set_title(metric, fontsize="medium", loc="left")
    ax.legend(loc="lower left", fontsize="small")


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "plot_windows needs matplotlib: pip install 'driftline-collector[notebook]'"
        ) from exc
    return plt
