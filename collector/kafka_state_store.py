"""The Kafka state store: checkpoints in a compacted topic, so a partition's state follows it.

With several collectors in one group, a partition that moves in a rebalance
(or away from a killed collector) must find its state where its new owner
can read it. Each value is written as chunks (a checkpoint may be larger
than a Kafka message) under keys ``<key>#<version>#<i>``, then a manifest
under ``<key>`` naming the version, the chunk count and the SHA-256 of the
whole value; then the previous version's chunks are deleted (tombstones).
A reader only ever assembles the version its manifest names, so a collector
killed while writing leaves the previous value readable. The topic is
created with ``cleanup.policy=compact`` and one partition, so the newest
manifest of every key is kept and read in order after its chunks; it is
replicated (:func:`replication_factor`) with ``min.insync.replicas`` such that
an acknowledged snapshot survives the loss of a broker when there are three.

:meth:`KafkaStateStore.get` first reads the topic up to its current end, so
it sees what other collectors wrote up to the moment it is asked (a
partition's new owner asks on assignment, after the old owner stopped
writing).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
import uuid
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.structs import TopicPartition

from collector.errors import StateStoreError
from collector.state_codec import StateFormatError, pack, unpack

log = logging.getLogger(__name__)

MANIFEST = "state_manifest"
CHUNK_BYTES = 512 * 1024
"""Under the broker's default message.max.bytes (1 MB), with room for the key."""


class KafkaStateStore:
    """Durable bytes by key in a compacted topic (see the module docstring)."""

    def __init__(
        self,
        bootstrap_servers: str | list[str],
        topic: str = "driftline.state",
        *,
        chunk_bytes: int = CHUNK_BYTES,
        timeout_seconds: float = 30.0,
        replication_factor: int | None = None,
        **client_options: Any,
    ) -> None:
        if chunk_bytes < 1:
            raise ValueError(f"chunk_bytes must be >= 1, got {chunk_bytes}")
        self.topic = topic
        self.chunk_bytes = chunk_bytes
        self.timeout_seconds = timeout_seconds
        self._records: dict[str, bytes] = {}
        """The topic as read so far: the newest value of every key (tombstones remove)."""
        try:
            ensure_compacted_topic(
                bootstrap_servers, topic, timeout_seconds, replication_factor, **client_options
            )
            self._producer = KafkaProducer(
                bootstrap_servers=bootstrap_servers,
                acks="all",
                max_request_size=chunk_bytes + 64 * 1024,
                **client_options,
            )
            self._consumer = KafkaConsumer(
                bootstrap_servers=bootstrap_servers, enable_auto_commit=False, group_id=None, **client_options
            )
        except KafkaError as exc:
            raise StateStoreError(f"cannot open state topic {topic} at {bootstrap_servers}: {exc}") from exc
        self._partition = TopicPartition(topic, 0)
        self._consumer.assign([self._partition])
        self._consumer.seek_to_beginning(self._partition)

    def __repr__(self) -> str:
        return f"KafkaStateStore(topic={self.topic!r})"

    def get(self, key: str) -> bytes | None:
        """The newest complete value of ``key`` in the topic, or None.

        Raises :class:`~collector.state_codec.StateFormatError` when the manifest or
        a chunk is missing or damaged, :class:`StateStoreError` when the topic cannot be read.
        """
        self._catch_up()
        raw = self._records.get(key)
        if raw is None:
            return None
        manifest = unpack(MANIFEST, raw)
        version = manifest["version"]
        chunks = [self._records.get(_chunk_key(key, version, i)) for i in range(manifest["chunks"])]
        if any(chunk is None for chunk in chunks):
            raise StateFormatError(f"state {key!r}: chunks of version {version} are missing")
        value = b"".join(chunk for chunk in chunks if chunk is not None)
        if hashlib.sha256(value).hexdigest() != manifest["sha256"]:
            raise StateFormatError(f"state {key!r}: the chunks do not match their manifest")
        return value

    def put(self, key: str, value: bytes) -> None:
        """Write ``value`` in chunks, then its manifest; durable (acknowledged by every replica) on return."""
        self._catch_up()
        previous = self._manifest_of(key)
        version = uuid.uuid4().hex
        pieces = [value[i : i + self.chunk_bytes] for i in range(0, len(value), self.chunk_bytes)] or [b""]
        writes: list[tuple[str, bytes | None]] = [
            (_chunk_key(key, version, i), piece) for i, piece in enumerate(pieces)
        ]
        manifest = {"version": version, "chunks": len(pieces), "sha256": hashlib.sha256(value).hexdigest()}
        writes.append((key, pack(MANIFEST, manifest)))
        if previous is not None:
            writes += [(_chunk_key(key, previous["version"], i), None) for i in range(previous["chunks"])]
        self._send(writes)
        for record_key, record_value in writes:
            self._apply(record_key, record_value)

    def close(self) -> None:
        with contextlib.suppress(KafkaError):
            self._producer.close(timeout=self.timeout_seconds)
            self._consumer.close()

    def _manifest_of(self, key: str) -> dict[str, Any] | None:
        raw = self._records.get(key)
        if raw is None:
            return None
        try:
            return unpack(MANIFEST, raw)
        except StateFormatError:
            return None

    def _send(self, writes: list[tuple[str, bytes | None]]) -> None:
        try:
            futures = [
                self._producer.send(self.topic, key=k.encode(), value=v, partition=0) for k, v in writes
            ]
            self._producer.flush(timeout=self.timeout_seconds)
            for future in futures:
                future.get(timeout=self.timeout_seconds)
        except KafkaError as exc:
            raise StateStoreError(f"writing to the state topic {self.topic} failed: {exc}") from exc

    def _catch_up(self) -> None:
        """Read the topic up to its end as of now."""
        deadline = time.monotonic() + self.timeout_seconds
        try:
            end = self._consumer.end_offsets([self._partition])[self._partition]
            while self._consumer.position(self._partition) < end:
                if time.monotonic() > deadline:
                    raise StateStoreError(f"reading the state topic {self.topic} timed out")
                for records in self._consumer.poll(timeout_ms=200).values():
                    for record in records:
                        if record.key is not None:  # not written by a state store
                            self._apply(record.key.decode("utf-8", "replace"), record.value)
        except KafkaError as exc:
            raise StateStoreError(f"reading the state topic {self.topic} failed: {exc}") from exc

    def _apply(self, key: str, value: bytes | None) -> None:
        if value is None:
            self._records.pop(key, None)
        else:
            self._records[key] = value


def replication_factor(configured: int | None, brokers: int) -> int:
    """The state topic's replication factor: ``state.replication_factor``, else min(3, brokers).

    >>> replication_factor(None, 1), replication_factor(None, 5), replication_factor(2, 5)
    (1, 3, 2)
    """
    if configured is None:
        return max(1, min(3, brokers))
    if configured > brokers:
        raise StateStoreError(
            f"state.replication_factor is {configured}, but the cluster has {brokers} broker(s); "
            "lower it, or leave it unset for min(3, brokers)"
        )
    return configured


def min_insync_replicas(factor: int) -> int:
    """2 from three replicas up (a write survives one broker's loss, one broker may be down), else 1."""
    return 2 if factor >= 3 else 1


def ensure_compacted_topic(
    bootstrap_servers: str | list[str],
    topic: str,
    timeout_seconds: float,
    configured_replication: int | None = None,
    **client_options: Any,
) -> None:
    """Create ``topic`` compacted, with one partition and replicated, unless it exists.

    An existing topic is left as it is; with fewer replicas than configured, a warning says so.
    """
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout_seconds * 1000), **client_options
    )
    try:
        if topic in set(admin.list_topics()):
            _warn_if_under_replicated(admin, topic, configured_replication)
            return
        brokers = [b for b in admin.describe_cluster()["brokers"] if not b.get("is_fenced")]
        factor = replication_factor(configured_replication, len(brokers))
        configs = {"cleanup.policy": "compact", "min.insync.replicas": str(min_insync_replicas(factor))}
        new = NewTopic(topic, 1, factor, topic_configs=configs)
        with contextlib.suppress(TopicAlreadyExistsError):  # another collector was faster
            admin.create_topics([new], timeout_ms=int(timeout_seconds * 1000))
        log.info("created the state topic %s: compacted, replication factor %d, %s", topic, factor, configs)
    finally:
        admin.close()


def _warn_if_under_replicated(admin: KafkaAdminClient, topic: str, configured: int | None) -> None:
    if configured is None:
        return
    for described in admin.describe_topics([topic]):
        for partition in described.get("partitions", []):
            replicas = len(partition.get("replica_nodes", []))
            if replicas < configured:
                log.warning(
                    "the state topic %s exists with %d replica(s), fewer than state.replication_factor %d; "
                    "Driftline does not change an existing topic (kafka-reassign-partitions.sh does)",
                    topic, replicas, configured,
                )


def _chunk_key(key: str, version: str, index: int) -> str:
    return f"{key}#{version}#{index}"
