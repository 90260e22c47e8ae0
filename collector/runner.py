"""The service loop: source -> pipeline -> dead letters flushed -> offsets committed."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from collector.pipeline import Pipeline
from collector.sources import Source
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
) -> None:
    """Process batches until ``stop`` is set or a finite source is exhausted.

    Offsets are committed only after the batch is processed and its dead
    letters are flushed (at-least-once). Time rules run every ``tick_interval``
    seconds on the wall clock. With an enabled ``tracer`` each batch gives
    ``poll``, ``decode`` (decode, route, and ``detect`` spans for the windows
    it closes) and ``export`` spans.
    """
    tracer = tracer or PipelineTracer()
    last_tick = time.monotonic()
    while not stop.is_set():
        with tracer.span("poll"):
            batch = source.next_batch(batch_size, poll_timeout)
        if batch:
            with tracer.span("decode", messages=len(batch)):
                pipeline.process(batch)
            with tracer.span("export"):
                pipeline.dlq.flush()
                source.commit()
            if on_batch is not None:
                on_batch()
        if time.monotonic() - last_tick >= tick_interval:
            last_tick = time.monotonic()
            now = time.time()
            pipeline.tick(now)
            if on_tick is not None:
                on_tick(now)
        if not batch and source.exhausted:
            break
