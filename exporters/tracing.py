"""Spans for the pipeline stages (poll, decode, detect, export), sent over OTLP/HTTP.

Each processed batch is one trace: a ``batch`` span whose children are the
stages (``detect`` inside ``decode``, where windows close). A poll is only
known to matter once it returned messages, so :meth:`PipelineTracer.record`
adds the ``poll`` span afterwards with its measured start and end, and an
empty poll leaves no trace at all.

:class:`PipelineTracer` owns its own ``TracerProvider`` (never the global
one) with a batching processor, so spans leave on the SDK's worker thread and
never slow the loop. When tracing is off, :meth:`PipelineTracer.span` is a
no-op that yields OpenTelemetry's non-recording span, so the calling code is
the same either way. Failed span exports are logged and counted in
``driftline_exporter_failures_total{exporter="otlp_traces"}``.

Example:

>>> tracer = PipelineTracer()  # disabled
>>> with tracer.span("decode", events=3) as span:
...     span.set_attribute("rejected", 0)
>>> tracer.shutdown()
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from exporters.otlp import FAILURES, service_resource, signal_url
from exporters.secrets import reveal
from exporters.store import MetricStore

if TYPE_CHECKING:
    from exporters.otlp_config import OtlpConfig

log = logging.getLogger(__name__)

STAGES = ("poll", "decode", "detect", "export")
"""The pipeline stages that get spans; ``batch`` may wrap them as the parent."""

AttributeValue = str | bool | int | float


class PipelineTracer:
    """Context-managed spans per pipeline stage; a no-op unless ``enabled``.

    ``span_exporter`` replaces the OTLP/HTTP span exporter (tests pass an
    in-memory one); otherwise ``endpoint`` (the OTLP base URL) is required.
    """

    def __init__(
        self,
        *,
        enabled: bool = False,
        endpoint: str | None = None,
        instance_id: str | None = None,
        timeout_seconds: float = 5.0,
        headers: Mapping[str, str] | None = None,
        store: MetricStore | None = None,
        span_exporter: SpanExporter | None = None,
    ) -> None:
        self.enabled = enabled
        self._provider: TracerProvider | None = None
        self._tracer: trace.Tracer | None = None
        self._shut_down = False
        if not enabled:
            return
        if span_exporter is None:
            if not endpoint:
                raise ValueError(f"tracing needs an OTLP endpoint, got {endpoint!r}")
            span_exporter = OTLPSpanExporter(
                endpoint=signal_url(endpoint, "traces"),
                headers=dict(headers or {}),
                timeout=timeout_seconds,
            )
        self._provider = TracerProvider(resource=service_resource(instance_id))
        processor = BatchSpanProcessor(CountingSpanExporter(span_exporter, store))
        self._provider.add_span_processor(processor)
        self._tracer = self._provider.get_tracer("driftline.collector")

    @classmethod
    def from_config(cls, store: MetricStore, config: OtlpConfig) -> PipelineTracer:
        """The tracer configured under ``otlp:`` (disabled unless ``tracing: true``)."""
        return cls(
            enabled=config.tracing,
            endpoint=config.endpoint,
            instance_id=config.service_instance_id,
            timeout_seconds=config.timeout_seconds,
            headers=reveal(config.headers),
            store=store,
        )

    @contextmanager
    def span(
        self, stage: str, *, start_ns: int | None = None, **attributes: AttributeValue
    ) -> Iterator[trace.Span]:
        """A span named ``stage`` around the block (nested spans become its children).

        ``start_ns`` (``time.time_ns()``) backdates the start, for a batch span
        opened once its poll has returned. An exception in the block is
        recorded on the span and re-raised.
        """
        if self._tracer is None:
            yield trace.INVALID_SPAN
            return
        with self._tracer.start_as_current_span(stage, attributes=attributes, start_time=start_ns) as span:
            yield span

    def record(self, stage: str, start_ns: int, end_ns: int, **attributes: AttributeValue) -> None:
        """A finished span from ``start_ns`` to ``end_ns``, a child of the current span."""
        if self._tracer is None:
            return
        span = self._tracer.start_span(stage, attributes=attributes, start_time=start_ns)
        span.end(end_time=end_ns)

    def force_flush(self, timeout_millis: int = 10_000) -> bool:
        """Send the spans ended so far."""
        if self._provider is None or self._shut_down:
            return True
        return self._provider.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Flush and stop the span worker; safe twice."""
        if self._shut_down:
            return
        self._shut_down = True
        if self._provider is not None:
            self._provider.shutdown()
        self._tracer = None


class CountingSpanExporter(SpanExporter):
    """Wraps a span exporter: failures are logged and counted, never raised."""

    def __init__(self, inner: SpanExporter, store: MetricStore | None) -> None:
        self.inner = inner
        self.store = store
        if store is not None:
            store.inc(FAILURES, {"exporter": "otlp_traces"}, 0.0)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.inner.export(spans)
        except Exception:
            log.exception("OTLP span export raised")
            result = SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            log.warning("OTLP span export of %d spans failed", len(spans))
            if self.store is not None:
                self.store.inc(FAILURES, {"exporter": "otlp_traces"})
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)
