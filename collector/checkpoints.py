"""Checkpoints: each partition's state saved with the Kafka offsets it reflects, restored on assignment.

Kafka delivers at least once; checkpoints make each event affect the state
once. After a batch the runner asks :meth:`Checkpointer.save_if_due`: when
``interval_seconds`` passed, or a window closed and ``min_interval_seconds``
passed (a save of a full label join store costs several windows' processing,
see docs/benchmarks.md), every owned partition's state
(its models' windows, references in use, label join store and early labels,
detector state and counters, see :meth:`Pipeline.snapshot_partition`; the
partition's rejection and limit counts, :mod:`collector.partition_counters`;
and, when given a :class:`WindowHistory`, its models' last windows) is
written with the next offset of its predictions and labels partitions, and
only once that is durable are the offsets committed. When a partition is
assigned (at start or in a rebalance), :meth:`Checkpointer.restore` loads its
snapshot into the pipeline and returns the offsets the consumer must seek to,
so whatever was processed after the snapshot is processed again from the
state it was first processed from. A snapshot that cannot be read (damaged,
another format version, or the store unreachable) is logged and counted, and
the partition starts afresh from the committed offsets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from collector.errors import StateStoreError
from collector.kafka_source import Partition
from collector.pipeline import Pipeline
from collector.state_codec import StateFormatError, pack, unpack
from collector.state_store import StateStore
from collector.window_history import WindowHistory
from exporters.store import MetricStore

log = logging.getLogger(__name__)

KIND = "partition"
UNREADABLE = (StateFormatError, StateStoreError, OSError, KeyError, TypeError, ValueError, AttributeError)
"""What reading a snapshot may raise: a damaged or foreign record, or a store that cannot be read now."""
METRIC = "driftline_state_snapshots_total"
OUTCOMES = ("saved", "save_failed", "restored", "unreadable")


class Checkpointer:
    """Saves and restores the per-partition state of one pipeline in a :class:`StateStore`."""

    def __init__(
        self,
        pipeline: Pipeline,
        store: StateStore,
        metrics: MetricStore,
        *,
        prefix: str,
        interval_seconds: float,
        min_interval_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        history: WindowHistory | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.store = store
        self.metrics = metrics
        self.prefix = prefix
        self.interval_seconds = interval_seconds
        self.min_interval_seconds = min_interval_seconds
        self.clock = clock
        self.history = history
        self._offsets: dict[int, dict[str, int]] = {}
        """Per owned partition number: topic -> the next offset the state reflects."""
        self._saved: dict[int, dict[str, int]] = {}
        """Offsets of each partition's last durable snapshot: one read nothing since is not saved again."""
        self._last_save = clock()
        self._windows_at_save = 0
        for outcome in OUTCOMES:
            metrics.inc(METRIC, {"outcome": outcome}, 0.0)

    @property
    def owned(self) -> frozenset[int]:
        return frozenset(self._offsets)

    def restore(self, partitions: list[Partition]) -> dict[Partition, int]:
        """Load the snapshots of newly assigned partition numbers; the offsets to seek to."""
        for number in sorted({p for _, p in partitions} - set(self._offsets)):
            self._offsets[number] = self._load(number)
        return {
            (topic, number): self._offsets[number][topic]
            for topic, number in partitions
            if topic in self._offsets[number]
        }

    def forget(self, partitions: list[Partition]) -> None:
        """Partitions taken away: their state leaves this collector (the new owner restores it)."""
        numbers = {p for _, p in partitions} & set(self._offsets)
        for number in numbers:
            del self._offsets[number]
            self._saved.pop(number, None)
        if numbers:
            if self.history is not None:
                self.history.drop(self.pipeline.models_of(numbers))
            self.pipeline.drop_partitions(numbers)

    def save_if_due(self, offsets: Mapping[str, Mapping[int, int]]) -> bool:
        """Save when the interval passed, or a window closed and the minimum interval passed.

        True when saved (the offsets may then be committed).
        """
        since = self.clock() - self._last_save
        closed = self._windows_closed() != self._windows_at_save
        if since < self.interval_seconds and not (closed and since >= self.min_interval_seconds):
            return False
        return self.save(offsets)

    def save(self, offsets: Mapping[str, Mapping[int, int]]) -> bool:
        """Snapshot the owned partitions read since their last snapshot, with ``offsets``.

        ``offsets`` holds the next offset per topic and partition. A partition
        nothing was read from since its last snapshot is not written again: only
        the wall-clock rules (closing by age, retiring) changed it, and they run
        again after a restart. True when every snapshot is durable (the offsets
        may then be committed); False, logged and counted when the store failed.
        """
        for topic, partitions in offsets.items():
            for number, offset in partitions.items():
                if number in self._offsets:
                    self._offsets[number][topic] = offset
        changed = [n for n in sorted(self._offsets) if self._saved.get(n) != self._offsets[n]]
        try:
            for number in changed:
                self.store.put(self._key(number), pack(KIND, self._body(number)))
                self._saved[number] = dict(self._offsets[number])
        except (OSError, StateStoreError) as exc:  # the collector goes on; the commit waits
            log.warning("saving the state failed; offsets are not committed until a save succeeds: %s", exc)
            self.metrics.inc(METRIC, {"outcome": "save_failed"})
            return False
        self._last_save = self.clock()
        self._windows_at_save = self._windows_closed()
        self.metrics.inc(METRIC, {"outcome": "saved"}, float(len(changed)))
        return True

    def _body(self, number: int) -> dict[str, Any]:
        """One partition's snapshot; keys beyond ``offsets`` and ``models`` are optional on restore."""
        body = {
            "offsets": self._offsets[number],
            "models": self.pipeline.snapshot_partition(number),
            "counters": self.pipeline.snapshot_counters(number),
        }
        if self.history is not None:
            body["history"] = self.history.export(self.pipeline.models_of({number}))
        return body

    def _load(self, number: int) -> dict[str, int]:
        key = self._key(number)
        models: list[str] = []
        try:
            raw = self.store.get(key)
            if raw is None:
                return {}
            body = unpack(KIND, raw)
            offsets = {str(topic): int(offset) for topic, offset in body["offsets"].items()}
            models = [str(model) for model in body["models"]]
            if self.history is not None and "history" in body:
                self.history.restore(body["history"])
            self.pipeline.restore_partition(number, body["models"], body.get("counters", ()))
        except UNREADABLE as exc:
            log.error("state of partition %d (%s) unreadable, starting it afresh: %s", number, key, exc)
            self.metrics.inc(METRIC, {"outcome": "unreadable"})
            if self.history is not None:
                self.history.drop(models)
            self.pipeline.drop_partitions({number})
            return {}
        log.info("restored partition %d: %d models, offsets %s", number, len(body["models"]), offsets)
        self._saved[number] = dict(offsets)
        self.metrics.inc(METRIC, {"outcome": "restored"})
        return offsets

    def _windows_closed(self) -> int:
        return sum(s.windows_evaluated + s.windows_skipped for s in self.pipeline.states.values())

    def _key(self, number: int) -> str:
        return f"{self.prefix}partition/{number}"
