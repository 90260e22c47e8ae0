"""Fault test (d): poison pills sent with kcat between valid events to a running collector.

The collector (``collector.service.serve``, the code ``driftline collect``
runs, with its HTTP endpoints) must count every valid event, put every poison
message in the DLQ topic with its reason and field, keep answering scrapes,
and commit offsets covering every message.
"""

from __future__ import annotations

import io
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from collector.config import Config
from collector.service import serve
from tests.conftest import free_port, require_binary
from tests.kafka_fixture import KafkaBroker
from tests.poison import POISONS, valid
from tests.test_kafka_collector import kafka_config

pytestmark = pytest.mark.integration


def _config(bootstrap: str) -> Config:
    return kafka_config(
        bootstrap,
        kafka={"max_poll_records": 100},
        http={"port": free_port()},
        defaults={"window": {"events": 50, "min_events": 10}, "reference": {"auto_events": 50}},
    )


def _kcat_produce(bootstrap: str, topic: str, lines: list[bytes], tmp_path: Path) -> None:
    kcat = require_binary("kcat")
    path = tmp_path / "messages.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = subprocess.run(
        [kcat, "-P", "-b", bootstrap, "-t", topic, "-k", "m", "-l", str(path)],
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode()


@pytest.fixture
def running_service() -> Iterator[Callable[[Config], None]]:
    started: list[tuple[threading.Event, threading.Thread]] = []

    def start(config: Config) -> None:
        stop = threading.Event()
        console = Console(file=io.StringIO())
        thread = threading.Thread(target=serve, args=(config, stop, console), daemon=True)
        thread.start()
        started.append((stop, thread))

    yield start
    for stop, thread in started:
        stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive()


def _scrape(config: Config) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{config.http.port}/metrics", timeout=10) as response:
        text = response.read().decode("utf-8")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _sample(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _committed(bootstrap: str, group: str, topic: str) -> int | None:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    try:
        offset = consumer.committed(TopicPartition(topic, 0))
    finally:
        consumer.close()
    return None if offset is None else int(offset)


def _wait_for(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_poison_from_kcat_is_dead_lettered_every_valid_event_counted_and_every_offset_committed(
    kafka_broker: KafkaBroker, running_service: Callable[[Config], None], tmp_path: Path
) -> None:
    config = _config(kafka_broker.bootstrap)
    kafka = config.kafka
    poison = [p.raw for p in POISONS]
    lines = [valid(i) for i in range(50)] + poison + [valid(i) for i in range(50, 199)] + poison
    lines += [valid(i) for i in range(199, 250)]
    _kcat_produce(kafka_broker.bootstrap, kafka.predictions_topic, lines, tmp_path)
    running_service(config)

    def counted() -> bool:
        try:
            samples = _scrape(config)
        except OSError:
            return False
        accepted = _sample(samples, "driftline_events_total", model="m", model_version="1", type="prediction")
        rejected = sum(v for (n, _), v in samples.items() if n == "driftline_events_rejected_total")
        return accepted + rejected >= len(lines)

    _wait_for(counted, timeout=90)
    samples = _scrape(config)
    assert _sample(samples, "driftline_events_total", model="m", model_version="1", type="prediction") == 250
    for reason in {p.reason for p in POISONS}:
        expected = 2 * sum(p.reason == reason for p in POISONS)
        assert _sample(samples, "driftline_events_rejected_total", reason=reason) == expected, reason
    assert _sample(samples, "driftline_events_rejected_total", reason="processing_error") == 0
    # A closed window waits for its calibrated threshold from the worker process (seconds on a
    # fresh machine, whose calibration cache is empty) before it is counted.
    def windows() -> float:
        return _sample(_scrape(config), "driftline_windows_total", model="m", model_version="1")

    _wait_for(lambda: windows() >= 4, timeout=120)
    assert windows() == 4
    with urllib.request.urlopen(f"http://127.0.0.1:{config.http.port}/reports/", timeout=10) as page:
        assert page.status == 200

    _wait_for(
        lambda: _committed(kafka_broker.bootstrap, kafka.group_id, kafka.predictions_topic) == len(lines),
        timeout=30,
    )
    consumer = KafkaConsumer(
        kafka.dlq_topic,
        bootstrap_servers=kafka_broker.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=15_000,
    )
    try:
        records = [record for _, record in zip(range(2 * len(POISONS)), consumer, strict=False)]
    finally:
        consumer.close()
    poison_offsets = [50 + i for i in range(len(POISONS))] + [
        50 + len(POISONS) + 149 + i for i in range(len(POISONS))
    ]
    assert [r.value for r in records] == poison * 2
    headers = [{key: value.decode("utf-8") for key, value in r.headers} for r in records]
    assert [(h["driftline.reason"], h["driftline.field"]) for h in headers] == [
        (p.reason, p.field) for p in POISONS
    ] * 2
    assert [int(h["driftline.source.offset"]) for h in headers] == poison_offsets
