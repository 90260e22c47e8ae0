"""The OTLP export, received over real HTTP and decoded with opentelemetry-proto,
carries the same values that the Prometheus exposition shows for the same store."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from collector.config import parse_config
from exporters.catalog import CATALOG
from exporters.otlp import OtlpExporter
from exporters.prometheus import build_registry
from exporters.store import MetricStore
from tests.conftest import free_port
from tests.otlp_receiver import Receiver, otlp_receiver

Series = dict[tuple[str, frozenset[tuple[str, Any]]], float]


@pytest.fixture
def receiver() -> Iterator[Receiver[ExportMetricsServiceRequest]]:
    with otlp_receiver(ExportMetricsServiceRequest, ExportMetricsServiceResponse) as state:
        yield state


def filled_store(seed: int = 7) -> MetricStore:
    """Two series of every catalog metric, with seeded values."""
    rng = random.Random(seed)
    store = MetricStore()
    for metric in CATALOG:
        for series in ("a", "b"):
            labels = {name: f"{name}-{series}" for name in metric.labels}
            if metric.kind == "gauge":
                store.set(metric.name, labels, rng.uniform(0, 1))
            elif metric.kind == "counter":
                store.inc(metric.name, labels, rng.randint(0, 10_000))
            else:
                top = metric.buckets[-1] * 1.5
                for _ in range(rng.randint(1, 50)):
                    store.observe(metric.name, labels, rng.uniform(0, top))
    return store


def prometheus_series(store: MetricStore) -> Series:
    text = generate_latest(build_registry(store)).decode()
    return {
        (sample.name, _labels(sample.labels)): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def otlp_series(request: ExportMetricsServiceRequest) -> Series:
    """The OTLP request's data points in Prometheus's sample shape."""
    series: Series = {}
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                series.update(_samples(metric))
    return series


def _samples(metric: metrics_pb2.Metric) -> Series:
    kind = metric.WhichOneof("data")
    out: Series = {}
    if kind in ("gauge", "sum"):
        for point in getattr(metric, kind).data_points:
            out[(metric.name, _labels(_attrs(point)))] = point.as_double
        return out
    assert kind == "histogram", kind
    for point in metric.histogram.data_points:
        attrs = _attrs(point)
        running = 0
        bounds = [*point.explicit_bounds, float("inf")]
        for bound, count in zip(bounds, point.bucket_counts, strict=True):
            running += count
            out[(f"{metric.name}_bucket", _labels({**attrs, "le": bound}))] = float(running)
        out[(f"{metric.name}_count", _labels(attrs))] = float(point.count)
        out[(f"{metric.name}_sum", _labels(attrs))] = point.sum
    return out


def _attrs(point: Any) -> dict[str, str]:
    return {kv.key: kv.value.string_value for kv in point.attributes}


def _labels(labels: dict[str, Any]) -> frozenset[tuple[str, Any]]:
    return frozenset((k, float(v) if k == "le" else v) for k, v in labels.items())


def test_otlp_export_carries_the_prometheus_values(receiver: Receiver) -> None:
    store = filled_store()
    exporter = OtlpExporter(store, receiver.url, instance_id="collector-1", timeout_seconds=5)
    try:
        assert exporter.export()
    finally:
        exporter.shutdown()
    # shutdown sends a last export of the same values
    assert len(receiver.requests) == 2
    assert receiver.paths == ["/v1/metrics", "/v1/metrics"]
    expected = prometheus_series(store)
    received = otlp_series(receiver.requests[0])
    families = {name.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum")
                for name, _ in expected}
    assert families == {m.name for m in CATALOG}
    assert received == expected


def test_otlp_types_units_and_resource(receiver: Receiver) -> None:
    store = filled_store()
    exporter = OtlpExporter(store, receiver.url + "/", instance_id="collector-1")
    assert exporter.export()
    exporter.shutdown()
    (resource_metrics,) = receiver.requests[0].resource_metrics
    resource = {kv.key: kv.value.string_value for kv in resource_metrics.resource.attributes}
    assert resource["service.name"] == "driftline-collector"
    assert resource["service.instance.id"] == "collector-1"
    metrics = {m.name: m for m in resource_metrics.scope_metrics[0].metrics}
    assert set(metrics) == {m.name for m in CATALOG}
    cumulative = metrics_pb2.AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
    for definition in CATALOG:
        metric = metrics[definition.name]
        assert metric.description == definition.help
        assert metric.unit == definition.unit
        if definition.kind == "counter":
            assert metric.sum.is_monotonic
            assert metric.sum.aggregation_temporality == cumulative
        elif definition.kind == "histogram":
            assert metric.histogram.aggregation_temporality == cumulative
            assert list(metric.histogram.data_points[0].explicit_bounds) == list(definition.buckets)
        else:
            assert metric.WhichOneof("data") == "gauge"
    assert metrics["driftline_processing_delay_seconds"].unit == "s"
    assert metrics["driftline_process_resident_memory_bytes"].unit == "By"
    assert metrics["driftline_host_cpu_ratio"].unit == "1"


def test_a_rejected_export_is_counted_not_raised(receiver: Receiver) -> None:
    receiver.status = 400  # not retryable: the SDK gives up at once
    store = MetricStore()
    exporter = OtlpExporter(store, receiver.url)
    failures = {"exporter": "otlp"}
    assert store.get("driftline_exporter_failures_total", failures) == 0.0
    assert exporter.export() is False
    assert exporter.export() is False
    assert store.get("driftline_exporter_failures_total", failures) == 2.0
    exporter.shutdown()
    assert store.get("driftline_exporter_failures_total", failures) == 3.0


def test_an_unreachable_endpoint_fails_within_the_timeout() -> None:
    store = MetricStore()
    exporter = OtlpExporter(store, f"http://127.0.0.1:{free_port()}", timeout_seconds=0.5)
    started = time.monotonic()
    assert exporter.export() is False
    assert time.monotonic() - started < 3.0
    assert store.get("driftline_exporter_failures_total", {"exporter": "otlp"}) == 1.0


class Exploding(MetricExporter):
    def __init__(self) -> None:
        super().__init__()
        self.shutdowns = 0

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        raise RuntimeError("boom")

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.shutdowns += 1


def test_an_exporter_that_raises_never_kills_the_loop() -> None:
    store = MetricStore()
    inner = Exploding()
    exporter = OtlpExporter(store, "http://unused", metric_exporter=inner)
    assert exporter.force_flush() is False
    exporter.shutdown()
    exporter.shutdown()  # safe twice
    assert inner.shutdowns == 1
    assert exporter.export() is False  # after shutdown: nothing sent, nothing raised
    assert store.get("driftline_exporter_failures_total", {"exporter": "otlp"}) == 2.0


def test_start_exports_periodically_until_shutdown(receiver: Receiver) -> None:
    store = MetricStore()
    store.inc("driftline_windows_total", {"model": "m", "model_version": "1"}, 3)
    exporter = OtlpExporter(store, receiver.url, interval_seconds=0.05)
    exporter.start()
    deadline = time.monotonic() + 5.0
    while len(receiver.requests) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    store.inc("driftline_windows_total", {"model": "m", "model_version": "1"}, 4)
    exporter.shutdown()
    exporter.shutdown()
    count = len(receiver.requests)
    assert count >= 4
    time.sleep(0.2)
    assert len(receiver.requests) == count  # the thread stopped
    last = otlp_series(receiver.requests[-1])
    assert last[("driftline_windows_total", _labels({"model": "m", "model_version": "1"}))] == 7.0


def test_invalid_settings_name_the_value() -> None:
    with pytest.raises(ValueError, match="interval_seconds must be > 0, got 0"):
        OtlpExporter(MetricStore(), "http://unused", interval_seconds=0)


def test_built_from_the_configuration(receiver: Receiver) -> None:
    assert OtlpExporter.from_config(MetricStore(), parse_config({}).otlp) is None
    config = parse_config(
        {"otlp": {"endpoint": receiver.url, "interval_seconds": 2, "service_instance_id": "c9",
                  "headers": {"x-tenant": "ml"}}}
    )
    store = MetricStore()
    exporter = OtlpExporter.from_config(store, config.otlp)
    assert exporter is not None and exporter.interval_seconds == 2.0
    exporter.shutdown()
    (resource_metrics,) = receiver.requests[0].resource_metrics
    resource = {kv.key: kv.value.string_value for kv in resource_metrics.resource.attributes}
    assert resource["service.instance.id"] == "c9"
    assert receiver.tenants == ["ml"]


def test_before_export_refreshes_the_snapshot(receiver: Receiver) -> None:
    store = MetricStore()
    refreshed: list[int] = []

    def refresh() -> None:
        refreshed.append(1)
        store.set("driftline_process_threads", {}, float(len(refreshed)))
        if len(refreshed) == 2:
            raise RuntimeError("psutil hiccup")

    exporter = OtlpExporter(store, receiver.url, before_export=refresh)
    assert exporter.export()
    assert exporter.export()  # the refresh raised, the export still went out
    exporter.shutdown()
    values = [otlp_series(r)[("driftline_process_threads", frozenset())] for r in receiver.requests]
    assert values == [1.0, 2.0, 3.0]
