"""Pipeline-stage spans: recorded and sent when tracing is on, a no-op when off."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from driftline import MemoryTransport
from driftline.schema import encode
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from collector.cli import main
from collector.config import Config, parse_config
from collector.dlq import MemoryDeadLetterSink
from collector.pipeline import Pipeline
from collector.runner import run
from collector.sources import MemorySource, RawMessage, Source
from exporters.store import MetricStore
from exporters.tracing import STAGES, PipelineTracer
from tests.otlp_receiver import Receiver, otlp_receiver
from tests.streams import predictions


def run_batch(tracer: PipelineTracer) -> None:
    with tracer.span("batch", messages=2):
        for stage in STAGES:
            with tracer.span(stage) as span:
                span.set_attribute("stage.ok", True)


def run_event_time(source: Source, pipeline: Pipeline, tracer: PipelineTracer) -> None:
    """The service loop as replay runs it: no wall-clock ticks, whose time would retire the
    event-time versions on a slow machine."""
    run(source, pipeline, threading.Event(), batch_size=2000, poll_timeout=0.0, tick_interval=math.inf,
        tracer=tracer)


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
    run_event_time(source, pipeline, tracer)
    tracer.force_flush()
    names = [span.name for span in memory.get_finished_spans()]
    assert names.count("decode") == 3 and names.count("export") == 3
    assert names.count("detect") == 1 and names.count("poll") == 3 and names.count("batch") == 3
    detect = next(s for s in memory.get_finished_spans() if s.name == "detect")
    assert detect.attributes is not None and detect.attributes["model"] == "m"
    tracer.shutdown()


class EmptyPollsFirst:
    """A memory source whose first ``empty`` polls return nothing, as a quiet topic does."""

    def __init__(self, source: MemorySource, empty: int) -> None:
        self.source, self.empty, self.polls = source, empty, 0

    def next_batch(self, max_items: int, timeout: float) -> list[RawMessage]:
        self.polls += 1
        if self.polls <= self.empty:
            return []
        return self.source.next_batch(max_items, timeout)

    def commit(self) -> None:
        self.source.commit()

    def snapshot(self) -> dict[str, dict[int, int]]:
        return self.source.snapshot()

    @property
    def exhausted(self) -> bool:
        return self.polls > self.empty and self.source.exhausted

    def close(self) -> None:
        self.source.close()


def test_each_batch_is_one_trace_and_empty_polls_are_not_traced(
    trace_receiver: Receiver[ExportTraceServiceRequest],
) -> None:
    tracer = PipelineTracer(enabled=True, endpoint=trace_receiver.url, store=MetricStore())
    transport = MemoryTransport()
    for event in predictions(6000, seed=22):
        transport.send("m", encode(event))
    memory = MemorySource(transport)
    memory.close()  # finite: the loop ends when the transport is drained
    source = EmptyPollsFirst(memory, empty=5)
    pipeline = Pipeline(Config(), MetricStore(), MemoryDeadLetterSink(), event_time=True, tracer=tracer)
    run_event_time(source, pipeline, tracer)
    tracer.shutdown()
    assert source.polls == 5 + 3 + 1  # empty, three batches, the last empty poll of the finite source
    spans = [
        span
        for request in trace_receiver.requests
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]
    traces: dict[bytes, list[Span]] = {}
    for span in spans:
        traces.setdefault(span.trace_id, []).append(span)
    assert len(traces) == 3
    detects = 0
    for trace_spans in traces.values():
        by_name: dict[str, list[Span]] = {}
        for span in trace_spans:
            by_name.setdefault(span.name, []).append(span)
        (batch,) = by_name.pop("batch")
        assert batch.parent_span_id == b""
        assert [a.value.int_value for a in batch.attributes if a.key == "messages"] == [2000]
        for stage in ("poll", "decode", "export"):
            (span,) = by_name.pop(stage)
            assert span.parent_span_id == batch.span_id, stage
            assert batch.start_time_unix_nano <= span.start_time_unix_nano
            assert span.end_time_unix_nano <= batch.end_time_unix_nano
        for detect in by_name.pop("detect", []):
            decode = next(s for s in trace_spans if s.name == "decode")
            assert detect.parent_span_id == decode.span_id
            detects += 1
        assert by_name == {}
    assert detects == 1  # one window closes: 6000 predictions, 5000 of them the reference


def test_replay_with_an_otlp_section_says_only_collect_exports(
    trace_receiver: Receiver[ExportTraceServiceRequest],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(encode(e) for e in predictions(300, seed=23)) + b"\n")
    config = tmp_path / "driftline.yaml"
    config.write_text(f"otlp:\n  endpoint: {trace_receiver.url}\n  tracing: true\n")
    assert main(["replay", str(events), "--config", str(config)]) == 0
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "note: the otlp: section is used by `driftline collect` only; replay exports nothing over "
        "OTLP (write its metrics with --metrics-out)"
    ]
    assert trace_receiver.requests == []
