"""The Kafka state store against the real broker: chunks, manifests, compaction, another reader."""

from __future__ import annotations

import pytest
from kafka import KafkaConsumer
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from kafka.structs import TopicPartition

from collector.kafka_state_store import KafkaStateStore
from collector.state_codec import StateFormatError
from tests.kafka_fixture import KafkaBroker, unique_topic

pytestmark = pytest.mark.integration


def _latest_by_key(bootstrap: str, topic: str) -> dict[str, bytes | None]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    end = consumer.end_offsets([partition])[partition]
    latest: dict[str, bytes | None] = {}
    while consumer.position(partition) < end:
        for records in consumer.poll(timeout_ms=500).values():
            for record in records:
                latest[record.key.decode()] = record.value
    consumer.close()
    return latest


def test_values_larger_than_a_chunk_round_trip_to_another_reader_and_old_chunks_are_deleted(
    kafka_broker: KafkaBroker,
) -> None:
    topic = unique_topic("state-store")
    writer = KafkaStateStore(kafka_broker.bootstrap, topic, chunk_bytes=1000)
    big = bytes(range(256)) * 22  # 5,632 bytes: 6 chunks
    small = b"the second version"
    try:
        writer.put("g/partition/0", big)
        reader = KafkaStateStore(kafka_broker.bootstrap, topic, chunk_bytes=1000)
        assert reader.get("g/partition/0") == big
        assert reader.get("g/partition/1") is None
        writer.put("g/partition/0", small)
        assert reader.get("g/partition/0") == small  # the reader catches up with the topic
        reader.close()
    finally:
        writer.close()
    latest = _latest_by_key(kafka_broker.bootstrap, topic)
    live = [key for key, value in latest.items() if key.startswith("g/partition/0#") and value is not None]
    deleted = [key for key, value in latest.items() if value is None]
    assert len(live) == 1 and len(deleted) == 6  # the first version's chunks have tombstones

    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    try:
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        admin.close()
    (configs,) = [c for by_name in described.values() for c in by_name.values()]
    assert "compact" in str(configs["cleanup.policy"])


def test_a_value_whose_chunks_are_missing_is_unreadable_not_wrong(kafka_broker: KafkaBroker) -> None:
    topic = unique_topic("state-store")
    store = KafkaStateStore(kafka_broker.bootstrap, topic, chunk_bytes=10)
    try:
        store.put("k", b"0123456789abcdefghij")
        version_chunk = next(
            key for key in _latest_by_key(kafka_broker.bootstrap, topic) if key.endswith("#1")
        )
        store._send([(version_chunk, None)])  # as if compaction had lost it
        reader = KafkaStateStore(kafka_broker.bootstrap, topic)
        with pytest.raises(StateFormatError, match="missing"):
            reader.get("k")
        reader.close()
    finally:
        store.close()
