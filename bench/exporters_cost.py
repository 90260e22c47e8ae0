"""What the exporters cost, as ratios against baselines measured in the same run.

1. OTLP: turning a store snapshot into the SDK's MetricsData and encoding the
   protobuf request, against rendering the Prometheus exposition of the same
   store (what every scrape costs).
2. Tracing: a pipeline-stage span, and a whole batch's trace (the ``batch``
   span with ``poll``, ``decode`` and ``export`` children, as the runner makes
   it), with tracing off and with tracing on (to an in-memory exporter, so only
   the SDK's own cost counts), against an empty ``with`` block.
3. System metrics: one psutil sample of the process and host.

Run: .venv/bin/python bench/exporters_cost.py [--full] [--series N] (quick: 10 series per
labelled metric; ``--full``: 50)
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable

import harness
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import generate_latest

from collector.system_metrics import SystemMetrics
from exporters.catalog import CATALOG
from exporters.otlp import service_resource, to_metrics_data
from exporters.prometheus import build_registry
from exporters.store import MetricStore
from exporters.tracing import PipelineTracer


def filled_store(series_per_metric: int) -> MetricStore:
    store = MetricStore()
    for metric in CATALOG:
        for i in range(series_per_metric if metric.labels else 1):
            labels = {name: f"{name}-{i}" for name in metric.labels}
            if metric.kind == "gauge":
                store.set(metric.name, labels, i * 0.5)
            elif metric.kind == "counter":
                store.inc(metric.name, labels, i)
            else:
                store.observe(metric.name, labels, metric.buckets[i % len(metric.buckets)])
    return store


def best_of(fn: Callable[[], object], repeat: int, number: int) -> float:
    """Best mean seconds per call over ``repeat`` rounds of ``number`` calls."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - started) / number)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, help="series per labelled metric (quick 10, full 50)")
    args, chosen = harness.parse(parser, quick={"series": 10}, full={"series": 50})
    run = harness.BenchRun("exporters_cost", args, chosen)

    store = filled_store(args.series)
    registry = build_registry(store)
    resource = service_resource("bench")
    run.figure("series", store.series_count())
    prometheus = best_of(lambda: generate_latest(registry), repeat=5, number=20)
    otlp = best_of(
        lambda: encode_metrics(to_metrics_data(store.snapshot(), resource, 0, 1))
        .SerializeToString(),
        repeat=5,
        number=20,
    )
    print(f"store: {store.series_count()} series")
    run.compare("otlp snapshot+encode, per export", otlp * 1e3, prometheus * 1e3,
                "prometheus exposition, per scrape", "ms")

    empty = best_of(lambda: contextlib.nullcontext().__enter__(), repeat=5, number=20_000)
    off = PipelineTracer()
    on = PipelineTracer(enabled=True, span_exporter=InMemorySpanExporter())

    def span_off() -> None:
        with off.span("decode"):
            pass

    def span_on() -> None:
        with on.span("decode"):
            pass

    disabled = best_of(span_off, repeat=5, number=20_000)
    enabled = best_of(span_on, repeat=5, number=2_000)
    batch_off = best_of(lambda: batch_trace(off), repeat=5, number=5_000)
    batch_on = best_of(lambda: batch_trace(on), repeat=5, number=500)
    on.shutdown()
    run.compare("span, tracing off", disabled * 1e6, empty * 1e6, "empty with-block", "us")
    run.compare("span, tracing on", enabled * 1e6, empty * 1e6, "empty with-block", "us")
    run.compare("batch trace, tracing off", batch_off * 1e6, empty * 1e6, "empty with-block", "us")
    run.compare("batch trace, tracing on", batch_on * 1e6, empty * 1e6, "empty with-block", "us")

    system = SystemMetrics(MetricStore())
    sample = best_of(system.update, repeat=5, number=200)
    run.compare("system metrics sample", sample * 1e3, prometheus * 1e3, "one scrape", "ms")
    run.write()


def batch_trace(tracer: PipelineTracer) -> None:
    """The spans the runner makes for one batch (collector/runner.py), around no work."""
    started = time.time_ns()
    with tracer.span("batch", start_ns=started, messages=1000):
        tracer.record("poll", started, time.time_ns(), messages=1000)
        with tracer.span("decode", messages=1000):
            pass
        with tracer.span("export"):
            pass


if __name__ == "__main__":
    main()
