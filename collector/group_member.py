"""What the two Kafka sources share: offsets handed out, processed and committed, and partition hand-over.

:class:`GroupMember` is the base of :class:`collector.kafka_source.KafkaSource`
(kafka-python) and :class:`collector.confluent_source.ConfluentSource`
(confluent-kafka). Each client polls, commits and reacts to rebalances in its
own way; this class keeps what must be the same whatever the client: the
next offset per partition of what was handed out (what a checkpoint saves),
what :meth:`commit` marks processed, which offsets are committed, how a
partition taken away is forgotten (``on_revoke``, its lag series removed) and
how a new one starts (``start_offsets``: at its checkpoint). Readiness and the
consumer metrics are in :class:`~collector.consumer_health.ConsumerHealth`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

from collector.consumer_health import ConsumerHealth, Partition, partition_names
from exporters.store import MetricStore

logger = logging.getLogger(__name__)

PartitionsCallback = Callable[[list[Partition]], None]
OffsetsCallback = Callable[[list[Partition]], Mapping[Partition, int]]


class GroupMember:
    """The client-independent half of a Kafka source (see the module docstring).

    Args:
        topics: the topics to subscribe to (predictions and labels).
        group_id: the consumer group; collectors sharing it split the partitions.
        store: where the consumer metrics are written (optional).
        on_revoke: called with the ``(topic, partition)`` pairs taken away in a rebalance.
        on_assign: called with the pairs newly assigned.
        start_offsets: called with the pairs newly assigned; returns where to start
            reading some of them (the offsets their checkpointed state reflects),
            instead of the group's committed offsets.
        auto_offset_reset: where a group without committed offsets starts.
        max_poll_records: the most records one ``next_batch`` returns.
        commit_stall_seconds: commits failing for longer than this make the source not ready.
    """

    def __init__(
        self,
        topics: Sequence[str],
        group_id: str,
        *,
        store: MetricStore | None,
        on_revoke: PartitionsCallback | None,
        on_assign: PartitionsCallback | None,
        start_offsets: OffsetsCallback | None,
        auto_offset_reset: str,
        max_poll_records: int,
        commit_stall_seconds: float,
    ) -> None:
        if not topics:
            raise ValueError("topics must name at least one topic, got none")
        if max_poll_records < 1:
            raise ValueError(f"max_poll_records must be >= 1, got {max_poll_records}")
        if auto_offset_reset not in {"earliest", "latest"}:
            raise ValueError(f"auto_offset_reset must be earliest or latest, got {auto_offset_reset!r}")
        self.topics = list(dict.fromkeys(topics))
        """Each once: predictions and labels may share a topic (librdkafka refuses a topic twice)."""
        self.group_id = group_id
        self.store = store
        self.on_revoke = on_revoke
        self.on_assign = on_assign
        self.start_offsets = start_offsets
        self.max_poll_records = max_poll_records
        self.health = ConsumerHealth(group_id, topics, store, commit_stall_seconds=commit_stall_seconds)
        self._returned: dict[Partition, int] = {}
        """Next offset after the last message handed out, per partition."""
        self._processed: dict[Partition, int] = {}
        """What :meth:`commit` was asked to commit: messages the pipeline finished (or dead-lettered)."""
        self._committed: dict[Partition, int] = {}
        self._paused = False
        self._closed = False

    def commit(self) -> None:
        """Commit every message handed out so far (call it after the pipeline processed them).

        A commit that fails because of a rebalance or an unreachable coordinator is
        logged and retried with the next commit (or at ``close``): those messages
        may be delivered again (at-least-once), never lost.
        """
        self._processed.update(self._returned)
        self._commit()

    def _commit(self) -> None:
        """Commit :meth:`_pending_commits` with the client (each source has its own)."""
        raise NotImplementedError

    def _pending_commits(self) -> dict[Partition, int]:
        """Processed offsets not committed yet."""
        return {p: offset for p, offset in self._processed.items() if self._committed.get(p) != offset}

    def _commit_succeeded(self, offsets: Mapping[Partition, int]) -> None:
        self._committed.update(offsets)
        self.health.commit_succeeded()

    def snapshot(self) -> dict[str, dict[int, int]]:
        """The next offset to read, per topic and partition, as handed out so far."""
        result: dict[str, dict[int, int]] = {}
        for (topic, partition), offset in self._returned.items():
            result.setdefault(topic, {})[partition] = offset
        return result

    @property
    def exhausted(self) -> bool:
        return False

    def not_ready_reason(self) -> str | None:
        """Why this member is not ready; None when ready (any thread, see :class:`ConsumerHealth`)."""
        return self.health.not_ready_reason()

    def assignment(self) -> frozenset[Partition]:
        """The ``(topic, partition)`` pairs this member owns now (safe from any thread)."""
        return self.health.owned

    @property
    def paused(self) -> bool:
        return self._paused

    def _forget(self, partitions: list[Partition]) -> None:
        """Partitions taken away (sorted, distinct): ``on_revoke``, then their offsets and lag go."""
        if not partitions:
            return
        logger.info("kafka partitions revoked: %s", partition_names(partitions))
        self.health.owned = self.health.owned - set(partitions)
        if self.on_revoke is not None:
            self.on_revoke(partitions)
        for partition in partitions:
            for offsets in (self._returned, self._processed, self._committed):
                offsets.pop(partition, None)
            self.health.remove_lag(*partition)

    def _checkpoint_offsets(self, partitions: list[Partition]) -> Mapping[Partition, int]:
        """Where newly assigned partitions start: their checkpoints' offsets (``start_offsets``)."""
        logger.info("kafka partitions assigned: %s", partition_names(partitions))
        if self.start_offsets is None:
            return {}
        offsets = self.start_offsets(partitions)
        for (topic, number), offset in offsets.items():
            logger.info("kafka %s[%d]: starting at offset %d (checkpoint)", topic, number, offset)
        return offsets
