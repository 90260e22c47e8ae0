"""The broker stopped for 30 s under a running ``driftline collect`` and a running SDK client.

The collector runs on each Kafka client library (``kafka.client``).

The collector reports not ready while the broker is away, resumes alone when it
is back, and counts every event sent (none lost). ``Client.close(timeout)``
returns within its timeout and stops its threads with the broker down. Uses its
own broker (stopped and restarted here), never the shared session one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from driftline import Client
from driftline.kafka_transport import KafkaTransport

from collector.config import confluent_installed
from tests.conftest import free_port, require
from tests.kafka_fixture import KafkaBroker, create_topics, local_broker, unique_topic
from tests.test_kafka_scale_out import eventually, predictions_counted

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
OUTAGE = 30.0
MODELS = ("model-a", "model-b", "model-c")


@pytest.fixture(scope="module")
def own_broker() -> Iterator[KafkaBroker]:
    with local_broker("driftline-kafka-outage-") as broker:
        yield broker


def readyz(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def send(clients: list[Client], start: int, count: int) -> None:
    for client in clients:
        for i in range(start, start + count):
            client.log_prediction({"x": float(i)}, i % 2)


def sdk_threads() -> set[threading.Thread]:
    """Threads of the SDK and of kafka-python's producers, alive now."""
    return {t for t in threading.enumerate() if t is not threading.main_thread() and t.is_alive()}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("kafka_client", ["kafka-python", "confluent"])
def test_a_30_s_broker_outage_is_not_ready_then_resumes_alone_and_loses_nothing(
    own_broker: KafkaBroker, tmp_path: Path, kafka_client: str
) -> None:
    if kafka_client == "confluent":
        require(confluent_installed(), "confluent-kafka is missing: pip install '.[confluent]'")
    prefix = unique_topic("outage")
    predictions, labels = f"{prefix}.predictions", f"{prefix}.labels"
    create_topics(own_broker.bootstrap, [predictions, labels], partitions=2)
    port = free_port()
    config = tmp_path / "collector.yaml"
    config.write_text(yaml.safe_dump({
        "kafka": {
            "client": kafka_client,
            "bootstrap_servers": own_broker.bootstrap,
            "group_id": f"g-{uuid.uuid4().hex[:8]}",
            "predictions_topic": predictions,
            "labels_topic": labels,
            "dlq_topic": f"{prefix}.dlq",
        },
        "http": {"port": port},
    }))
    log = (tmp_path / "collector.log").open("wb")
    collector = subprocess.Popen(
        [sys.executable, "-m", "collector.cli", "-v", "collect", "--config", str(config)],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    clients = [
        Client(model, "1", KafkaTransport(own_broker.bootstrap, predictions, labels))
        for model in MODELS
    ]
    try:
        eventually(lambda: readyz(port)[0] == 200, 60, "the collector to be ready")
        send(clients, 0, 200)
        assert all(client.flush(timeout=20.0) == 0 for client in clients)
        eventually(lambda: sum(predictions_counted(port).values()) == 600, 60, "600 events counted")

        own_broker.stop()
        stopped = time.monotonic()
        send(clients, 200, 100)  # wait in the SDK's producer buffer while the broker is down
        eventually(lambda: readyz(port)[0] == 503, 20, "/readyz to report the outage")
        status, body = readyz(port)
        assert (status, body) == (
            503, "not ready: kafka_unreachable: the consumer group's coordinator cannot be reached\n"
        )
        scrape = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert "driftline_source_connected 0.0" in scrape
        while time.monotonic() - stopped < OUTAGE:  # not ready for the whole outage
            assert readyz(port)[0] == 503
            time.sleep(1.0)
        assert collector.poll() is None

        own_broker.start()
        assert all(client.flush(timeout=60.0) == 0 for client in clients)
        eventually(lambda: readyz(port) == (200, "ready\n"), 90, "the collector to be ready again")
        send(clients, 300, 100)
        assert all(client.flush(timeout=20.0) == 0 for client in clients)
        eventually(
            lambda: predictions_counted(port) == dict.fromkeys(MODELS, 400.0),
            90,
            "every event sent to be counted once",
        )
        assert "driftline_source_connected 1.0" in urllib.request.urlopen(
            f"http://127.0.0.1:{port}/metrics", timeout=5
        ).read().decode()
        assert collector.poll() is None
    finally:
        for client in clients:
            client.close(timeout=5.0)
        collector.send_signal(signal.SIGTERM)
        try:
            collector.wait(timeout=30)
        except subprocess.TimeoutExpired:
            collector.kill()


@pytest.mark.parametrize("metadata_known", [True, False], ids=["broker-stopped", "never-reached"])
def test_client_close_returns_within_its_timeout_and_stops_its_threads_with_the_broker_down(
    own_broker: KafkaBroker, metadata_known: bool
) -> None:
    topic = unique_topic("close")
    create_topics(own_broker.bootstrap, [topic])
    before = sdk_threads()
    address = own_broker.bootstrap if metadata_known else f"127.0.0.1:{free_port()}"
    client = Client("m", "1", KafkaTransport(address, topic, topic))
    try:
        if metadata_known:
            send([client], 0, 10)
            assert client.flush(timeout=20.0) == 0
            own_broker.stop()
        send([client], 10, 1000)
        started = time.monotonic()
        client.close(timeout=2.0)
        elapsed = time.monotonic() - started
    finally:
        if metadata_known:
            own_broker.start()
    assert elapsed < 2.5, f"close(timeout=2.0) took {elapsed:.1f} s"
    assert sdk_threads() - before == set(), [t.name for t in sdk_threads() - before]
    stats = client.stats
    assert stats.pending == 0
    assert stats.enqueued == stats.sent + stats.failed + stats.invalid
