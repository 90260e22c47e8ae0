"""``driftline collect``: the long-running service on Kafka, wired from the configuration."""

from __future__ import annotations

import logging
import threading

from rich.console import Console

from collector.config import Config
from collector.http_server import Endpoints, HttpServer
from collector.kafka_check import verify_connection
from collector.kafka_source import Partition
from collector.kafka_wiring import build_kafka_dlq, build_kafka_source
from collector.pipeline import Pipeline
from collector.runner import run
from collector.system_metrics import SystemMetrics
from collector.window_history import WindowHistory
from exporters.html_report import HtmlReportWriter
from exporters.otlp import OtlpExporter
from exporters.prometheus import build_registry
from exporters.store import MetricStore
from exporters.tracing import PipelineTracer

log = logging.getLogger(__name__)


def serve(config: Config, stop: threading.Event, console: Console) -> None:
    """Consume, evaluate and export until ``stop`` is set; every resource is closed on the way out."""
    verify_connection(config.kafka)
    store = MetricStore()
    reports = HtmlReportWriter(config.reports)
    dlq = build_kafka_dlq(config)
    tracer = PipelineTracer.from_config(store, config.otlp)
    history = WindowHistory(config.history.windows)
    pipeline = Pipeline(
        config,
        store,
        dlq,
        event_time=False,
        listeners=(reports, history),
        label_listeners=(history.label_window,),
        tracer=tracer,
    )
    predictions_topic = config.kafka.predictions_topic
    source = build_kafka_source(
        config, store, on_revoke=lambda parts: _drop(pipeline, parts, predictions_topic)
    )
    system = SystemMetrics(store)
    endpoints = Endpoints(
        build_registry(store),
        pipeline.status,
        source.not_ready_reason,
        reports,
        system.update,
        windows=history.rows,
    )
    server = HttpServer.from_config(endpoints, config.http).start()
    otlp = OtlpExporter.from_config(store, config.otlp, before_export=system.update)
    if otlp is not None:
        otlp.start()
    console.print(
        f"driftline collect: consuming {config.kafka.bootstrap_servers}, serving {server.url}/metrics"
    )
    try:
        run(source, pipeline, stop, tracer=tracer)
    finally:
        tracer.shutdown()
        source.close()
        dlq.close()
        server.stop()
        if otlp is not None:
            otlp.shutdown()


def _drop(pipeline: Pipeline, partitions: list[Partition], topic: str) -> None:
    numbers = {number for name, number in partitions if name == topic}
    if numbers:
        pipeline.drop_partitions(topic, numbers)
