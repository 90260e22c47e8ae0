"""Rejected counts by reason are exact across SIGKILLs and partition moves, against the real broker.

Valid predictions and poison messages flow on two partitions while a
collector with the local state store is killed with SIGKILL twice, at
seeded-random moments, and restarted each time. Messages processed after its
last checkpoint are read again; the rejection counts that the checkpoint
carries (collector/partition_counters.py) make the end result exact: the
rejected count of every reason equals the number of poison messages of that
reason sent, and every valid event is counted once. With two collectors
sharing the Kafka state store, the killed one's partition and its counts move
to the other just as exactly.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from kafka import KafkaProducer

from tests.kafka_fixture import KafkaBroker, create_topics, unique_topic
from tests.poison import POISONS, valid
from tests.test_kafka_scale_out import eventually, scrape
from tests.test_kafka_state import Collector, _owned

pytestmark = pytest.mark.integration

PARTITIONS = 2
VALID_PER_PARTITION = 1_500


def _stream() -> list[tuple[int, bytes, str | None]]:
    """(partition, message, reason it must be rejected for, or None): a poison after every tenth valid one."""
    messages: list[tuple[int, bytes, str | None]] = []
    for i in range(VALID_PER_PARTITION):
        for partition in range(PARTITIONS):
            messages.append((partition, valid(i, model=f"model{partition}"), None))
            if i % 10 == 5:
                poison = POISONS[(i // 10 + partition) % len(POISONS)]
                messages.append((partition, poison.raw, poison.reason))
    return messages


STREAM = _stream()


def _produce(bootstrap: str, topic: str, done: threading.Event) -> None:
    """The stream in chunks of 100, about 500 messages a second, so kills land while it flows."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        for start in range(0, len(STREAM), 100):
            for partition, message, _ in STREAM[start : start + 100]:
                producer.send(topic, message, partition=partition)
            producer.flush(30)
            time.sleep(0.2)
    finally:
        producer.close(timeout=30)
        done.set()


def _rejected(collector: Collector) -> dict[str, float]:
    series = scrape(collector.port).get("driftline_events_rejected_total", {})
    return {dict(labels)["reason"]: value for labels, value in series.items() if value}


def _rejected_and_saved(collector: Collector, threshold: int) -> bool:
    """At least ``threshold`` rejected, and a snapshot saved since start (a kill then has one to restore)."""
    snapshots = scrape(collector.port).get("driftline_state_snapshots_total", {})
    saved = snapshots.get((("outcome", "saved"),), 0.0)
    return sum(_rejected(collector).values()) >= threshold and saved > 0


def _kafka(bootstrap: str) -> dict[str, str]:
    """Fresh topics of two partitions and a fresh group."""
    prefix = unique_topic("exact")
    create_topics(bootstrap, [f"{prefix}.predictions", f"{prefix}.labels"], PARTITIONS)
    return {
        "bootstrap_servers": bootstrap,
        "predictions_topic": f"{prefix}.predictions",
        "labels_topic": f"{prefix}.labels",
        "dlq_topic": f"{prefix}.dlq",
        "group_id": f"exact-{uuid.uuid4().hex[:8]}",
    }


def _start_producing(kafka: dict[str, str]) -> tuple[threading.Thread, threading.Event]:
    done = threading.Event()
    producer = threading.Thread(
        target=_produce, args=(kafka["bootstrap_servers"], kafka["predictions_topic"], done), daemon=True
    )
    producer.start()
    return producer, done


def _sent() -> dict[str, float]:
    counted = Counter(reason for _, _, reason in STREAM if reason is not None)
    return {reason: float(count) for reason, count in counted.items()}


def _assert_every_message_counted_once(
    collector: Collector, producer: threading.Thread, done: threading.Event
) -> None:
    """Once the stream is sent and read: each reason's rejected count is what was sent, valid events once."""
    producer.join(timeout=240)
    assert done.is_set()
    eventually(
        lambda: collector.events_total() + sum(_rejected(collector).values()) >= len(STREAM),
        240,
        "every message counted",
    )
    time.sleep(3.0)  # anything counted twice would show now
    assert _rejected(collector) == _sent()
    assert collector.events_total() == PARTITIONS * VALID_PER_PARTITION


@pytest.fixture
def running(tmp_path: Path, kafka_broker: KafkaBroker) -> Iterator[tuple[Collector, dict[str, str]]]:
    kafka = _kafka(kafka_broker.bootstrap)
    killed = Collector(tmp_path / "killed", kafka)
    yield killed, kafka
    killed.stop()


@pytest.mark.timeout(600)
def test_rejected_counts_by_reason_are_exact_after_two_sigkills(
    running: tuple[Collector, dict[str, str]],
) -> None:
    collector, kafka = running
    sent = _sent()
    assert set(sent) >= {"non_finite", "invalid_field", "invalid_json"}
    kill_at = sorted(np.random.default_rng(14).integers(30, int(sum(sent.values())) - 60, size=2).tolist())
    collector.start()
    eventually(lambda: collector.events_total() >= 0, 120, "the collector up")
    producer, done = _start_producing(kafka)
    for threshold in kill_at:
        eventually(lambda t=threshold: _rejected_and_saved(collector, t), 240, f"{threshold} rejected, saved")
        collector.kill()
        collector.start()
    _assert_every_message_counted_once(collector, producer, done)
    for restarted in collector.logs[1:]:
        assert "restored partition" in restarted.read_text(errors="replace"), restarted


@pytest.mark.timeout(600)
def test_a_killed_collectors_partition_takes_its_rejected_counts_to_the_other(
    tmp_path: Path, kafka_broker: KafkaBroker
) -> None:
    kafka = _kafka(kafka_broker.bootstrap)
    state = {"store": "kafka", "topic": unique_topic("exact-state"), "interval_seconds": 2.0}
    survivor = Collector(tmp_path / "survivor", kafka, state)
    victim = Collector(tmp_path / "victim", kafka, state)
    predictions = kafka["predictions_topic"]
    try:
        survivor.start()
        victim.start()
        eventually(
            lambda: len(_owned(survivor, predictions)) == len(_owned(victim, predictions)) == 1,
            120,
            "the group to split the partitions 1/1",
        )
        producer, done = _start_producing(kafka)
        threshold = int(np.random.default_rng(15).integers(20, 120))
        eventually(lambda: _rejected_and_saved(victim, threshold), 240, f"{threshold} rejected, saved")
        victim.kill()
        _assert_every_message_counted_once(survivor, producer, done)
        assert _owned(survivor, predictions) == {0, 1}
        assert "restored partition" in survivor.logs[0].read_text(errors="replace")
    finally:
        survivor.stop()
        victim.stop()
