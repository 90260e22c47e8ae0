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
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaConsumer
from kafka.errors import CommitFailedError, KafkaError, KafkaTimeoutError, RebalanceInProgressError
from kafka.structs import OffsetAndMetadata, TopicPartition

from collector.copartitioned_assignor import CopartitionedAssignor
from collector.errors import SourceError
from collector.kafka_coordinator import complete_pending_joins
from collector.sources import RawMessage
from exporters.store import MetricStore

logger = logging.getLogger(__name__)

Partition = tuple[str, int]
PartitionsCallback = Callable[[list[Partition]], None]
OffsetsCallback = Callable[[list[Partition]], Mapping[Partition, int]]

LAG_METRIC = "driftline_consumer_lag"
COMMIT_FAILURES_METRIC = "driftline_commit_failures_total"
CONNECTED_METRIC = "driftline_source_connected"


class KafkaSource:
    """Reads the given topics as member ``group_id`` of a consumer group.

    Args:
        bootstrap_servers: ``host:port[,host:port...]``.
        topics: the topics to subscribe to (predictions and labels).
        group_id: the consumer group; collectors sharing it split the partitions.
        store: where ``driftline_consumer_lag{topic,partition}`` is written (optional).
        on_revoke: called with the ``(topic, partition)`` pairs taken away in a rebalance.
        on_assign: called with the pairs newly assigned.
        start_offsets: called with the pairs newly assigned; returns where to start
            reading some of them (the offsets their checkpointed state reflects),
            instead of the group's committed offsets.
        auto_offset_reset: where a group without committed offsets starts.
        max_poll_records: the most records one ``next_batch`` returns.
        session_timeout_ms: how long the group waits for a silent member before
            moving its partitions (a killed collector's partitions move after this).
        commit_timeout_ms: the longest one commit may wait for the coordinator.
        commit_stall_seconds: commits failing for longer than this make the source not ready.
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
        if not topics:
            raise ValueError("topics must name at least one topic, got none")
        if max_poll_records < 1:
            raise ValueError(f"max_poll_records must be >= 1, got {max_poll_records}")
        if commit_stall_seconds <= 0:
            raise ValueError(f"commit_stall_seconds must be > 0, got {commit_stall_seconds}")
        if auto_offset_reset not in {"earliest", "latest"}:
            raise ValueError(
                f"auto_offset_reset must be earliest or latest, got {auto_offset_reset!r}"
            )
        self.topics = list(topics)
        self.group_id = group_id
        self.store = store
        self.on_revoke = on_revoke
        self.on_assign = on_assign
        self.start_offsets = start_offsets
        self.max_poll_records = max_poll_records
        self.commit_timeout_ms = commit_timeout_ms
        self._returned: dict[TopicPartition, int] = {}
        """Next offset after the last message handed out, per partition."""
        self._processed: dict[TopicPartition, int] = {}
        """What :meth:`commit` was asked to commit: messages the pipeline finished (or dead-lettered)."""
        self._committed: dict[TopicPartition, int] = {}
        self._owned: frozenset[Partition] = frozenset()
        """Kept by the rebalance callbacks, so other threads (readiness) may read it."""
        self._paused = False
        self._closed = False
        self.commit_stall_seconds = commit_stall_seconds
        self._commit_failing_since: float | None = None
        """Monotonic time of the first failed commit since the last one that went through."""
        self._connected = False
        self._joined = False
        """A group join completed at least once (a member before that is not ready)."""
        self._sole_member = False
        self._partition_count = 0
        if store is not None:
            store.inc(COMMIT_FAILURES_METRIC, {}, 0.0)
            store.set(CONNECTED_METRIC, {}, 0.0)
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

    def commit(self) -> None:
        """Commit every message handed out so far (call it after the pipeline processed them).

        A commit that fails because of a rebalance or an unreachable coordinator is
        logged and retried with the next commit (or at :meth:`close`): those messages
        may be delivered again (at-least-once), never lost.
        """
        self._processed.update(self._returned)
        self._commit(self._processed)

    def snapshot(self) -> dict[str, dict[int, int]]:
        """The next offset to read, per topic and partition, as handed out so far."""
        result: dict[str, dict[int, int]] = {}
        for tp, offset in self._returned.items():
            result.setdefault(tp.topic, {})[tp.partition] = offset
        return result

    @property
    def exhausted(self) -> bool:
        return False

    def not_ready_reason(self) -> str | None:
        """Why this member is not ready, as ``reason: explanation``; None when ready (any thread).

        Reasons: ``not_joined`` (no group join completed yet), ``kafka_unreachable``
        (the group coordinator cannot be reached), ``commits_failing`` (for longer
        than ``commit_stall_seconds``), ``no_partitions`` (none assigned while the
        topics have some and this is the group's only member; a member whose
        partitions are all held by others is a ready standby).
        """
        if not self._joined:
            return f"not_joined: not yet a member of consumer group {self.group_id}"
        if not self._connected:
            return "kafka_unreachable: the consumer group's coordinator cannot be reached"
        since = self._commit_failing_since
        if since is not None and time.monotonic() - since > self.commit_stall_seconds:
            return (
                f"commits_failing: offset commits have failed for {time.monotonic() - since:.0f} s "
                f"(more than {self.commit_stall_seconds:g} s)"
            )
        if not self._owned and self._partition_count > 0 and self._sole_member:
            return (
                f"no_partitions: none of the {self._partition_count} partitions of "
                f"{', '.join(self.topics)} is assigned, and this is the group's only member"
            )
        return None

    def assignment(self) -> frozenset[Partition]:
        """The ``(topic, partition)`` pairs this member owns now (safe from any thread)."""
        return self._owned

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

    @property
    def paused(self) -> bool:
        return self._paused

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
            self._commit(self._processed)
            self._consumer.close(autocommit=False, timeout_ms=self.commit_timeout_ms)
        except KafkaError as exc:
            logger.warning("closing the kafka consumer failed: %s", exc)

    def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        pending = {
            tp: OffsetAndMetadata(offset, "", -1)
            for tp, offset in offsets.items()
            if self._committed.get(tp) != offset
        }
        if not pending:
            return
        try:
            self._consumer.commit(offsets=pending, timeout_ms=self.commit_timeout_ms)
        except (CommitFailedError, KafkaTimeoutError, RebalanceInProgressError) as exc:
            # RebalanceInProgressError is not marked retriable by kafka-python, but the
            # commit only has to wait for the rebalance (as the Java client treats it).
            self._commit_failed(exc)
            return
        except KafkaError as exc:
            if getattr(exc, "retriable", False):
                self._commit_failed(exc)
                return
            raise SourceError(f"kafka commit failed: {exc}") from exc
        self._committed.update({tp: meta.offset for tp, meta in pending.items()})
        self._commit_failing_since = None

    def _commit_failed(self, exc: KafkaError) -> None:
        logger.warning("kafka commit failed (will retry with the next batch): %s", exc)
        if self._commit_failing_since is None:
            self._commit_failing_since = time.monotonic()
        if self.store is not None:
            self.store.inc(COMMIT_FAILURES_METRIC, {})

    def _observe_group(self) -> None:
        """Record what readiness reads; on the consumer's thread, right after a poll."""
        connected = self._coordinator.reachable()
        if connected != self._connected and self._joined:
            if connected:
                logger.warning("kafka group coordinator reachable again")
            else:
                logger.warning("kafka group coordinator lost: the broker is unreachable")
        self._connected = connected
        self._joined = self._joined or self._coordinator.joined()
        self._sole_member = self._coordinator.sole_member()
        self._partition_count = self._coordinator.partition_count(self.topics)
        if self.store is not None:
            self.store.set(CONNECTED_METRIC, {}, 1.0 if connected else 0.0)

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
            self.store.set(LAG_METRIC, _lag_labels(tp), max(0, highwater - position))

    def _position(self, tp: TopicPartition) -> int | None:
        try:
            position = self._consumer.position(tp, timeout_ms=0)
        except KafkaError:
            return None
        return int(position) if position is not None else None

    def _revoked(self, partitions: Iterable[TopicPartition]) -> None:
        revoked = sorted(set(partitions), key=lambda tp: (tp.topic, tp.partition))
        if not revoked:
            return
        logger.info("kafka partitions revoked: %s", _names(revoked))
        self._owned = self._owned - {(tp.topic, tp.partition) for tp in revoked}
        if self.on_revoke is not None:
            self.on_revoke([(tp.topic, tp.partition) for tp in revoked])
        for tp in revoked:
            self._returned.pop(tp, None)
            self._processed.pop(tp, None)
            self._committed.pop(tp, None)
            if self.store is not None:
                self.store.remove(LAG_METRIC, _lag_labels(tp))

    def _assigned(self, partitions: Iterable[TopicPartition]) -> None:
        assigned = sorted(set(partitions), key=lambda tp: (tp.topic, tp.partition))
        if not assigned:
            return
        logger.info("kafka partitions assigned: %s", _names(assigned))
        self._owned = self._owned | {(tp.topic, tp.partition) for tp in assigned}
        if self._paused:
            self._consumer.pause(*assigned)
        pairs = [(tp.topic, tp.partition) for tp in assigned]
        if self.start_offsets is not None:
            for (topic, partition), offset in self.start_offsets(pairs).items():
                logger.info("kafka %s[%d]: starting at offset %d (checkpoint)", topic, partition, offset)
                self._consumer.seek(TopicPartition(topic, partition), offset)
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


def _lag_labels(tp: TopicPartition) -> dict[str, str]:
    return {"topic": tp.topic, "partition": str(tp.partition)}


def _names(partitions: Sequence[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions)
