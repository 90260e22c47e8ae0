"""The metric store: the one internal source of results that every exporter reads.

The pipeline writes gauges, counters and histogram observations here, by
catalog name; the Prometheus collector and the OTLP exporter take consistent
snapshots. No detector writes here directly and no exporter computes anything.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from driftline.schema import utf8_text

from exporters.catalog import CATALOG, MetricDef

LabelValues = tuple[str, ...]


@dataclass(frozen=True)
class HistogramValue:
    """Cumulative bucket counts (one per bound, then +Inf), sum and count."""

    bucket_counts: tuple[float, ...]
    sum: float
    count: float


@dataclass(frozen=True)
class MetricSnapshot:
    """One metric's samples at one moment: label values to a number or a histogram."""

    metric: MetricDef
    samples: Mapping[LabelValues, float | HistogramValue]


class _Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0.0] * (len(buckets) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value

    def value(self) -> HistogramValue:
        cumulative, running = [], 0.0
        for count in self.counts:
            running += count
            cumulative.append(running)
        return HistogramValue(tuple(cumulative), self.sum, running)


class MetricStore:
    """Thread-safe latest values per (metric, label values), restricted to a catalog."""

    def __init__(self, catalog: Iterable[MetricDef] = CATALOG) -> None:
        self.metrics = {metric.name: metric for metric in catalog}
        self._values: dict[str, dict[LabelValues, float | _Histogram]] = {
            name: {} for name in self.metrics
        }
        self._lock = threading.Lock()

    def set(self, name: str, labels: Mapping[str, str], value: float) -> None:
        """Set a gauge."""
        key = self._key(name, labels, "gauge")
        with self._lock:
            self._values[name][key] = float(value)

    def inc(self, name: str, labels: Mapping[str, str], amount: float = 1.0) -> None:
        """Add to a counter (creating it at 0 first, so ``amount=0`` makes the series exist)."""
        if amount < 0:
            raise ValueError(f"counter {name} cannot go down by {amount}")
        key = self._key(name, labels, "counter")
        with self._lock:
            series = self._values[name]
            series[key] = float(series.get(key, 0.0)) + amount  # type: ignore[arg-type]

    def discount(self, name: str, labels: Mapping[str, str], amount: float) -> None:
        """Take counts out of a counter (never below 0): the only way one goes down.

        For counts that leave this process with the partition they belong to,
        whose new owner adds them to its own counter.
        """
        if amount < 0:
            raise ValueError(f"cannot discount {name} by {amount}")
        key = self._key(name, labels, "counter")
        with self._lock:
            series = self._values[name]
            if key in series:
                series[key] = max(0.0, float(series[key]) - amount)  # type: ignore[arg-type]

    def observe(self, name: str, labels: Mapping[str, str], value: float) -> None:
        """Record one histogram observation."""
        self.observe_many(name, labels, (value,))

    def observe_many(self, name: str, labels: Mapping[str, str], values: Iterable[float]) -> None:
        """Record several observations of one series (a batch's) under one lock."""
        key = self._key(name, labels, "histogram")
        with self._lock:
            series = self._values[name]
            histogram = series.get(key)
            if not isinstance(histogram, _Histogram):
                histogram = _Histogram(self.metrics[name].buckets)
                series[key] = histogram
            for value in values:
                histogram.observe(value)

    def inc_many(self, name: str, label_names: Sequence[str], amounts: Mapping[LabelValues, float]) -> None:
        """Add to many series of one counter, each named by its label values in ``label_names``'
        order: the names are checked once and the lock taken once (a batch's writes)."""
        order = self._order(name, label_names, "counter")
        with self._lock:
            series = self._values[name]
            for values, amount in amounts.items():
                if amount < 0:
                    raise ValueError(f"counter {name} cannot go down by {amount}")
                key = _series_key(values, order)
                series[key] = float(series.get(key, 0.0)) + amount  # type: ignore[arg-type]

    def set_many(self, name: str, label_names: Sequence[str], values: Mapping[LabelValues, float]) -> None:
        """Set many series of one gauge, named as in :meth:`inc_many`."""
        order = self._order(name, label_names, "gauge")
        with self._lock:
            series = self._values[name]
            for labels, value in values.items():
                series[_series_key(labels, order)] = float(value)

    def observe_series(
        self, name: str, label_names: Sequence[str], observations: Mapping[LabelValues, Iterable[float]]
    ) -> None:
        """Record the observations of many series of one histogram, named as in :meth:`inc_many`."""
        order = self._order(name, label_names, "histogram")
        buckets = self.metrics[name].buckets
        with self._lock:
            series = self._values[name]
            for labels, recorded in observations.items():
                key = _series_key(labels, order)
                histogram = series.get(key)
                if not isinstance(histogram, _Histogram):
                    histogram = series[key] = _Histogram(buckets)
                for value in recorded:
                    histogram.observe(value)

    def get(self, name: str, labels: Mapping[str, str]) -> float | HistogramValue | None:
        """The current value of one series, or None."""
        key = self._key(name, labels, None)
        with self._lock:
            value = self._values[name].get(key)
        return value.value() if isinstance(value, _Histogram) else value

    def remove(self, name: str, labels: Mapping[str, str]) -> None:
        """Drop one series (a retired model version, a replaced model_info)."""
        key = self._key(name, labels, None)
        with self._lock:
            self._values[name].pop(key, None)

    def remove_where(self, **match: str) -> int:
        """Drop every series of every metric whose labels include all of ``match``; return how many."""
        removed = 0
        with self._lock:
            for name, series in self._values.items():
                names = self.metrics[name].labels
                if not set(match) <= set(names):
                    continue
                positions = [(names.index(label), value) for label, value in match.items()]
                doomed = [key for key in series if all(key[i] == v for i, v in positions)]
                for key in doomed:
                    del series[key]
                removed += len(doomed)
        return removed

    def export_where(self, exclude: Iterable[str] = (), **match: str) -> list[list[Any]]:
        """Every series whose labels include all of ``match`` (but metrics in ``exclude``), as plain data.

        Each item is ``[name, label values, value]``, a histogram's value being
        ``[per-bucket counts, sum]``; :meth:`restore` takes the list back, so
        counters continue from where a checkpoint left them.
        """
        skipped = set(exclude)
        exported: list[list[Any]] = []
        with self._lock:
            for name, series in self._values.items():
                names = self.metrics[name].labels
                if name in skipped or not set(match) <= set(names):
                    continue
                positions = [(names.index(label), value) for label, value in match.items()]
                for key, value in series.items():
                    if all(key[i] == v for i, v in positions):
                        plain = [list(value.counts), value.sum] if isinstance(value, _Histogram) else value
                        exported.append([name, list(key), plain])
        return exported

    def restore(self, exported: Iterable[Sequence[Any]]) -> None:
        """Put back series from :meth:`export_where` (replacing those with the same labels)."""
        with self._lock:
            for name, key, plain in exported:
                metric = self.metrics.get(name)
                if metric is None or len(key) != len(metric.labels):
                    continue  # a metric this version no longer has
                if metric.kind == "histogram":
                    if len(plain[0]) != len(metric.buckets) + 1:
                        continue  # its buckets changed: the old counts do not fit

                    histogram = _Histogram(metric.buckets)
                    histogram.counts, histogram.sum = [float(c) for c in plain[0]], float(plain[1])
                    self._values[name][tuple(key)] = histogram
                else:
                    self._values[name][tuple(key)] = float(plain)

    def series_count(self) -> int:
        with self._lock:
            return sum(len(series) for series in self._values.values())

    def snapshot(self) -> list[MetricSnapshot]:
        """A consistent copy of every metric's samples, in catalog order."""
        with self._lock:
            return [
                MetricSnapshot(
                    self.metrics[name],
                    {
                        key: value.value() if isinstance(value, _Histogram) else value
                        for key, value in series.items()
                    },
                )
                for name, series in self._values.items()
            ]

    def _order(self, name: str, label_names: Sequence[str], kind: str) -> tuple[int, ...] | None:
        """Where each of the metric's labels is in ``label_names`` (None: the same order), checked."""
        metric = self.metrics.get(name)
        if metric is None:
            raise KeyError(f"{name} is not in the metric catalog")
        if metric.kind != kind:
            raise TypeError(f"{name} is a {metric.kind}, not a {kind}")
        names = tuple(label_names)
        if len(names) != len(metric.labels) or set(names) != set(metric.labels):
            raise ValueError(f"{name} takes labels {metric.labels}, got {names}")
        if names == tuple(metric.labels):
            return None
        return tuple(names.index(label) for label in metric.labels)

    def _key(self, name: str, labels: Mapping[str, str], kind: str | None) -> LabelValues:
        metric = self.metrics.get(name)
        if metric is None:
            raise KeyError(f"{name} is not in the metric catalog")
        if kind is not None and metric.kind != kind:
            raise TypeError(f"{name} is a {metric.kind}, not a {kind}")
        if len(labels) != len(metric.labels) or set(labels) != set(metric.labels):
            raise ValueError(f"{name} takes labels {metric.labels}, got {tuple(labels)}")
        # The schema rejects strings UTF-8 cannot encode at the door; should one slip
        # through, it is written as escapes rather than break every later scrape.
        return tuple(utf8_text(str(labels[label])) for label in metric.labels)


def _series_key(values: LabelValues, order: tuple[int, ...] | None) -> LabelValues:
    """The store's key for label values given in another order, written as :meth:`MetricStore._key` does."""
    if order is not None:
        values = tuple(values[index] for index in order)
    try:
        ascii_only = "".join(values).isascii()
    except TypeError:  # a value that is not a string: written as str() gives it, as _key does
        ascii_only = False
    if ascii_only:
        return tuple(values)
    return tuple(utf8_text(str(value)) for value in values)
