"""The Kafka source: a consumer group member that hands the pipeline batches of raw messages.

Delivery is at-least-once: offsets are committed by :meth:`KafkaSource.commit`,
which the runner calls after the pipeline processed a batch, so a crash or a
rebalance replays at most what was processed but not yet committed. When
partitions are revoked in a rebalance (or lost when this member was evicted),
``on_revoke`` is called inside ``next_batch`` so the pipeline can drop or hand
over the state of those partitions. The callback runs inside kafka-python's
event loop, so it must be quick and must not call back into the consumer; the
source does not commit there: the runner commits after every batch, before it
asks for the next one.

kafka-python's consumer is not thread-safe: use one source from one thread.
Broker restarts are retried inside kafka-python (``next_batch`` returns empty
batches meanwhile); only errors that retrying cannot cure raise
:class:`~collector.errors.SourceError`. What readiness needs (broker reachable,
commits going through, partitions held) is observed on that thread after each
poll and commit and read from any thread with :meth:`KafkaSource.not_ready_reason`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaConsumer
from kafka.errors import CommitFailedError, KafkaError, KafkaTimeoutError, RebalanceInProgressError
from kafka.structs import OffsetAndMetadata, TopicPartition

from collector.consumer_health import (
    COMMIT_FAILURES_METRIC,
    CONNECTED_METRIC,
    LAG_METRIC,
    Partition,
    sorted_partitions,
)
from collector.copartitioned_assignor import CopartitionedAssignor
from collector.errors import SourceError
from collector.group_member import GroupMember, OffsetsCallback, PartitionsCallback
from collector.kafka_coordinator import complete_pending_joins
from collector.sources import RawMessage
from exporters.store import MetricStore

logger = logging.getLogger(__name__)

__all__ = [
    "COMMIT_FAILURES_METRIC",
    "CONNECTED_METRIC",
    "LAG_METRIC",
    "KafkaSource",
    "OffsetsCallback",
    "Partition",
    "PartitionsCallback",
]


class KafkaSource(GroupMember):
    """Reads the given topics as member ``group_id`` of a consumer group.

    Args:
        bootstrap_servers: ``host:port[,host:port...]``.
        topics, group_id, store, on_revoke, on_assign, start_offsets, auto_offset_reset,
            max_poll_records, commit_stall_seconds: see :class:`~collector.group_member.GroupMember`.
        session_timeout_ms: how long the group waits for a silent member before
            moving its partitions (a killed collector's partitions move after this).
        commit_timeout_ms: the longest one commit may wait for the coordinator.
        **consumer_options: any other ``kafka.KafkaConsumer`` option; overrides these.
    """

    def __init__(
        self,
        bootstrap_servers: str | list[str],
        topics: Sequence[str],
        group_id: str,
        *,
        store: MetricStore | None = None,
        on_revoke: PartitionsCallback | None = None,
        on_assign: PartitionsCallback | None = None,
        start_offsets: OffsetsCallback | None = None,
        auto_offset_reset: str = "earliest",
        max_poll_records: int = 2000,
        session_timeout_ms: int = 10_000,
        commit_timeout_ms: int = 5_000,
        commit_stall_seconds: float = 30.0,
        **consumer_options: Any,
    ) -> None:
        super().__init__(
            topics,
            group_id,
            store=store,
            on_revoke=on_revoke,
            on_assign=on_assign,
            start_offsets=start_offsets,
            auto_offset_reset=auto_offset_reset,
            max_poll_records=max_poll_records,
            commit_stall_seconds=commit_stall_seconds,
        )
        self.commit_timeout_ms = commit_timeout_ms
        options: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers,
            "group_id": group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": auto_offset_reset,
            "max_poll_records": max_poll_records,
            "session_timeout_ms": session_timeout_ms,
            "heartbeat_interval_ms": max(100, session_timeout_ms // 4),
            "client_id": f"driftline-collector-{group_id}",
            # kafka-python backs reconnects off up to 30 s; after a broker outage the
            # broker would drop this member (session timeout) before it reconnects,
            # and its partitions with their state would be revoked. 1 s is the Java
            # client's default.
            "reconnect_backoff_max_ms": 1000,
            # Incremental rebalancing: only partitions that really move are revoked,
            # so a member keeps the state of the partitions it keeps; a model's
            # predictions and labels partitions stay on one member.
            "partition_assignment_strategy": (CopartitionedAssignor,),
        }
        options.update(consumer_options)
        try:
            self._consumer = KafkaConsumer(**options)
            self._coordinator = complete_pending_joins(self._consumer)
            self._load_topic_metadata()
            self._consumer.subscribe(self.topics, listener=_Listener(self))
        except KafkaError as exc:
            raise SourceError(
                f"cannot start a Kafka consumer at {bootstrap_servers}: {exc}"
            ) from exc

    def _load_topic_metadata(self) -> None:
        """Fetch the cluster's topic metadata before the first group join.

        A member that joins while its metadata lacks the subscribed topics is
        assigned no partitions, and kafka-python may not rejoin when the metadata
        arrives (dpkp/kafka-python#2377): the demo, on topics created a moment
        before, once read nothing for a whole run.
        """
        self._consumer.topics()

    def next_batch(self, max_items: int, timeout: float) -> list[RawMessage]:
        """Up to ``max_items`` messages, waiting at most ``timeout`` seconds."""
        if self._closed:
            return []
        try:
            records = self._consumer.poll(
                timeout_ms=max(0, int(timeout * 1000)),
                max_records=max(1, min(max_items, self.max_poll_records)),
            )
        except KafkaError as exc:
            self._observe_group()
            if getattr(exc, "retriable", False):
                logger.warning("kafka poll failed, retrying: %s", exc)
                return []
            raise SourceError(f"kafka poll failed: {exc}") from exc
        self._observe_group()
        now = time.time()
        batch: list[RawMessage] = []
        for tp, messages in records.items():
            for record in messages:
                value = record.value if record.value is not None else b""
                batch.append(RawMessage(value, tp.topic, tp.partition, record.offset, now))
            if messages:
                self._returned[tp] = messages[-1].offset + 1
        self._update_lag()
        return batch

    def partition_count(self, topic: str) -> int | None:
        """How many partitions ``topic`` has, from the metadata already fetched (None if unknown)."""
        partitions = self._consumer.partitions_for_topic(topic)
        return len(partitions) if partitions else None

    def pause(self) -> None:
        """Stop fetching (the pipeline is behind); the group membership stays alive.

        Keep calling :meth:`next_batch` while paused: it returns nothing but keeps
        the member in the group. New partitions assigned while paused start paused.
        """
        self._paused = True
        self._consumer.pause(*self._consumer.assignment())

    def resume(self) -> None:
        """Fetch again after :meth:`pause`."""
        self._paused = False
        self._consumer.resume(*self._consumer.paused())

    def close(self) -> None:
        """Retry a commit that failed, leave the group and close; safe twice.

        Messages handed out after the last :meth:`commit` are not committed: a
        batch the pipeline did not finish (it was cut short by an error) is
        delivered again to whoever reads the partition next.
        """
        if self._closed:
            return
        self._closed = True
        try:
            self._commit()
            self._consumer.close(autocommit=False, timeout_ms=self.commit_timeout_ms)
        except KafkaError as exc:
            logger.warning("closing the kafka consumer failed: %s", exc)

    def _commit(self) -> None:
        pending = self._pending_commits()
        if not pending:
            return
        offsets = {TopicPartition(*p): OffsetAndMetadata(offset, "", -1) for p, offset in pending.items()}
        try:
            self._consumer.commit(offsets=offsets, timeout_ms=self.commit_timeout_ms)
        except (CommitFailedError, KafkaTimeoutError, RebalanceInProgressError) as exc:
            # RebalanceInProgressError is not marked retriable by kafka-python, but the
            # commit only has to wait for the rebalance (as the Java client treats it).
            self.health.commit_failed(exc)
            return
        except KafkaError as exc:
            if getattr(exc, "retriable", False):
                self.health.commit_failed(exc)
                return
            raise SourceError(f"kafka commit failed: {exc}") from exc
        self._commit_succeeded(pending)

    def _observe_group(self) -> None:
        """Record what readiness reads; on the consumer's thread, right after a poll."""
        self.health.observe(
            connected=self._coordinator.reachable(),
            joined=self._coordinator.joined(),
            sole_member=self._coordinator.sole_member(),
            partition_count=self._coordinator.partition_count(self.topics),
        )

    def _update_lag(self) -> None:
        if self.store is None:
            return
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)
            position = self._returned.get(tp)
            if highwater is None:
                continue
            if position is None:
                position = self._position(tp)
                if position is None:
                    continue
            self.health.set_lag(tp.topic, tp.partition, highwater - position)

    def _position(self, tp: TopicPartition) -> int | None:
        try:
            position = self._consumer.position(tp, timeout_ms=0)
        except KafkaError:
            return None
        return int(position) if position is not None else None

    def _revoked(self, partitions: Iterable[TopicPartition]) -> None:
        self._forget(sorted_partitions([(tp.topic, tp.partition) for tp in partitions]))

    def _assigned(self, partitions: Iterable[TopicPartition]) -> None:
        pairs = sorted_partitions([(tp.topic, tp.partition) for tp in partitions])
        if not pairs:
            return
        self.health.owned = self.health.owned | set(pairs)
        if self._paused:
            self._consumer.pause(*(TopicPartition(*p) for p in pairs))
        for partition, offset in self._checkpoint_offsets(pairs).items():
            self._consumer.seek(TopicPartition(*partition), offset)
        if self.on_assign is not None:
            self.on_assign(pairs)


class _Listener(ConsumerRebalanceListener):
    """Forwards kafka-python's rebalance callbacks to the source (same thread, inside poll)."""

    def __init__(self, source: KafkaSource) -> None:
        self.source = source

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self.source._revoked(revoked)

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.source._assigned(assigned)

    def on_partitions_lost(self, lost: Iterable[TopicPartition]) -> None:
        self.source._revoked(lost)
