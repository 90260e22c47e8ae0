"""The Kafka state store against the real broker: chunks, manifests, compaction, another reader."""

from __future__ import annotations

import logging

import pytest
from kafka import KafkaConsumer
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from kafka.structs import TopicPartition

from collector.config import parse_config
from collector.errors import ConfigError, StateStoreError
from collector.kafka_state_store import KafkaStateStore, min_insync_replicas, replication_factor
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


def _topic_settings(bootstrap: str, topic: str) -> tuple[int, dict[str, str]]:
    """The replicas of the topic's partition and its configuration, as the broker describes them."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        (described,) = admin.describe_topics([topic])
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        admin.close()
    (partition,) = described["partitions"]
    (by_name,) = [c for by_type in configs.values() for c in by_type.values()]
    return len(partition["replica_nodes"]), {k: v["value"] for k, v in by_name.items()}


def test_the_state_topic_is_created_with_as_many_replicas_as_the_single_broker_can_hold(
    kafka_broker: KafkaBroker, caplog: pytest.LogCaptureFixture
) -> None:
    topic = unique_topic("state-store")
    KafkaStateStore(kafka_broker.bootstrap, topic).close()
    replicas, configs = _topic_settings(kafka_broker.bootstrap, topic)
    assert replicas == 1
    assert configs == {"cleanup.policy": "compact", "min.insync.replicas": "1"}

    with caplog.at_level(logging.WARNING, logger="collector.kafka_state_store"):
        KafkaStateStore(kafka_broker.bootstrap, topic, replication_factor=3).close()  # exists: left alone
    assert "exists with 1 replica(s), fewer than state.replication_factor 3" in caplog.text
    assert _topic_settings(kafka_broker.bootstrap, topic)[0] == 1


def test_a_replication_factor_over_the_brokers_is_a_clear_error(kafka_broker: KafkaBroker) -> None:
    topic = unique_topic("state-store")
    with pytest.raises(StateStoreError, match=r"replication_factor is 2, but the cluster has 1 broker"):
        KafkaStateStore(kafka_broker.bootstrap, topic, replication_factor=2)
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    try:
        assert topic not in admin.list_topics()
    finally:
        admin.close()


@pytest.mark.parametrize("factor", [0, -1])
def test_a_replication_factor_below_one_is_refused_by_the_configuration(factor: int) -> None:
    with pytest.raises(ConfigError, match=r"state\.replication_factor.*greater than or equal to 1"):
        parse_config({"state": {"store": "kafka", "replication_factor": factor}})


def test_replication_defaults_to_three_replicas_where_there_are_enough_brokers() -> None:
    assert [replication_factor(None, n) for n in (1, 2, 3, 7)] == [1, 2, 3, 3]
    assert [min_insync_replicas(f) for f in (1, 2, 3, 5)] == [1, 1, 2, 2]
    assert parse_config({}).state.replication_factor is None
