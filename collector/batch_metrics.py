"""A batch's metric writes, summed per series and written to the store once, at the batch's end.

Writing to the :class:`~exporters.store.MetricStore` per event builds and checks
a label key and takes the store's lock four to six times per prediction. The
pipeline instead names each series by its label values (in the order its
:class:`Family` declares), adds here, and flushes once per batch: one store
call per distinct series. The store checks the label names then, so a family
that does not match the catalog fails on the first flush, not silently.

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

    def labelled(self, values: LabelValues) -> dict[str, str]:
        return dict(zip(self.labels, values, strict=True))


class BatchMetrics:
    """Counter sums, last gauge values and histogram observations per series, until :meth:`flush`."""

    def __init__(self, store: MetricStore) -> None:
        self.store = store
        self._counts: dict[tuple[Family, LabelValues], float] = {}
        self._gauges: dict[tuple[Family, LabelValues], float] = {}
        self._observations: dict[tuple[Family, LabelValues], list[float]] = {}

    def inc(self, family: Family, values: LabelValues, amount: float = 1.0) -> None:
        key = (family, values)
        self._counts[key] = self._counts.get(key, 0.0) + amount

    def set(self, family: Family, values: LabelValues, value: float) -> None:
        self._gauges[(family, values)] = value

    def observe(self, family: Family, values: LabelValues, value: float) -> None:
        observations = self._observations.get((family, values))
        if observations is None:
            observations = self._observations[(family, values)] = []
        observations.append(value)

    def flush(self) -> None:
        """Write everything held to the store, and hold nothing."""
        counts, gauges, observations = self._counts, self._gauges, self._observations
        self._counts, self._gauges, self._observations = {}, {}, {}
        for (family, values), amount in counts.items():
            self.store.inc(family.name, family.labelled(values), amount)
        for (family, values), value in gauges.items():
            self.store.set(family.name, family.labelled(values), value)
        for (family, values), recorded in observations.items():
            self.store.observe_many(family.name, family.labelled(values), recorded)
