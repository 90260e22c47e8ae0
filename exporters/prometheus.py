"""Prometheus exporter: a custom collector that yields metric families from the store.

Registered on a registry that the caller passes in (never the global one), so
each test and each collector builds its own.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from exporters.store import HistogramValue, MetricSnapshot, MetricStore


class StoreCollector(Collector):
    """Exposes every series in a :class:`MetricStore` in the Prometheus format."""

    def __init__(self, store: MetricStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        for snapshot in self.store.snapshot():
            yield _family(snapshot)

    def describe(self) -> Iterator[Metric]:
        return iter(())


def _family(snapshot: MetricSnapshot) -> Metric:
    metric = snapshot.metric
    labels = list(metric.labels)
    if metric.kind == "histogram":
        histogram = HistogramMetricFamily(metric.name, metric.help, labels=labels)
        bounds = [*(_bound(b) for b in metric.buckets), "+Inf"]
        for key, value in sorted(snapshot.samples.items()):
            assert isinstance(value, HistogramValue)
            histogram.add_metric(
                list(key), list(zip(bounds, value.bucket_counts, strict=True)), value.sum
            )
        return histogram
    family: GaugeMetricFamily | CounterMetricFamily
    if metric.kind == "counter":
        family = CounterMetricFamily(metric.family_name, metric.help, labels=labels)
    else:
        family = GaugeMetricFamily(metric.name, metric.help, labels=labels)
    for key, value in sorted(snapshot.samples.items()):
        assert isinstance(value, float)
        family.add_metric(list(key), value)
    return family


def _bound(bound: float) -> str:
    return repr(float(bound))


def build_registry(store: MetricStore) -> CollectorRegistry:
    """A fresh registry exposing the store."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store))
    return registry
