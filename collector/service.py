"""``driftline collect``: the long-running service on Kafka, wired from the configuration."""

from __future__ import annotations

import logging
import threading

from rich.console import Console

from collector.auto_references import AutomaticReferences
from collector.calibration_worker import CalibrationWorker
from collector.checkpoints import Checkpointer
from collector.config import Config
from collector.heap_freezer import HeapFreezer
from collector.http_server import Endpoints, HttpServer
from collector.kafka_check import verify_connection
from collector.kafka_source import Partition, PartitionsCallback
from collector.kafka_wiring import build_kafka_dlq, build_kafka_source, build_state_store
from collector.pipeline import Pipeline
from collector.runner import run
from collector.sources import GroupSource
from collector.state_store import StateStore
from collector.system_metrics import SystemMetrics
from collector.threshold_worker import ThresholdWorker
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
    state_store = build_state_store(config)
    automatic = AutomaticReferences(state_store, f"{config.kafka.group_id}/") if state_store else None
    calibration = CalibrationWorker()
    thresholds = ThresholdWorker()
    pipeline = Pipeline(
        config,
        store,
        dlq,
        event_time=False,
        listeners=(reports, history),
        label_listeners=(history.label_window,),
        tracer=tracer,
        automatic_references=automatic,
        calibration=calibration,
        threshold_worker=thresholds,
    )
    checkpointer = _checkpointer(config, pipeline, store, state_store, history)
    source = build_kafka_source(
        config,
        store,
        on_revoke=checkpointer.forget if checkpointer else _dropper(pipeline, config.kafka.predictions_topic),
        start_offsets=checkpointer.restore if checkpointer else None,
    )
    if checkpointer is not None and config.state.store == "local":
        source.on_assign = _warn_if_shared(source, config.kafka.predictions_topic)
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
    checkpoint = (lambda: checkpointer.save_if_due(source.snapshot())) if checkpointer else None
    freezer = HeapFreezer()
    freezer.start()
    try:
        run(source, pipeline, stop, tracer=tracer, checkpoint=checkpoint, on_batch=freezer.after_batch)
        if checkpointer is not None:  # a clean stop: the state of every processed event
            checkpointer.save(source.snapshot())
    finally:
        calibration.close()
        thresholds.close()
        tracer.shutdown()
        source.close()
        if state_store is not None:
            state_store.close()
        dlq.close()
        server.stop()
        if otlp is not None:
            otlp.shutdown()


def _checkpointer(
    config: Config,
    pipeline: Pipeline,
    store: MetricStore,
    state_store: StateStore | None,
    history: WindowHistory,
) -> Checkpointer | None:
    if state_store is None:
        return None
    kafka = config.kafka
    return Checkpointer(
        pipeline,
        state_store,
        store,
        prefix=f"{kafka.group_id}/{kafka.predictions_topic}/",
        interval_seconds=config.state.interval_seconds,
        min_interval_seconds=config.state.min_interval_seconds,
        history=history,
    )


def _dropper(pipeline: Pipeline, topic: str) -> PartitionsCallback:
    """Without checkpoints: forget the models of lost partitions (their new owner reads them again)."""

    def drop(partitions: list[Partition]) -> None:
        numbers = {number for name, number in partitions if name == topic}
        if numbers:
            pipeline.drop_partitions(numbers)

    return drop


def _warn_if_shared(source: GroupSource, topic: str) -> PartitionsCallback:
    """A local state store cannot follow a partition to another collector: warn when the group has others."""

    def warn(assigned: list[Partition]) -> None:
        total = source.partition_count(topic)
        owned = {number for name, number in source.assignment() if name == topic}
        if total is not None and len(owned) < total:
            log.warning(
                "other collectors share group %s (this one holds %d of %d partitions of %s), but the state "
                "store is local: a partition that moves loses its state; use state.store: kafka",
                source.group_id, len(owned), total, topic,
            )

    return warn
