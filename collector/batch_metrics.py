"""A batch's metric writes, summed per series and written to the store once, at the batch's end.

Writing to the :class:`~exporters.store.MetricStore` per event builds and checks
a label key and takes the store's lock four to six times per prediction. The
pipeline instead names each series by its label values (in the order its
:class:`Family` declares), adds here, and flushes once per batch: one store
call per family, whose label names the store checks once, so a family that
does not match the catalog fails on the first flush, not silently. With many
models a batch touches nearly as many series as it has events, so the key of
each series is its label values as given, not a mapping rebuilt per series.

>>> from exporters.store import MetricStore
>>> store = MetricStore()
>>> events = Family("driftline_events_total", ("model", "model_version", "type"))
>>> batch = BatchMetrics(store)
>>> for _ in range(3):
...     batch.inc(events, ("churn", "2", "prediction"))
>>> store.get(events.name, {"model": "churn", "model_version": "2", "type": "prediction"}) is None
True
>>> batch.flush()
>>> store.get(events.name, {"model": "churn", "model_version": "2", "type": "prediction"})
3.0
"""

from __future__ import annotations

from dataclasses import dataclass

from exporters.store import MetricStore

LabelValues = tuple[str, ...]


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: a family is declared once
class Family:
    """A catalog metric and the order in which its label values are given."""

    name: str
    labels: tuple[str, ...]


class BatchMetrics:
    """Counter sums, last gauge values and histogram observations per series, until :meth:`flush`."""

    def __init__(self, store: MetricStore) -> None:
        self.store = store
        self._counts: dict[Family, dict[LabelValues, float]] = {}
        self._gauges: dict[Family, dict[LabelValues, float]] = {}
        self._observations: dict[Family, dict[LabelValues, list[float]]] = {}

    def inc(self, family: Family, values: LabelValues, amount: float = 1.0) -> None:
        counts = self._counts.get(family)
        if counts is None:
            counts = self._counts[family] = {}
        counts[values] = counts.get(values, 0.0) + amount

    def set(self, family: Family, values: LabelValues, value: float) -> None:
        gauges = self._gauges.get(family)
        if gauges is None:
            gauges = self._gauges[family] = {}
        gauges[values] = value

    def observe(self, family: Family, values: LabelValues, value: float) -> None:
        series = self._observations.get(family)
        if series is None:
            series = self._observations[family] = {}
        observations = series.get(values)
        if observations is None:
            observations = series[values] = []
        observations.append(value)

    def flush(self) -> None:
        """Write everything held to the store, one call per family, and hold nothing."""
        counts, gauges, observations = self._counts, self._gauges, self._observations
        self._counts, self._gauges, self._observations = {}, {}, {}
        for family, amounts in counts.items():
            self.store.inc_many(family.name, family.labels, amounts)
        for family, values in gauges.items():
            self.store.set_many(family.name, family.labels, values)
        for family, recorded in observations.items():
            self.store.observe_series(family.name, family.labels, recorded)
