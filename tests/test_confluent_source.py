"""``kafka.client: confluent``: the collector on confluent-kafka against the real broker.

The same semantics as the kafka-python source: every event counted once,
labels joined, poison dead-lettered, offsets committed after processing, a
SIGKILLed collector resuming from its checkpoint without counting twice (its
counts, joins and window scores equal those of an uninterrupted collector on
kafka-python), and two members splitting the partitions with a model's
predictions and labels partitions on one member. Under ``CI=true`` a missing
confluent-kafka fails these tests (the Makefile installs the ``confluent`` extra).
"""

from __future__ import annotations

import doctest
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from driftline import Client
from driftline.kafka_transport import KafkaTransport
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from collector import config as config_module
from collector import consumer_health
from collector.config import Config, parse_config
from collector.errors import ConfigError
from collector.kafka_wiring import build_kafka_source, confluent_security_options
from collector.sources import GroupSource
from exporters.store import MetricStore
from tests.conftest import require
from tests.kafka_fixture import KafkaBroker, RunningCollector, create_topics, unique_topic
from tests.test_kafka_collector import wait_for
from tests.test_kafka_scale_out import eventually
from tests.test_kafka_state import Collector, _assert_same_windows, _models, _owned, _produce

PARTITIONS = 3


@pytest.fixture
def confluent() -> None:
    """Skip (laptop) or fail (CI) when confluent-kafka is not installed."""
    require(config_module.confluent_installed(), "confluent-kafka is missing: pip install '.[confluent]'")


def test_choosing_confluent_without_the_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_module, "confluent_installed", lambda: False)
    with pytest.raises(ConfigError) as raised:
        parse_config({"kafka": {"client": "confluent"}})
    message = str(raised.value)
    assert "kafka.client" in message or "kafka" in message
    assert "pip install 'driftline-collector[confluent]'" in message
    assert parse_config({}).kafka.client == "kafka-python"


def test_consumer_health_doctest_holds() -> None:
    """The readiness rules both Kafka sources share (collector/consumer_health.py)."""
    failures, tried = doctest.testmod(consumer_health)
    assert tried >= 8 and failures == 0


def test_an_unknown_client_is_refused() -> None:
    with pytest.raises(ConfigError, match="client"):
        parse_config({"kafka": {"client": "aiokafka"}})


def test_the_confluent_consumer_gets_the_security_settings_under_librdkafka_names(
    tmp_path: Path,
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    kafka = parse_config(
        {
            "kafka": {
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "SCRAM-SHA-256",
                "sasl_plain_username": "alice",
                "sasl_plain_password": "s3cret",
                "ssl_cafile": str(ca),
            }
        }
    ).kafka
    assert confluent_security_options(kafka) == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "alice",
        "sasl.password": "s3cret",
        "ssl.ca.location": str(ca),
    }


def _config(bootstrap: str, partitions: int = PARTITIONS) -> Config:
    prefix = unique_topic("confluent")
    config = parse_config(
        {
            "kafka": {
                "client": "confluent",
                "bootstrap_servers": bootstrap,
                "group_id": f"g-{uuid.uuid4().hex[:8]}",
                "predictions_topic": f"{prefix}.predictions",
                "labels_topic": f"{prefix}.labels",
                "dlq_topic": f"{prefix}.dlq",
            }
        }
    )
    create_topics(bootstrap, [config.kafka.predictions_topic, config.kafka.labels_topic], partitions)
    return config


@pytest.mark.integration
def test_the_collector_on_confluent_counts_joins_dead_letters_and_commits_exactly(
    kafka_broker: KafkaBroker, confluent: None, collector: Callable[[Config], RunningCollector]
) -> None:
    config = _config(kafka_broker.bootstrap)
    kafka = config.kafka
    running = collector(config)
    store, pipeline, source = running.store, running.pipeline, running.source
    assert type(source).__name__ == "ConfluentSource"
    sent = {"credit-risk": 700, "churn": 450}
    for model, count in sent.items():
        with Client(model, "2", KafkaTransport(kafka.bootstrap_servers, kafka.predictions_topic,
                                               kafka.labels_topic)) as client:
            ids = [client.log_prediction({"x": float(i), "c": "a"}, i % 2) for i in range(count)]
            for event_id in ids[: count // 5]:
                client.log_label(event_id, 1)
            assert client.flush(timeout=20.0) == 0
    poison = [b"\x00\xff\xfe", b'{"type":"prediction","schema_version":1,"model":"m"}']
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    for value in poison:
        producer.send(kafka.predictions_topic, value=value, key=b"m")
    producer.flush(timeout=20)
    producer.close()

    def events(model: str, kind: str) -> float:
        labels = {"model": model, "model_version": "2", "type": kind}
        value = store.get("driftline_events_total", labels)
        return 0.0 if value is None else float(value)

    wait_for(lambda: sum(pipeline.counts.rejected.values()) == 2, 60)
    wait_for(lambda: all(events(m, "prediction") == n for m, n in sent.items()), 60)
    wait_for(lambda: all(events(m, "label") == n // 5 for m, n in sent.items()), 30)
    for model, count in sent.items():
        assert store.get("driftline_labels_total", {"model": model, "outcome": "joined"}) == count // 5
    assert store.get("driftline_events_rejected_total", {"reason": "invalid_json"}) == 1
    assert store.get("driftline_events_rejected_total", {"reason": "missing_field"}) == 1
    assert store.get("driftline_source_connected", {}) == 1.0
    assert source.not_ready_reason() is None
    lag = {(t, int(p)) for t, p in _lag_series(store)}
    topics = (kafka.predictions_topic, kafka.labels_topic)
    assert lag == {(t, p) for t in topics for p in range(PARTITIONS)}

    def committed(topic: str) -> int:
        offsets = _committed(kafka.bootstrap_servers, kafka.group_id)
        return sum(offset for (name, _), offset in offsets.items() if name == topic)

    wait_for(lambda: committed(kafka.predictions_topic) == 1150 + len(poison), 30)
    wait_for(lambda: committed(kafka.labels_topic) == 140 + 90, 30)
    dead = KafkaConsumer(kafka.dlq_topic, bootstrap_servers=kafka.bootstrap_servers,
                         auto_offset_reset="earliest", consumer_timeout_ms=15_000)
    try:
        records = [record for _, record in zip(range(len(poison)), dead, strict=False)]
    finally:
        dead.close()
    assert sorted(record.value for record in records) == sorted(poison)


def _lag_series(store: MetricStore) -> list[tuple[str, str]]:
    for snapshot in store.snapshot():
        if snapshot.metric.name == "driftline_consumer_lag":
            return [(str(t), str(p)) for t, p in snapshot.samples]
    return []


def _committed(bootstrap: str, group: str) -> dict[tuple[str, int], int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets(group)[group]
    finally:
        admin.close()
    return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}


class _Member:
    """One ConfluentSource of a shared group, recording its rebalance callbacks and what it read."""

    def __init__(self, config: Config) -> None:
        self.revoked: list[tuple[str, int]] = []
        self.assigned: list[tuple[str, int]] = []
        self.read: list[tuple[str, int, int]] = []
        """(topic, partition, offset) of every message handed out."""
        self.source: GroupSource = build_kafka_source(
            config, MetricStore(), on_revoke=self.revoked.extend, on_assign=self.assigned.extend
        )

    def numbers(self, topic: str) -> set[int]:
        return {number for name, number in self.source.assignment() if name == topic}

    def poll(self) -> None:
        self.read += [(m.topic, m.partition, m.offset) for m in self.source.next_batch(100, 0.1)]


@pytest.fixture
def members() -> Iterator[list[_Member]]:
    made: list[_Member] = []
    yield made
    for member in made:
        member.source.close()


@pytest.mark.integration
def test_two_confluent_members_split_the_partitions_keeping_predictions_and_labels_together(
    kafka_broker: KafkaBroker, confluent: None, members: list[_Member]
) -> None:
    config = _config(kafka_broker.bootstrap, partitions=4)
    predictions, labels = config.kafka.predictions_topic, config.kafka.labels_topic
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
    for number in range(4):
        for i in range(20):
            producer.send(predictions, value=b"%d" % i, partition=number)
    producer.flush(timeout=20)
    producer.close()
    first = _Member(config)
    members.append(first)
    assert str(first.source.not_ready_reason()).startswith("not_joined: ")

    def poll(until: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 60
        while not until():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            for member in members:
                member.poll()

    poll(lambda: len(first.read) == 80, "the first member to read all 80 messages (never committed)")
    assert len(first.source.assignment()) == 8
    assert first.source.not_ready_reason() is None
    second = _Member(config)
    members.append(second)
    poll(lambda: len(first.numbers(predictions)) == len(second.numbers(predictions)) == 2,
         "the two members to split the partitions 2/2")
    for member in (first, second):
        assert member.numbers(predictions) == member.numbers(labels)
    assert first.numbers(predictions) | second.numbers(predictions) == {0, 1, 2, 3}
    # Eager rebalancing, but only the partitions that moved were revoked from the first member.
    moved = {(t, n) for t in (predictions, labels) for n in second.numbers(predictions)}
    assert set(first.revoked) == moved
    assert len(first.assigned) == 8
    assert set(second.assigned) == moved
    # The kept partitions go on from where they were read, not from the (absent) committed
    # offsets; the moved ones start afresh on the second member.
    poll(lambda: len(second.read) == 40, "the second member to read its 2 partitions")
    for _ in range(10):
        first.poll()
    assert len(first.read) == 80
    assert sorted(second.read) == sorted((predictions, n, i) for n in second.numbers(predictions)
                                         for i in range(20))


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_a_sigkilled_confluent_collector_resumes_from_its_checkpoint_as_if_never_killed(
    kafka_broker: KafkaBroker, confluent: None, tmp_path: Path
) -> None:
    prefix = unique_topic("confluent-state")
    topics: dict[str, object] = {
        "bootstrap_servers": kafka_broker.bootstrap,
        "predictions_topic": f"{prefix}.predictions",
        "labels_topic": f"{prefix}.labels",
        "dlq_topic": f"{prefix}.dlq",
    }
    create_topics(kafka_broker.bootstrap, [f"{prefix}.predictions", f"{prefix}.labels"], 2)
    killed = Collector(
        tmp_path / "killed", {**topics, "client": "confluent", "group_id": f"k-{uuid.uuid4().hex[:8]}"}
    )
    uninterrupted = Collector(
        tmp_path / "uninterrupted", {**topics, "group_id": f"u-{uuid.uuid4().hex[:8]}"}
    )
    models = _models()
    try:
        killed.start()
        uninterrupted.start()
        _eventually_up(killed, uninterrupted)
        produced = threading.Event()
        producer = threading.Thread(target=_produce, args=(topics, models, produced), daemon=True)
        producer.start()
        threshold = int(np.random.default_rng(14).integers(5_000, 20_000))
        eventually(lambda: killed.events_total() >= threshold, 240, f"{threshold} events counted")
        killed.kill()
        killed.start()
        producer.join(timeout=240)
        assert produced.is_set()
        total = 30_000
        for started in (uninterrupted, killed):
            eventually(lambda c=started: c.events_total() >= total, 240, "every event counted")
        time.sleep(3.0)  # anything counted twice would show now
        assert killed.events_total() == uninterrupted.events_total() == total
        assert killed.joined() == uninterrupted.joined() == {m: 7_500.0 for m in models}
        assert _owned(killed, str(topics["predictions_topic"])) == {0, 1}
        restarted = killed.logs[1].read_text(errors="replace")
        assert len(set(re.findall(r"restored partition (\d+)", restarted))) == 2
        assert "(checkpoint)" in restarted
        _assert_same_windows([killed], uninterrupted)
    finally:
        killed.stop()
        uninterrupted.stop()


def _eventually_up(*collectors: Collector) -> None:
    eventually(lambda: all(c.events_total() >= 0 for c in collectors), 120, "the collectors up")


@pytest.mark.integration
def test_topics_of_different_partition_counts_are_warned_about(
    kafka_broker: KafkaBroker, confluent: None, caplog: pytest.LogCaptureFixture
) -> None:
    from collector.confluent_source import ConfluentSource

    predictions, labels = unique_topic("uneven") + ".predictions", unique_topic("uneven") + ".labels"
    create_topics(kafka_broker.bootstrap, [predictions], 2)
    create_topics(kafka_broker.bootstrap, [labels], 3)
    with caplog.at_level(logging.WARNING, logger="collector.confluent_source"):
        source = ConfluentSource(kafka_broker.bootstrap, [predictions, labels], f"g-{uuid.uuid4().hex[:8]}")
    try:
        assert "different partition counts" in caplog.text
        assert (source.partition_count(predictions), source.partition_count(labels)) == (2, 3)
    finally:
        source.close()
