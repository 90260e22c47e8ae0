"""Pipeline-stage spans: recorded and sent when tracing is on, a no-op when off."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from driftline import MemoryTransport
from driftline.schema import encode
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from collector.config import Config, parse_config
from collector.dlq import MemoryDeadLetterSink
from collector.pipeline import Pipeline
from collector.runner import run
from collector.sources import MemorySource
from exporters.store import MetricStore
from exporters.tracing import STAGES, PipelineTracer
from tests.otlp_receiver import Receiver, otlp_receiver
from tests.streams import predictions


def run_batch(tracer: PipelineTracer) -> None:
    with tracer.span("batch", messages=2):
        for stage in STAGES:
            with tracer.span(stage) as span:
                span.set_attribute("stage.ok", True)


def test_stage_spans_nest_under_the_batch() -> None:
    memory = InMemorySpanExporter()
    tracer = PipelineTracer(enabled=True, span_exporter=memory, instance_id="c1")
    run_batch(tracer)
    tracer.force_flush()
    spans = {span.name: span for span in memory.get_finished_spans()}
    assert set(spans) == {"batch", *STAGES}
    batch = spans["batch"]
    assert batch.attributes is not None and batch.attributes["messages"] == 2
    for stage in STAGES:
        span = spans[stage]
        assert span.parent is not None and span.parent.span_id == batch.context.span_id
        assert span.attributes is not None and span.attributes["stage.ok"] is True
        assert batch.start_time is not None and span.start_time is not None
        assert span.start_time >= batch.start_time
    assert batch.resource.attributes["service.name"] == "driftline-collector"
    assert batch.resource.attributes["service.instance.id"] == "c1"
    tracer.shutdown()
    tracer.shutdown()


def test_an_exception_is_recorded_and_reraised() -> None:
    memory = InMemorySpanExporter()
    tracer = PipelineTracer(enabled=True, span_exporter=memory)
    with pytest.raises(RuntimeError, match="bad batch"), tracer.span("detect"):
        raise RuntimeError("bad batch")
    tracer.force_flush()
    (span,) = memory.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]
    tracer.shutdown()


def test_disabled_tracing_records_nothing() -> None:
    tracer = PipelineTracer(enabled=False, endpoint="http://unused")
    with tracer.span("poll") as span:
        span.set_attribute("ignored", 1)
        assert not span.is_recording()
    assert tracer.force_flush()
    tracer.shutdown()


def test_enabled_without_endpoint_is_refused() -> None:
    with pytest.raises(ValueError, match="tracing needs an OTLP endpoint, got None"):
        PipelineTracer(enabled=True)


@pytest.fixture
def trace_receiver() -> Iterator[Receiver[ExportTraceServiceRequest]]:
    with otlp_receiver(ExportTraceServiceRequest, ExportTraceServiceResponse) as state:
        yield state


def test_spans_arrive_over_otlp_http(
    trace_receiver: Receiver[ExportTraceServiceRequest],
) -> None:
    url, received = trace_receiver.url, trace_receiver.requests
    store = MetricStore()
    tracer = PipelineTracer(enabled=True, endpoint=url, store=store, instance_id="c1")
    run_batch(tracer)
    tracer.shutdown()
    names = [
        span.name
        for request in received
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]
    assert sorted(names) == sorted(["batch", *STAGES])
    assert set(trace_receiver.paths) == {"/v1/traces"}
    assert store.get("driftline_exporter_failures_total", {"exporter": "otlp_traces"}) == 0.0


def test_failed_span_exports_are_counted(
    trace_receiver: Receiver[ExportTraceServiceRequest],
) -> None:
    url, received = trace_receiver.url, trace_receiver.requests
    trace_receiver.status = 400
    store = MetricStore()
    tracer = PipelineTracer(enabled=True, endpoint=url, store=store)
    run_batch(tracer)
    tracer.force_flush()
    tracer.shutdown()
    assert len(received) >= 1
    assert store.get("driftline_exporter_failures_total", {"exporter": "otlp_traces"}) == 1.0


def test_built_from_the_configuration(
    trace_receiver: Receiver[ExportTraceServiceRequest],
) -> None:
    off = PipelineTracer.from_config(MetricStore(), parse_config({}).otlp)
    assert not off.enabled
    url, received = trace_receiver.url, trace_receiver.requests
    config = parse_config({"otlp": {"endpoint": url, "tracing": True}})
    tracer = PipelineTracer.from_config(MetricStore(), config.otlp)
    with tracer.span("poll"):
        pass
    tracer.shutdown()
    assert [s.name for r in received for rs in r.resource_spans
            for ss in rs.scope_spans for s in ss.spans] == ["poll"]


def test_the_service_loop_traces_poll_decode_detect_and_export() -> None:
    memory = InMemorySpanExporter()
    tracer = PipelineTracer(enabled=True, span_exporter=memory)
    transport = MemoryTransport()
    for event in predictions(6000, seed=21):
        transport.send("m", encode(event))
    source = MemorySource(transport)
    source.close()  # finite: the loop ends when the transport is drained
    pipeline = Pipeline(Config(), MetricStore(), MemoryDeadLetterSink(), event_time=True, tracer=tracer)
    run(source, pipeline, threading.Event(), batch_size=2000, poll_timeout=0.0, tracer=tracer)
    tracer.force_flush()
    names = [span.name for span in memory.get_finished_spans()]
    assert names.count("decode") == 3 and names.count("export") == 3
    assert names.count("detect") == 1 and names.count("poll") >= 3
    detect = next(s for s in memory.get_finished_spans() if s.name == "detect")
    assert detect.attributes is not None and detect.attributes["model"] == "m"
    tracer.shutdown()
