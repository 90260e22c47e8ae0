"""``driftline replay``: a file of events through the same pipeline, on event time."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from prometheus_client import generate_latest
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from collector.config import Config, WindowConfig
from collector.dlq import DeadLetterSink, FileDeadLetterSink, MemoryDeadLetterSink
from collector.model_health import LabelWindowListener
from collector.model_state import WindowListener
from collector.pipeline import Pipeline
from collector.replay_summary import ReplaySummary, summarize
from collector.runner import run
from collector.sources import FileSource
from collector.window_history import WindowHistory
from collector.window_table import WindowTableWriter
from exporters.prometheus import build_registry
from exporters.store import MetricStore

PROGRESS_MIN_BYTES = 5_000_000


def for_replay(config: Config) -> tuple[Config, tuple[str, ...]]:
    """The configuration replay runs on, and what it changed.

    A history file's events may be minutes apart, and its labels may all come
    after its predictions: the wall-clock defaults of ``window.max_seconds`` and
    ``labels.max_age_seconds`` would skip every window and expire most labels.
    So in replay, unless the file sets them, windows close on ``window.events``
    only and labels wait for their prediction however late (the join store
    stays bounded by ``labels.max_entries``).
    """
    windows = [config.defaults.window, *(m.window for m in config.models.values() if m.window)]
    notes = []
    if any("max_seconds" not in window.model_fields_set for window in windows):
        notes.append("windows close on window.events only where window.max_seconds is not set")
    labels = config.labels
    if "max_age_seconds" not in labels.model_fields_set:
        labels = labels.model_copy(update={"max_age_seconds": math.inf})
        notes.append("labels never expire by age (labels.max_age_seconds is not set)")
    models = {
        name: model.model_copy(update={"window": _without_default_age(model.window)})
        if model.window
        else model
        for name, model in config.models.items()
    }
    defaults = config.defaults.model_copy(update={"window": _without_default_age(config.defaults.window)})
    replayed = config.model_copy(update={"defaults": defaults, "models": models, "labels": labels})
    return replayed, tuple(notes)


def _without_default_age(window: WindowConfig) -> WindowConfig:
    if "max_seconds" in window.model_fields_set:
        return window
    return window.model_copy(update={"max_seconds": math.inf})


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

    The time rules the configuration leaves at their defaults are relaxed for a
    history file (:func:`for_replay`). ``store`` and the listeners let a caller
    watch the metrics as each window closes.
    """
    config, notes = for_replay(config)
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
    summary = summarize(pipeline, trailing, exposition, table.rows_written if table is not None else 0)
    return replace(summary, notes=notes)


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
