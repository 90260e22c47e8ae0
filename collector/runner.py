"""The service loop: source -> pipeline -> dead letters flushed -> offsets committed."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from collector.errors import DeadLetterBacklog
from collector.pipeline import Pipeline
from collector.sources import RawMessage, Source
from exporters.tracing import PipelineTracer

log = logging.getLogger(__name__)


def run(
    source: Source,
    pipeline: Pipeline,
    stop: threading.Event,
    *,
    batch_size: int = 1000,
    poll_timeout: float = 0.2,
    tick_interval: float = 1.0,
    on_tick: Callable[[float], None] | None = None,
    on_batch: Callable[[], None] | None = None,
    tracer: PipelineTracer | None = None,
    checkpoint: Callable[[], bool] | None = None,
) -> None:
    """Process batches until ``stop`` is set or a finite source is exhausted.

    Offsets are committed only after the batch is processed and its dead
    letters are flushed (at-least-once). When the dead letters cannot be
    delivered in time, the source is paused (it keeps its group membership),
    the flush is retried, and consumption resumes once it succeeds. Time rules run every ``tick_interval``
    seconds on the wall clock. With an enabled ``tracer`` each batch is one
    trace: a ``batch`` span with the children ``poll``, ``decode`` (decode,
    route, and ``detect`` spans for the windows it closes) and ``export``;
    an empty poll is not traced.
    With ``checkpoint``, offsets are committed only when it returns True: it
    saved the state those offsets reflect. It is asked after every batch and on
    every tick, so offsets are committed when the stream goes quiet too.
    """
    tracer = tracer or PipelineTracer()
    last_tick = time.monotonic()
    while not stop.is_set():
        polled_from = time.time_ns()
        batch = source.next_batch(batch_size, poll_timeout)
        if batch:
            _process(source, pipeline, stop, batch, tracer, polled_from, poll_timeout, checkpoint)
            if on_batch is not None:
                on_batch()
        if time.monotonic() - last_tick >= tick_interval:
            last_tick = time.monotonic()
            now = time.time()
            pipeline.tick(now)
            if checkpoint is not None and checkpoint():  # the tail of a stream that went quiet
                source.commit()
            if on_tick is not None:
                on_tick(now)
        if not batch and source.exhausted:
            break


def _process(
    source: Source,
    pipeline: Pipeline,
    stop: threading.Event,
    batch: list[RawMessage],
    tracer: PipelineTracer,
    polled_from: int,
    poll_timeout: float,
    checkpoint: Callable[[], bool] | None,
) -> None:
    """One polled batch: processed, its dead letters flushed, its offsets committed; one trace."""
    polled_to = time.time_ns()
    with tracer.span("batch", start_ns=polled_from, messages=len(batch)):
        tracer.record("poll", polled_from, polled_to, messages=len(batch))
        with tracer.span("decode", messages=len(batch)):
            pipeline.process(batch)
        with tracer.span("export"):
            _flush_dead_letters(source, pipeline, stop, poll_timeout)
            if checkpoint is None or checkpoint():
                source.commit()


@runtime_checkable
class PausableSource(Protocol):
    """A source that can stop fetching while staying in its consumer group (Kafka)."""

    def pause(self) -> None: ...

    def resume(self) -> None: ...


def _flush_dead_letters(
    source: Source, pipeline: Pipeline, stop: threading.Event, poll_timeout: float
) -> None:
    """Flush the dead letters, pausing the source while their destination is behind."""
    paused = False
    while True:
        try:
            pipeline.dlq.flush()
            break
        except DeadLetterBacklog as exc:
            if stop.is_set():
                raise
            if not paused and isinstance(source, PausableSource):
                log.warning("dead letters are not being acknowledged; pausing consumption: %s", exc)
                source.pause()
                paused = True
            if paused:
                # Keeps the consumer in its group; a paused source returns nothing, and
                # anything it still returns is processed and committed with this batch.
                pipeline.process(source.next_batch(1, poll_timeout))
            else:
                time.sleep(poll_timeout)
    if paused and isinstance(source, PausableSource):
        log.warning("dead letters acknowledged; resuming consumption")
        source.resume()
