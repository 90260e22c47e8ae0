"""The collector over a real broker: SDK -> Kafka -> source -> pipeline -> metrics and DLQ."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from driftline import Client
from driftline.kafka_transport import KafkaTransport
from kafka import KafkaConsumer, KafkaProducer

from collector.config import Config, parse_config
from tests.kafka_fixture import KafkaBroker, RunningCollector, create_topics, unique_topic

pytestmark = pytest.mark.integration


def kafka_config(bootstrap: str, partitions: int = 1, **sections: dict[str, object]) -> Config:
    """A configuration on fresh topics and a fresh group (plus ``sections``); the topics are created here."""
    prefix = unique_topic("collector")
    kafka = {
        "bootstrap_servers": bootstrap,
        "group_id": f"g-{uuid.uuid4().hex[:8]}",
        "predictions_topic": f"{prefix}.predictions",
        "labels_topic": f"{prefix}.labels",
        "dlq_topic": f"{prefix}.dlq",
    }
    config = parse_config({**sections, "kafka": {**kafka, **sections.get("kafka", {})}})
    create_topics(bootstrap, [config.kafka.predictions_topic, config.kafka.labels_topic], partitions)
    return config


def wait_for(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_every_sdk_event_is_counted_by_the_collector(
    kafka_broker: KafkaBroker, collector: Callable[[Config], RunningCollector]
) -> None:
    config = kafka_config(kafka_broker.bootstrap, partitions=3)
    running = collector(config)
    sent = {"credit-risk": 700, "churn": 450}
    for model, count in sent.items():
        transport = KafkaTransport(
            kafka_broker.bootstrap, config.kafka.predictions_topic, config.kafka.labels_topic
        )
        with Client(model, "2", transport) as client:
            ids = [client.log_prediction({"x": float(i), "c": "a"}, i % 2) for i in range(count)]
            for event_id in ids[: count // 5]:
                client.log_label(event_id, 1)
            assert client.flush(timeout=20.0) == 0
    wait_for(
        lambda: sum(running.events(m, "2", "prediction") for m in sent) == sum(sent.values()),
        timeout=60,
    )
    wait_for(lambda: running.events_any_version("churn", "label") == 90, timeout=30)
    assert running.events("credit-risk", "2", "prediction") == 700
    assert running.events("churn", "2", "prediction") == 450
    assert running.events_any_version("credit-risk", "label") == 140
    assert sum(running.pipeline.counts.rejected.values()) == 0


def test_bad_messages_go_to_the_dlq_and_the_good_ones_around_them_are_processed(
    kafka_broker: KafkaBroker, collector: Callable[[Config], RunningCollector]
) -> None:
    config = kafka_config(kafka_broker.bootstrap)
    good = (
        b'{"type":"prediction","schema_version":1,"event_id":"e%d","model":"m",'
        b'"model_version":"1","features":{"x":1.5},"prediction":1}'
    )
    bad = {
        1: (b"\x00\xff\xfe", "invalid_json", ""),
        3: (b'{"type":"prediction","schema_version":1,"model":"m"}', "missing_field", "event_id"),
        4: (b'{"type":"nonsense","schema_version":1}', "unknown_type", "type"),
        6: (b'{"type":"heartbeat","schema_version":1,"model":"m","model_version":"1",'
            b'"instance":"i","cpu_ratio":NaN}', "non_finite", ""),
    }
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
    values = [bad[i][0] if i in bad else good % i for i in range(9)]
    for value in values:
        producer.send(config.kafka.predictions_topic, value=value, key=b"m")
    producer.flush(timeout=20)
    producer.close()
    running = collector(config)
    wait_for(lambda: running.events("m", "1", "prediction") == 5, timeout=60)
    wait_for(lambda: sum(running.pipeline.counts.rejected.values()) == 4, timeout=30)
    for reason in ("invalid_json", "missing_field", "unknown_type", "non_finite"):
        assert running.rejected(reason) == 1

    consumer = KafkaConsumer(
        config.kafka.dlq_topic,
        bootstrap_servers=kafka_broker.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=15_000,
    )
    try:
        records = [record for _, record in zip(range(4), consumer, strict=False)]
    finally:
        consumer.close()
    assert len(records) == 4
    for record in records:
        headers = {key: value.decode() for key, value in record.headers}
        offset = int(headers["driftline.source.offset"])
        value, reason, _field = bad[offset]
        assert record.value == value
        assert headers["driftline.reason"] == reason
        assert headers["driftline.source.topic"] == config.kafka.predictions_topic
        assert headers["driftline.source.partition"] == "0"
    by_offset = {int(dict(r.headers)["driftline.source.offset"]): r for r in records}
    assert sorted(by_offset) == sorted(bad)
    assert dict(by_offset[3].headers)["driftline.field"] == b"event_id"
