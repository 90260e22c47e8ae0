"""The Kafka source on confluent-kafka (librdkafka): ``kafka.client: confluent``.

The same source as :class:`collector.kafka_source.KafkaSource`, on a client whose
consume loop costs about a microsecond per message instead of tens (see
docs/benchmarks.md): manual commits only (the runner commits after the batch is
processed and its snapshot durable), rebalance callbacks that hand partitions
to the checkpointer, readiness and consumer metrics in
:class:`~collector.consumer_health.ConsumerHealth`.

Co-partitioning: librdkafka's ``range`` assignor gives every member the same
partition numbers of each subscribed topic when the topics have the same
partition count, so a model's predictions and labels stay on one member.
``range`` is an eager protocol: every rebalance revokes every partition and
assigns anew. The source therefore holds a revocation until the assignment
that follows it: a partition assigned again goes on from where it was read
(its state stays), only the partitions that really moved reach ``on_revoke``
and only new ones ``on_assign`` and ``start_offsets``, as with the incremental
protocol of the kafka-python path. Partitions lost (this member was evicted)
are revoked at once.

librdkafka retries broker outages itself (``next_batch`` returns empty batches
meanwhile); only fatal errors raise :class:`~collector.errors.SourceError`.
Readiness reads the consumer group's state from librdkafka's statistics
(``statistics.interval.ms``, once a second, on the consumer's thread). A member
with no partition is reported ready as a standby: librdkafka does not tell the
group's size, and its member joins only with the topics' metadata (the
kafka-python problem the ``no_partitions`` reason guards against).

confluent-kafka's consumer is used from one thread, as kafka-python's is.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, KafkaException, Message, TopicPartition

from collector.consumer_health import Partition, sorted_partitions
from collector.errors import SourceError
from collector.group_member import GroupMember, OffsetsCallback, PartitionsCallback
from collector.sources import RawMessage
from exporters.store import MetricStore

logger = logging.getLogger(__name__)

STATISTICS_INTERVAL_MS = 1000
"""How often librdkafka reports the group's state (what readiness reads)."""


class ConfluentSource(GroupMember):
    """Reads the given topics as member ``group_id`` of a consumer group, with confluent-kafka.

    Args:
        bootstrap_servers: ``host:port[,host:port...]``.
        topics, group_id, store, on_revoke, on_assign, start_offsets, auto_offset_reset,
            max_poll_records, commit_stall_seconds: see :class:`~collector.group_member.GroupMember`.
        session_timeout_ms: how long the group waits for a silent member.
        options: any other librdkafka property (``security.protocol``, ...); overrides these.
    """

    def __init__(
        self,
        bootstrap_servers: str,
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
        commit_stall_seconds: float = 30.0,
        options: Mapping[str, Any] | None = None,
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
        self._started: dict[Partition, int] = {}
        """Where an assigned partition started (checkpoint), until a message of it is handed out."""
        self._revoking: set[Partition] = set()
        """Revoked by the eager protocol, kept until the next assignment says whether they moved."""
        self._group = {"connected": False, "joined": False}
        self._partition_counts: dict[str, int] = {}
        self._group_committed: dict[Partition, int] = {}
        """The group's committed offsets of owned partitions, from the statistics."""
        config: dict[str, Any] = {
            "bootstrap.servers": bootstrap_servers,
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": auto_offset_reset,
            "session.timeout.ms": session_timeout_ms,
            "heartbeat.interval.ms": max(100, session_timeout_ms // 4),
            "client.id": f"driftline-collector-{group_id}",
            "partition.assignment.strategy": "range",
            "reconnect.backoff.max.ms": 1000,
            "statistics.interval.ms": STATISTICS_INTERVAL_MS,
            "stats_cb": self._statistics,
            "error_cb": self._client_error,
            "logger": logging.getLogger(f"{__name__}.librdkafka"),
        }
        config.update(options or {})
        try:
            self._consumer = Consumer(config)
            self._load_topic_metadata()
            self._consumer.subscribe(
                self.topics, on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._lost
            )
        except (KafkaException, ValueError) as exc:
            raise SourceError(f"cannot start a Kafka consumer at {bootstrap_servers}: {exc}") from exc

    def _load_topic_metadata(self, timeout: float = 10.0) -> None:
        metadata = self._consumer.list_topics(timeout=timeout)
        for topic in self.topics:
            described = metadata.topics.get(topic)
            if described is not None and described.error is None:
                self._partition_counts[topic] = len(described.partitions)
        if len(set(self._partition_counts.values())) > 1:
            logger.warning(
                "topics %s have different partition counts %s: predictions and labels of one "
                "model may be read by different collectors",
                self.topics,
                self._partition_counts,
            )

    def next_batch(self, max_items: int, timeout: float) -> list[RawMessage]:
        """Up to ``max_items`` messages, waiting at most ``timeout`` seconds."""
        if self._closed:
            return []
        try:
            messages = self._consumer.consume(
                num_messages=max(1, min(max_items, self.max_poll_records)), timeout=max(0.0, timeout)
            )
        except KafkaException as exc:
            raise SourceError(f"kafka poll failed: {exc}") from exc
        now = time.time()
        owned = self.health.owned
        batch: list[RawMessage] = []
        for message in messages:
            if message.error() is not None:
                self._message_error(message)
                continue
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            if topic is None or partition is None or offset is None or (topic, partition) not in owned:
                continue  # fetched before its partition moved: its new owner reads it
            value = message.value()
            value = value if isinstance(value, bytes) else b""
            batch.append(RawMessage(value, topic, partition, offset, now))
            self._returned[(topic, partition)] = offset + 1
        self._observe_group()
        self._update_lag()
        return batch

    def partition_count(self, topic: str) -> int | None:
        """How many partitions ``topic`` had when the source started (None if unknown)."""
        return self._partition_counts.get(topic)

    def pause(self) -> None:
        """Stop fetching (the pipeline is behind); keep calling :meth:`next_batch` meanwhile."""
        self._paused = True
        self._consumer.pause(self._consumer.assignment())

    def resume(self) -> None:
        """Fetch again after :meth:`pause`."""
        self._paused = False
        self._consumer.resume(self._consumer.assignment())

    def close(self) -> None:
        """Retry a commit that failed, leave the group and close; safe twice.

        Messages handed out after the last :meth:`commit` are not committed.
        """
        if self._closed:
            return
        self._closed = True
        try:
            self._commit()
            self._consumer.close()
        except (KafkaException, RuntimeError) as exc:
            logger.warning("closing the kafka consumer failed: %s", exc)

    def _commit(self) -> None:
        pending = self._pending_commits()
        if not pending:
            return
        offsets = [TopicPartition(topic, number, offset) for (topic, number), offset in pending.items()]
        try:
            results = self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if isinstance(error, KafkaError) and error.fatal():
                raise SourceError(f"kafka commit failed: {error}") from exc
            self.health.commit_failed(exc)
            return
        failed = [tp for tp in results if tp.error is not None]
        if failed:
            went_through = {(tp.topic, tp.partition): tp.offset for tp in results if tp.error is None}
            self._committed.update(went_through)
            self.health.commit_failed(KafkaException(failed[0].error))
            return
        self._commit_succeeded(pending)

    def _message_error(self, message: Message) -> None:
        error = message.error()
        if error is None or error.code() == KafkaError._PARTITION_EOF:
            return
        if error.fatal():
            raise SourceError(f"kafka poll failed: {error}")
        logger.warning("kafka consumer error, retrying: %s", error)

    def _client_error(self, error: KafkaError) -> None:
        """librdkafka's errors outside any message (broker down, ...), from inside a poll."""
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            self._group["connected"] = False
        logger.warning("kafka client error: %s", error)

    def _statistics(self, document: str) -> None:
        """librdkafka's statistics (inside a poll): the consumer group's state, the committed offsets."""
        statistics = json.loads(document)
        group = statistics.get("cgrp", {})
        self._group["connected"] = group.get("state") == "up"
        if group.get("join_state") == "steady":
            self._group["joined"] = True
        for topic, described in statistics.get("topics", {}).items():
            for number, partition in described.get("partitions", {}).items():
                offset = partition.get("committed_offset", OFFSET_INVALID)
                if (topic, int(number)) in self.health.owned and offset >= 0:
                    self._group_committed[(topic, int(number))] = offset

    def _observe_group(self) -> None:
        count = sum(self._partition_counts.get(topic, 0) for topic in self.topics)
        self.health.observe(
            connected=self._group["connected"],
            joined=self._group["joined"],
            sole_member=False,
            partition_count=count,
        )

    def _update_lag(self) -> None:
        if self.health.store is None:
            return
        for partition in self.health.owned:
            low, high = self._consumer.get_watermark_offsets(TopicPartition(*partition), cached=True)
            position = self._returned.get(partition, self._started.get(partition))
            if position is None:  # nothing read yet: from the group's commit, or an empty partition
                position = self._group_committed.get(partition, high if low == high else None)
            if position is not None and high >= 0:
                self.health.set_lag(*partition, high - position)

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Eager revocation: held until the next assignment tells which partitions moved."""
        self._revoking |= {(tp.topic, tp.partition) for tp in partitions}

    def _lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """This member was evicted: its partitions may already be read by others."""
        lost = {(tp.topic, tp.partition) for tp in partitions}
        self._revoking -= lost
        self._give_up(sorted_partitions(list(lost)))

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        pairs = sorted_partitions([(tp.topic, tp.partition) for tp in partitions])
        self._group.update(joined=True, connected=True)  # an assignment comes from the coordinator
        moved = sorted_partitions(list(self._revoking - set(pairs)))
        kept = self._revoking & set(pairs)
        self._revoking = set()
        self._give_up(moved)
        new = [p for p in pairs if p not in kept and p not in self.health.owned]
        offsets = {p: self._position(p) for p in pairs if p not in new}
        if new:
            started = self._checkpoint_offsets(new)
            offsets.update(started)
            self._started.update(started)
        assignment = [TopicPartition(t, n, offsets.get((t, n), OFFSET_INVALID)) for t, n in pairs]
        consumer.assign(assignment)
        if self._paused and assignment:
            consumer.pause(assignment)
        self.health.owned = frozenset(pairs)
        if new and self.on_assign is not None:
            self.on_assign(new)

    def _position(self, partition: Partition) -> int:
        """Where a partition kept through a rebalance goes on (the committed offset if nothing was read)."""
        return self._returned.get(partition, self._started.get(partition, OFFSET_INVALID))

    def _give_up(self, partitions: list[Partition]) -> None:
        self._forget(partitions)
        for partition in partitions:
            self._started.pop(partition, None)
            self._group_committed.pop(partition, None)
