"""The collector over a real broker's SASL_PLAINTEXT (PLAIN, SCRAM) and SSL listeners.

The broker (``deploy/kafka/kafka.sh`` with ``KAFKA_SASL_PORT`` and
``KAFKA_SSL_PORT``) keeps its PLAINTEXT listener too; the tests produce and
read the DLQ through it, so only the collector's own clients go through SASL
or TLS. Wrong credentials and an untrusted certificate each end the collector
with one line.
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
from collector.kafka_wiring import build_kafka_source, security_options
from collector.sasl_probe import sasl_refusal
from exporters.store import MetricStore
from tests.conftest import free_port
from tests.kafka_fixture import (
    KafkaBroker,
    TlsFiles,
    create_topics,
    local_broker,
    make_tls_files,
    unique_topic,
)
from tests.test_kafka_scale_out import eventually, scrape

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
USER, PASSWORD = "alice", "alice-Pa55-word"
WRONG_PASSWORD = "not-alice-Pa55"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def secure_broker(tls: TlsFiles) -> Iterator[KafkaBroker]:
    with local_broker("driftline-kafka-secure-", sasl_users={USER: PASSWORD}, tls=tls) as broker:
        yield broker


def _sasl(broker: KafkaBroker, mechanism: str, password: Any) -> dict[str, Any]:
    return {
        "bootstrap_servers": broker.sasl_bootstrap,
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": USER,
        "sasl_plain_password": password,
    }


def _ssl(broker: KafkaBroker, cafile: Path) -> dict[str, Any]:
    return {"bootstrap_servers": broker.ssl_bootstrap, "security_protocol": "SSL", "ssl_cafile": str(cafile)}


def _kafka_settings(broker: KafkaBroker, security: dict[str, Any]) -> dict[str, Any]:
    """The collector's ``kafka:`` section on fresh topics, with these security settings."""
    prefix = unique_topic("secure")
    settings = {
        "group_id": f"g-{uuid.uuid4().hex[:8]}",
        "predictions_topic": f"{prefix}.predictions",
        "labels_topic": f"{prefix}.labels",
        "dlq_topic": f"{prefix}.dlq",
        **security,
    }
    create_topics(
        broker.bootstrap,
        [settings["predictions_topic"], settings["labels_topic"], settings["dlq_topic"]],
    )
    return settings


def _collect(
    tmp_path: Path, kafka: dict[str, Any], port: int, *options: str
) -> subprocess.Popen[str]:
    config = tmp_path / "driftline.yaml"
    config.write_text(yaml.safe_dump({"kafka": kafka, "http": {"port": port}}), encoding="utf-8")
    return subprocess.Popen(
        [sys.executable, "-m", "collector.cli", *options, "collect", "--config", str(config)],
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
    secure_broker: KafkaBroker, tmp_path: Path
) -> None:
    (tmp_path / "kafka-password").write_text(PASSWORD + "\n", encoding="utf-8")
    kafka = _kafka_settings(secure_broker, _sasl(secure_broker, "PLAIN", {"file": "kafka-password"}))
    transport = KafkaTransport(secure_broker.bootstrap, kafka["predictions_topic"], kafka["labels_topic"])
    with Client("m", "1", transport) as client:
        for i in range(30):
            client.log_prediction({"x": float(i)}, i % 2)
        assert client.flush(timeout=20.0) == 0
    producer = KafkaProducer(bootstrap_servers=secure_broker.bootstrap)
    for value in (b"not json", b'{"type":"nonsense","schema_version":1}'):
        producer.send(kafka["predictions_topic"], value=value)
    producer.flush(timeout=20)
    producer.close()

    port = free_port()
    process = _collect(tmp_path, kafka, port, "--verbose")  # INFO logs: still no password
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
        bootstrap_servers=secure_broker.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=15_000,
    )
    try:
        dead = sorted(record.value for _, record in zip(range(2), dlq, strict=False))
    finally:
        dlq.close()
    assert dead == [b"not json", b'{"type":"nonsense","schema_version":1}']


@pytest.mark.parametrize("login", ["SCRAM-SHA-256", "SCRAM-SHA-512", "SSL"])
def test_the_consumer_reads_over_scram_and_tls(
    secure_broker: KafkaBroker, tls: TlsFiles, login: str
) -> None:
    security = (
        _ssl(secure_broker, tls.ca) if login == "SSL" else _sasl(secure_broker, login, PASSWORD)
    )
    config = parse_config({"kafka": _kafka_settings(secure_broker, security)})
    producer = KafkaProducer(bootstrap_servers=secure_broker.bootstrap)
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


@pytest.mark.parametrize("failure", ["wrong password", "untrusted certificate"])
def test_a_refused_connection_fails_with_one_clear_line(
    secure_broker: KafkaBroker, tmp_path: Path, failure: str
) -> None:
    if failure == "wrong password":
        security = _sasl(secure_broker, "PLAIN", WRONG_PASSWORD)
        expected = [f"refused the PLAIN login of user '{USER}'", "Invalid username or password"]
    else:
        other_ca = make_tls_files(tmp_path / "other", "other-ca").ca
        security = _ssl(secure_broker, other_ca)
        expected = ["cannot connect to Kafka", "with SSL", "CERTIFICATE_VERIFY_FAILED"]
    process = _collect(tmp_path, _kafka_settings(secure_broker, security), free_port())
    try:
        out, err = process.communicate(timeout=90)
    finally:
        _stop(process)
    assert process.returncode == 2, out + err
    lines = [line for line in (out + err).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    for fragment in expected:
        assert fragment in lines[0]
    assert WRONG_PASSWORD not in out + err


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_the_login_check_reads_the_real_brokers_refusal_to_its_end(
    secure_broker: KafkaBroker, mechanism: str
) -> None:
    """What the connection check falls back on when kafka-python lost a refusal to the close."""
    wrong = parse_config({"kafka": _sasl(secure_broker, mechanism, WRONG_PASSWORD)}).kafka
    right = parse_config({"kafka": _sasl(secure_broker, mechanism, PASSWORD)}).kafka
    refusal = sasl_refusal(wrong, security_options(wrong), timeout=15)
    expected = "Invalid username or password" if mechanism == "PLAIN" else "invalid credentials"
    assert refusal is not None and expected in refusal
    assert WRONG_PASSWORD not in refusal
    assert sasl_refusal(right, security_options(right), timeout=15) is None
