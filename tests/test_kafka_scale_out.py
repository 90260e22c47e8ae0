"""Two ``driftline collect`` processes in one consumer group split a topic's partitions;
when one is killed the other takes its partitions over and keeps exporting."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from driftline import Client
from driftline.kafka_transport import KafkaTransport
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port
from tests.kafka_fixture import KafkaBroker, create_topics, unique_topic

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
PARTITIONS = 4
MODELS = [f"model-{i}" for i in range(8)]  # murmur2 puts them on all 4 partitions

StartCollector = Callable[[dict[str, object]], tuple[subprocess.Popen[bytes], int]]


def scrape(port: int) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """One collector's /metrics: sample name -> sorted labels -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def lag_partitions(port: int, topic: str) -> set[int]:
    """The partitions of ``topic`` a collector exports lag for (the ones it owns)."""
    series = scrape(port).get("driftline_consumer_lag", {})
    return {int(dict(labels)["partition"]) for labels in series if dict(labels)["topic"] == topic}


def predictions_counted(port: int) -> dict[str, float]:
    series = scrape(port).get("driftline_events_total", {})
    counted: dict[str, float] = {}
    for labels, value in series.items():
        label = dict(labels)
        if label["type"] == "prediction":
            counted[label["model"]] = counted.get(label["model"], 0.0) + value
    return counted


def eventually(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except OSError:
            pass  # the HTTP server is not up yet
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def send(bootstrap: str, predictions: str, labels: str, per_model: int) -> None:
    for model in MODELS:
        with Client(model, "1", KafkaTransport(bootstrap, predictions, labels)) as client:
            for i in range(per_model):
                client.log_prediction({"x": float(i)}, i % 2)
            assert client.flush(timeout=20.0) == 0


@pytest.fixture
def collectors(tmp_path: Path) -> Iterator[StartCollector]:
    started: list[subprocess.Popen[bytes]] = []

    def start(kafka: dict[str, object]) -> tuple[subprocess.Popen[bytes], int]:
        port = free_port()
        config = tmp_path / f"collector-{port}.yaml"
        config.write_text(yaml.safe_dump({"kafka": kafka, "http": {"port": port}}))
        log = (tmp_path / f"collector-{port}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "collector.cli", "collect", "--config", str(config)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        started.append(process)
        return process, port

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in started:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def test_two_collectors_split_partitions_and_one_takes_over_when_the_other_dies(
    kafka_broker: KafkaBroker,
    collectors: StartCollector,
    tmp_path: Path,
) -> None:
    prefix = unique_topic("scale")
    predictions, labels = f"{prefix}.predictions", f"{prefix}.labels"
    create_topics(kafka_broker.bootstrap, [predictions, labels], partitions=PARTITIONS)
    kafka: dict[str, object] = {
        "bootstrap_servers": kafka_broker.bootstrap,
        "group_id": f"g-{uuid.uuid4().hex[:8]}",
        "predictions_topic": predictions,
        "labels_topic": labels,
        "dlq_topic": f"{prefix}.dlq",
    }
    first, first_port = collectors(kafka)
    second, second_port = collectors(kafka)

    def split() -> bool:
        mine, theirs = lag_partitions(first_port, predictions), lag_partitions(second_port, predictions)
        return len(mine) == len(theirs) == PARTITIONS // 2 and not mine & theirs

    def copartitioned() -> bool:
        """Each collector reads the labels partitions matching its predictions partitions."""
        return all(lag_partitions(port, labels) == lag_partitions(port, predictions)
                   for port in (first_port, second_port))

    eventually(lambda: split() and copartitioned(), 60,
               "the two collectors to split the partitions 2/2, labels with their predictions")
    # Sent once the split is settled: a revoked partition's state (and its series)
    # is dropped by its old owner, so counts made before a rebalance move away.
    send(kafka_broker.bootstrap, predictions, labels, per_model=50)

    def all_counted(expected: float) -> Callable[[], bool]:
        def check() -> bool:
            first_counts, second_counts = predictions_counted(first_port), predictions_counted(second_port)
            return all(
                first_counts.get(m, 0.0) + second_counts.get(m, 0.0) >= expected for m in MODELS
            )
        return check

    eventually(all_counted(50), 60, "both collectors together to count every event")
    second_models = set(predictions_counted(second_port))
    assert second_models and second_models.isdisjoint(predictions_counted(first_port))

    second.send_signal(signal.SIGKILL)  # no clean leave: the group notices by session timeout
    second.wait(timeout=10)
    send(kafka_broker.bootstrap, predictions, labels, per_model=30)

    eventually(
        lambda: lag_partitions(first_port, predictions) == set(range(PARTITIONS)),
        60,
        "the survivor to own every partition",
    )

    def survivor_counts_new_events() -> bool:
        counts = predictions_counted(first_port)
        # The survivor counts the killed one's models from its last commit on:
        # at least the 30 new events each (at-least-once may replay more).
        return all(counts.get(m, 0.0) >= 30 for m in second_models) and all(
            counts.get(m, 0.0) >= 80 for m in set(MODELS) - second_models
        )

    eventually(survivor_counts_new_events, 60, "the survivor to count the new events")
    assert first.poll() is None
    # Both run on the default local state store, which cannot follow a partition to another host.
    logs = [log.read_text(errors="replace") for log in tmp_path.glob("collector-*.log")]
    assert any("the state store is local" in log for log in logs)
