"""``driftline replay``: a file of events through the same pipeline, on event time."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import generate_latest
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from collector.config import Config
from collector.dlq import DeadLetterSink, FileDeadLetterSink, MemoryDeadLetterSink
from collector.model_health import LabelWindowListener
from collector.model_state import WindowListener
from collector.pipeline import Pipeline, PipelineCounts, VersionKey
from collector.runner import run
from collector.sources import FileSource
from collector.window_history import WindowHistory
from collector.window_table import WindowTableWriter
from exporters.prometheus import build_registry
from exporters.store import MetricStore

PROGRESS_MIN_BYTES = 5_000_000


@dataclass(frozen=True)
class ReplaySummary:
    """What a replay did: input counts, windows per version, and what was left unevaluated."""

    counts: PipelineCounts
    windows: dict[VersionKey, int]
    drift_windows: dict[VersionKey, int]
    trailing: dict[VersionKey, int]
    exposition: str
    window_rows: int = 0
    """Rows written to ``--windows-out`` (0 without it)."""


def replay(
    path: Path,
    config: Config,
    *,
    metrics_out: Path | None = None,
    dlq_path: Path | None = None,
    windows_out: Path | None = None,
    console: Console | None = None,
    batch_size: int = 2000,
    store: MetricStore | None = None,
    listeners: Sequence[WindowListener] = (),
    label_listeners: Sequence[LabelWindowListener] = (),
) -> ReplaySummary:
    """Process every line of ``path``; write the exposition, the windows and the rejected lines if asked.

    ``store`` and the listeners let a caller watch the metrics as each window closes.
    """
    store = store if store is not None else MetricStore()
    table = WindowTableWriter(windows_out) if windows_out is not None else None
    history = WindowHistory(keep=0, sink=table)
    dlq: DeadLetterSink = FileDeadLetterSink(dlq_path) if dlq_path else MemoryDeadLetterSink()
    pipeline = Pipeline(
        config,
        store,
        dlq,
        event_time=True,
        listeners=(history, *listeners),
        label_listeners=(history.label_window, *label_listeners),
    )
    source = FileSource(path)
    try:
        _run_with_progress(source, pipeline, path, console, batch_size)
        trailing = pipeline.finish()
    finally:
        source.close()
        dlq.close()
        if table is not None:
            table.close()
    exposition = generate_latest(build_registry(store)).decode("utf-8")
    if metrics_out is not None:
        metrics_out.write_text(exposition, encoding="utf-8")
    return ReplaySummary(
        counts=pipeline.counts,
        windows={key: state.windows_evaluated for key, state in pipeline.states.items()},
        drift_windows={key: _drift_windows(store, key) for key in pipeline.states},
        trailing=trailing,
        exposition=exposition,
        window_rows=table.rows_written if table is not None else 0,
    )


def _run_with_progress(
    source: FileSource, pipeline: Pipeline, path: Path, console: Console | None, batch_size: int
) -> None:
    def run_all(on_batch: Callable[[], None] | None = None) -> None:
        stop = threading.Event()
        run(
            source,
            pipeline,
            stop,
            batch_size=batch_size,
            poll_timeout=0.0,
            tick_interval=math.inf,
            on_batch=on_batch,
        )

    if console is None or path.stat().st_size < PROGRESS_MIN_BYTES:
        run_all()
        return
    columns = (TextColumn("replaying"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("replay", total=path.stat().st_size)
        run_all(lambda: progress.update(task, completed=source.bytes_read))


def _drift_windows(store: MetricStore, key: VersionKey) -> int:
    value = store.get(
        "driftline_dataset_drift_windows_total", {"model": key[0], "model_version": key[1]}
    )
    return int(value) if isinstance(value, float) else 0


def print_summary(summary: ReplaySummary, console: Console) -> None:
    """The replay summary as tables."""
    counts = summary.counts
    totals = Table(title="Input")
    totals.add_column("outcome")
    totals.add_column("events", justify="right")
    for kind, count in counts.accepted.items():
        totals.add_row(f"accepted {kind}", str(count))
    for reason, count in sorted(counts.rejected.items()):
        totals.add_row(f"rejected {reason}", str(count))
    totals.add_row("total", str(counts.total))
    console.print(totals)
    versions = Table(title="Model versions")
    for column in (
        "model",
        "model_version",
        "windows",
        "dataset drift windows",
        "trailing events (not evaluated)",
    ):
        versions.add_column(column)
    for key in sorted(summary.windows):
        versions.add_row(
            key[0],
            key[1],
            str(summary.windows[key]),
            str(summary.drift_windows[key]),
            str(summary.trailing.get(key, 0)),
        )
    console.print(versions)
