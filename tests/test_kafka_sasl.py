"""The collector over a real broker's SASL_PLAINTEXT listener (PLAIN and SCRAM), right and wrong password.

The broker (``deploy/kafka/kafka.sh`` with ``KAFKA_SASL_PORT``) keeps its
PLAINTEXT listener too; the tests produce and read the DLQ through it, so only
the collector's own clients go through SASL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from driftline import Client
from driftline.kafka_transport import KafkaTransport
from kafka import KafkaConsumer, KafkaProducer

from collector.config import parse_config
from collector.kafka_wiring import build_kafka_source
from exporters.store import MetricStore
from tests.conftest import free_port
from tests.kafka_fixture import KafkaBroker, create_topics, local_broker, unique_topic
from tests.test_kafka_scale_out import eventually, scrape

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
USER, PASSWORD = "alice", "alice-Pa55-word"
WRONG_PASSWORD = "not-alice-Pa55"


@pytest.fixture(scope="module")
def sasl_broker() -> Iterator[KafkaBroker]:
    with local_broker("driftline-kafka-sasl-", sasl_users={USER: PASSWORD}) as broker:
        yield broker


def _kafka_settings(broker: KafkaBroker, mechanism: str, password: Any) -> dict[str, Any]:
    """The collector's ``kafka:`` section on fresh topics, over the SASL listener."""
    prefix = unique_topic("sasl")
    settings = {
        "bootstrap_servers": broker.sasl_bootstrap,
        "group_id": f"g-{uuid.uuid4().hex[:8]}",
        "predictions_topic": f"{prefix}.predictions",
        "labels_topic": f"{prefix}.labels",
        "dlq_topic": f"{prefix}.dlq",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": USER,
        "sasl_plain_password": password,
    }
    create_topics(
        broker.bootstrap,
        [settings["predictions_topic"], settings["labels_topic"], settings["dlq_topic"]],
    )
    return settings


def _collect(tmp_path: Path, kafka: dict[str, Any], port: int) -> subprocess.Popen[str]:
    config = tmp_path / "driftline.yaml"
    config.write_text(yaml.safe_dump({"kafka": kafka, "http": {"port": port}}), encoding="utf-8")
    return subprocess.Popen(
        [sys.executable, "-m", "collector.cli", "collect", "--config", str(config)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _total(port: int, name: str) -> float:
    return sum(scrape(port).get(name, {}).values())


def _stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()


def test_the_collector_consumes_and_writes_dead_letters_over_sasl(
    sasl_broker: KafkaBroker, tmp_path: Path
) -> None:
    (tmp_path / "kafka-password").write_text(PASSWORD + "\n", encoding="utf-8")
    kafka = _kafka_settings(sasl_broker, "PLAIN", {"file": "kafka-password"})
    transport = KafkaTransport(sasl_broker.bootstrap, kafka["predictions_topic"], kafka["labels_topic"])
    with Client("m", "1", transport) as client:
        for i in range(30):
            client.log_prediction({"x": float(i)}, i % 2)
        assert client.flush(timeout=20.0) == 0
    producer = KafkaProducer(bootstrap_servers=sasl_broker.bootstrap)
    for value in (b"not json", b'{"type":"nonsense","schema_version":1}'):
        producer.send(kafka["predictions_topic"], value=value)
    producer.flush(timeout=20)
    producer.close()

    port = free_port()
    process = _collect(tmp_path, kafka, port)
    try:
        eventually(
            lambda: _total(port, "driftline_events_total") == 30,
            timeout=90,
            what="30 predictions counted over SASL",
        )
        eventually(
            lambda: _total(port, "driftline_events_rejected_total") == 2,
            timeout=30,
            what="2 rejections",
        )
    finally:
        out, err = _stop(process)
    assert process.returncode == 0, err
    assert PASSWORD not in out + err

    dlq = KafkaConsumer(
        kafka["dlq_topic"],
        bootstrap_servers=sasl_broker.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=15_000,
    )
    try:
        dead = sorted(record.value for _, record in zip(range(2), dlq, strict=False))
    finally:
        dlq.close()
    assert dead == [b"not json", b'{"type":"nonsense","schema_version":1}']


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_the_consumer_logs_in_with_scram(sasl_broker: KafkaBroker, mechanism: str) -> None:
    config = parse_config({"kafka": _kafka_settings(sasl_broker, mechanism, PASSWORD)})
    producer = KafkaProducer(bootstrap_servers=sasl_broker.bootstrap)
    for i in range(5):
        producer.send(config.kafka.predictions_topic, value=b"m%d" % i)
    producer.flush(timeout=20)
    producer.close()
    source = build_kafka_source(config, MetricStore())
    try:
        values: list[bytes] = []
        for _ in range(100):  # bounded: at most 100 polls of 0.3 s
            values += [message.value for message in source.next_batch(10, 0.3)]
            if len(values) >= 5:
                break
    finally:
        source.close()
    assert values == [b"m%d" % i for i in range(5)]


def test_a_wrong_password_fails_with_one_clear_line(
    sasl_broker: KafkaBroker, tmp_path: Path
) -> None:
    kafka = _kafka_settings(sasl_broker, "PLAIN", WRONG_PASSWORD)
    process = _collect(tmp_path, kafka, free_port())
    try:
        out, err = process.communicate(timeout=90)
    finally:
        _stop(process)
    assert process.returncode == 2, out + err
    lines = [line for line in (out + err).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert f"refused the PLAIN login of user '{USER}'" in lines[0]
    assert "Invalid username or password" in lines[0]
    assert WRONG_PASSWORD not in out + err
