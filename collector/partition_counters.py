"""Counters without a ``model`` label, kept per source partition so that checkpoints carry them.

``driftline_events_rejected_total{reason}`` and ``driftline_limit_exceeded_total{kind}``
count events, but a rejected event may name no model at all, so they cannot
follow a model's partition the way model series do. Each count is attributed
to the partition number its message came from (predictions and labels
partitions of one number are checkpointed together), kept in a tally per
partition, and written into that partition's snapshot. Restoring a snapshot
adds its tally back; a partition taken away takes its tally with it (the
exported counter goes down by it, and its new owner's goes up), so the sum
over the collectors of a group equals every event of every partition, exactly,
across restarts and moves. Counts made outside any message (no partition) stay
in the exported counter, per process.

>>> from exporters.store import MetricStore
>>> store = MetricStore()
>>> counters = PartitionCounters(store)
>>> counters.current = 3
>>> counters.inc("driftline_events_rejected_total", {"reason": "invalid_json"})
>>> saved = counters.export(3)
>>> counters.drop({3})
>>> store.get("driftline_events_rejected_total", {"reason": "invalid_json"})
0.0
>>> counters.restore(3, saved)
>>> store.get("driftline_events_rejected_total", {"reason": "invalid_json"})
1.0
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from exporters.store import MetricStore

PARTITION_METRICS = frozenset({"driftline_events_rejected_total", "driftline_limit_exceeded_total"})
"""The counters without a model label that count events of a partition (the rest are per process)."""

Tally = dict[tuple[str, tuple[str, ...]], float]


class PartitionCounters:
    """Increments :data:`PARTITION_METRICS` in a store and tallies them by source partition."""

    def __init__(self, store: MetricStore) -> None:
        self.store = store
        self.current: int | None = None
        """The partition of the message being processed (None: outside any message)."""
        self._tallies: dict[int, Tally] = {}

    def inc(self, name: str, labels: Mapping[str, str], amount: float = 1.0) -> None:
        """Count in the store, attributed to :attr:`current` (if any)."""
        if name not in PARTITION_METRICS:
            raise KeyError(f"{name} is not counted per partition")
        self.store.inc(name, labels, amount)
        if self.current is not None:
            tally = self._tallies.setdefault(self.current, {})
            key = (name, tuple(labels[label] for label in self.store.metrics[name].labels))
            tally[key] = tally.get(key, 0.0) + amount

    def export(self, partition: int) -> list[list[Any]]:
        """A partition's tally as plain data: ``[name, label values, count]`` items."""
        tally = self._tallies.get(partition, {})
        return [[name, list(values), count] for (name, values), count in tally.items()]

    def restore(self, partition: int, exported: Iterable[Sequence[Any]]) -> None:
        """Replace a partition's tally with an exported one and add it to the store.

        Items of a metric this version does not count per partition, or with
        another number of labels, are skipped (a snapshot of another version).
        """
        self.drop({partition})
        tally: Tally = {}
        for name, values, count in exported:
            metric = self.store.metrics.get(name)
            if name not in PARTITION_METRICS or metric is None or len(values) != len(metric.labels):
                continue
            key = (str(name), tuple(str(v) for v in values))
            tally[key] = tally.get(key, 0.0) + float(count)
        for (name, values), count in tally.items():
            self.store.inc(name, dict(zip(self.store.metrics[name].labels, values, strict=True)), count)
        if tally:
            self._tallies[partition] = tally

    def drop(self, partitions: Iterable[int]) -> None:
        """Partitions taken away: take their counts out of the store (their new owner adds them)."""
        for partition in partitions:
            for (name, values), count in self._tallies.pop(partition, {}).items():
                labels = dict(zip(self.store.metrics[name].labels, values, strict=True))
                self.store.discount(name, labels, count)
