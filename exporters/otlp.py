"""OTLP exporter: the metric catalog over OTLP/HTTP (protobuf) through the OpenTelemetry SDK.

The store already holds the aggregates (gauges, running counter totals,
cumulative histogram buckets), so this exporter does not re-measure them
through SDK instruments, which could not take pre-aggregated histogram
buckets. It turns a store snapshot into the SDK's own ``MetricsData`` and
hands it to the SDK's ``OTLPMetricExporter``, which encodes the
``ExportMetricsServiceRequest`` and POSTs it with the SDK's retries,
compression and headers. The mapping:

- gauge -> OTLP Gauge;
- counter -> OTLP Sum, cumulative and monotonic;
- histogram -> OTLP Histogram, cumulative, explicit bounds from the catalog.

Names are the catalog's names unchanged (``driftline_events_total``), so a
query written against ``/metrics`` finds the same series behind an OTLP
pipeline. Units come from the name suffix (``s``, ``By``, ``1``).

Following OpenTelemetry's exporter shape, :meth:`OtlpExporter.export`,
:meth:`OtlpExporter.force_flush` and :meth:`OtlpExporter.shutdown` never raise
into the caller's loop: a failing export is logged and counted in
``driftline_exporter_failures_total{exporter="otlp"}``, and ``shutdown`` is
safe to call twice. :meth:`OtlpExporter.start` runs exports every
``interval_seconds`` on its own thread, so a slow or unreachable endpoint
(retried for up to ``timeout_seconds``) never stalls the pipeline.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from exporters.catalog import MetricDef
from exporters.secrets import reveal
from exporters.store import HistogramValue, LabelValues, MetricSnapshot, MetricStore

if TYPE_CHECKING:
    from exporters.otlp_config import OtlpConfig

log = logging.getLogger(__name__)

SERVICE_NAME = "driftline-collector"
SCOPE = InstrumentationScope("driftline.collector")
FAILURES = "driftline_exporter_failures_total"


def default_instance_id() -> str:
    """``host:pid``: unique per running collector and readable in a backend."""
    return f"{socket.gethostname()}:{os.getpid()}"


def signal_url(endpoint: str, signal: str) -> str:
    """The OTLP/HTTP URL of one signal (``metrics``, ``traces``) under a base endpoint."""
    base = endpoint.rstrip("/")
    suffix = f"/v1/{signal}"
    return base if base.endswith(suffix) else base + suffix


def service_resource(instance_id: str | None) -> Resource:
    """The resource every Driftline signal carries: service name and instance."""
    return Resource.create(
        {"service.name": SERVICE_NAME, "service.instance.id": instance_id or default_instance_id()}
    )


class OtlpExporter:
    """Exports a :class:`MetricStore`'s snapshots over OTLP/HTTP.

    ``before_export`` runs before each snapshot (e.g. ``SystemMetrics.update``,
    so process metrics are fresh even when nobody scrapes ``/metrics``); if it
    raises, the export still goes out. ``metric_exporter`` replaces the SDK's HTTP exporter (tests use it to
    simulate failures); by default one is built for ``endpoint``.
    """

    def __init__(
        self,
        store: MetricStore,
        endpoint: str,
        *,
        instance_id: str | None = None,
        interval_seconds: float = 15.0,
        timeout_seconds: float = 5.0,
        headers: Mapping[str, str] | None = None,
        metric_exporter: MetricExporter | None = None,
        before_export: Callable[[], None] | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        if not interval_seconds > 0:
            raise ValueError(f"interval_seconds must be > 0, got {interval_seconds}")
        if not timeout_seconds > 0:
            raise ValueError(f"timeout_seconds must be > 0, got {timeout_seconds}")
        self.store = store
        self.endpoint = endpoint
        self.interval_seconds = interval_seconds
        self.timeout_seconds = timeout_seconds
        self.resource = service_resource(instance_id)
        self.metric_exporter = metric_exporter or OTLPMetricExporter(
            endpoint=signal_url(endpoint, "metrics"),
            headers=dict(headers or {}),
            timeout=timeout_seconds,
        )
        self.before_export = before_export
        self.clock = clock
        self.start_time_ns = clock()
        self._export_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._shut_down = False
        store.inc(FAILURES, {"exporter": "otlp"}, 0.0)  # the series exists at 0 from the start

    @classmethod
    def from_config(
        cls,
        store: MetricStore,
        config: OtlpConfig,
        before_export: Callable[[], None] | None = None,
    ) -> OtlpExporter | None:
        """The exporter configured under ``otlp:``, or None when no endpoint is set."""
        if not config.endpoint:
            return None
        return cls(
            store,
            config.endpoint,
            instance_id=config.service_instance_id,
            interval_seconds=config.interval_seconds,
            timeout_seconds=config.timeout_seconds,
            headers=reveal(config.headers),
            before_export=before_export,
        )

    def export(self) -> bool:
        """Send the current snapshot once; False (logged and counted) if it failed."""
        with self._export_lock:
            if self._shut_down:
                return False
            self._refresh()
            try:
                data = to_metrics_data(self.store.snapshot(), self.resource, self.start_time_ns,
                                       self.clock())
                result = self.metric_exporter.export(
                    data, timeout_millis=self.timeout_seconds * 1000.0
                )
            except Exception:
                log.exception("OTLP metric export to %s raised", self.endpoint)
                result = MetricExportResult.FAILURE
            if result is not MetricExportResult.SUCCESS:
                log.warning("OTLP metric export to %s failed", self.endpoint)
                self.store.inc(FAILURES, {"exporter": "otlp"})
                return False
            return True

    def start(self) -> None:
        """Export every ``interval_seconds`` on a daemon thread until :meth:`shutdown`."""
        if self._thread is not None or self._shut_down:
            return
        self._thread = threading.Thread(target=self._run, name="driftline-otlp", daemon=True)
        self._thread.start()

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        """Export now. Nothing is buffered, so this is one export of the latest values."""
        return self.export()

    def shutdown(self) -> None:
        """Stop the thread, send a last export and close the HTTP exporter; safe twice."""
        if self._shut_down:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_seconds + 1.0)
        self.export()
        with self._export_lock:
            self._shut_down = True
            try:
                self.metric_exporter.shutdown()
            except Exception:
                log.exception("closing the OTLP metric exporter raised")

    def _refresh(self) -> None:
        if self.before_export is None:
            return
        try:
            self.before_export()
        except Exception:
            log.exception("refreshing metrics before the OTLP export raised")

    def _run(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            self.export()


def to_metrics_data(
    snapshot: Sequence[MetricSnapshot], resource: Resource, start_ns: int, now_ns: int
) -> MetricsData:
    """The SDK's pre-aggregated form of a store snapshot (metrics without samples left out)."""
    metrics = [_metric(item, start_ns, now_ns) for item in snapshot if item.samples]
    scope = ScopeMetrics(scope=SCOPE, metrics=metrics, schema_url="")
    return MetricsData(
        resource_metrics=[ResourceMetrics(resource=resource, scope_metrics=[scope], schema_url="")]
    )


def _metric(snapshot: MetricSnapshot, start_ns: int, now_ns: int) -> Metric:
    metric = snapshot.metric
    data: Gauge | Sum | Histogram
    if metric.kind == "histogram":
        data = Histogram(
            data_points=[
                _histogram_point(metric, key, value, start_ns, now_ns)
                for key, value in sorted(snapshot.samples.items())
                if isinstance(value, HistogramValue)
            ],
            aggregation_temporality=AggregationTemporality.CUMULATIVE,
        )
    else:
        points = [
            NumberDataPoint(
                attributes=_attributes(metric, key),
                start_time_unix_nano=start_ns if metric.kind == "counter" else 0,
                time_unix_nano=now_ns,
                value=float(value),
            )
            for key, value in sorted(snapshot.samples.items())
            if isinstance(value, float)
        ]
        if metric.kind == "counter":
            data = Sum(points, AggregationTemporality.CUMULATIVE, is_monotonic=True)
        else:
            data = Gauge(points)
    return Metric(name=metric.name, description=metric.help, unit=metric.unit, data=data)


def _histogram_point(
    metric: MetricDef, key: LabelValues, value: HistogramValue, start_ns: int, now_ns: int
) -> HistogramDataPoint:
    cumulative = value.bucket_counts
    per_bucket = [int(c - p) for p, c in zip((0.0, *cumulative[:-1]), cumulative, strict=True)]
    return HistogramDataPoint(
        attributes=_attributes(metric, key),
        start_time_unix_nano=start_ns,
        time_unix_nano=now_ns,
        count=int(value.count),
        sum=value.sum,
        bucket_counts=per_bucket,
        explicit_bounds=list(metric.buckets),
        # The store keeps no min or max; None leaves OTLP's optional fields unset.
        min=None,  # type: ignore[arg-type]
        max=None,  # type: ignore[arg-type]
    )


def _attributes(metric: MetricDef, key: LabelValues) -> dict[str, str]:
    return dict(zip(metric.labels, key, strict=True))
