"""Checkpointed state against the real broker: a collector killed with SIGKILL at three seeded-random
moments while 30,000 events flow ends exactly where an uninterrupted collector does; with two collectors
sharing the Kafka state store, the partitions and state of the one killed move to the other just as exactly.

The collectors compared read the same topics in their own consumer groups, at the same time. Windows
are count-based (a huge ``max_seconds``), since wall-clock closing cannot repeat across a restart. Every
evaluated window is logged with its reference id and drift scores; a window evaluated again after a kill
(it was after the last checkpoint) must score the same both times.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from driftline.kafka_transport import KafkaTransport
from driftline.schema import encode
from kafka.partitioner.default import murmur2

from tests.conftest import free_port
from tests.kafka_fixture import KafkaBroker, create_topics, unique_topic
from tests.streams import drifting_stream
from tests.test_kafka_scale_out import eventually, scrape

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
PARTITIONS = 2
PREDICTIONS_PER_MODEL = 7_500  # two models, a label for every prediction: 30,000 events
WINDOW = re.compile(r"INFO collector\.model_state: (\S+)/1 window (\d+): (.*)$")


def _models() -> list[str]:
    """Two model names that the producer's murmur2 puts on different partitions."""
    by_partition: dict[int, str] = {}
    for i in range(100):
        name = f"model{i}"
        by_partition.setdefault((murmur2(name.encode()) & 0x7FFFFFFF) % PARTITIONS, name)
    return [by_partition[p] for p in range(PARTITIONS)]


class Collector:
    """One ``driftline collect`` configuration, started (and killed) as often as needed; logs kept."""

    def __init__(
        self, directory: Path, kafka: dict[str, object], state: dict[str, object] | None = None
    ) -> None:
        directory.mkdir()
        self.directory = directory
        self.port = free_port()
        self.config = directory / "driftline.yaml"
        self.config.write_text(
            yaml.safe_dump(
                {
                    "kafka": kafka,
                    "http": {"port": self.port},
                    "defaults": {
                        "window": {"events": 500, "max_seconds": 1e7, "min_events": 100},
                        "reference": {"auto_events": 1000},
                        "drift": {"persistence": 2, "drift_share": 0.2},
                    },
                    "state": state or {"store": "local", "directory": "state", "interval_seconds": 2.0},
                }
            )
        )
        self.logs: list[Path] = []
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log_path = self.directory / f"run-{len(self.logs)}.log"
        self.logs.append(log_path)
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "collector.cli", "-v", "collect", "--config", str(self.config)],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)

    def events_total(self) -> float:
        return sum(scrape(self.port).get("driftline_events_total", {}).values())

    def joined(self) -> dict[str, float]:
        series = scrape(self.port).get("driftline_labels_total", {})
        return {dict(k)["model"]: v for k, v in series.items() if dict(k)["outcome"] == "joined"}

    def windows(self) -> dict[tuple[str, int], set[str]]:
        """Every evaluated window in every run: (model, index) -> the distinct logged results."""
        seen: dict[tuple[str, int], set[str]] = {}
        for log in self.logs:
            for line in log.read_text(errors="replace").splitlines():
                match = WINDOW.search(line)
                if match:
                    seen.setdefault((match[1], int(match[2])), set()).add(match[3])
        return seen


@pytest.fixture
def topics(kafka_broker: KafkaBroker) -> dict[str, object]:
    prefix = unique_topic("state")
    create_topics(kafka_broker.bootstrap, [f"{prefix}.predictions", f"{prefix}.labels"], PARTITIONS)
    return {
        "bootstrap_servers": kafka_broker.bootstrap,
        "predictions_topic": f"{prefix}.predictions",
        "labels_topic": f"{prefix}.labels",
        "dlq_topic": f"{prefix}.dlq",
    }


@pytest.fixture
def collectors(tmp_path: Path, topics: dict[str, object]) -> Iterator[tuple[Collector, Collector]]:
    pair = tuple(
        Collector(tmp_path / name, {**topics, "group_id": f"{name}-{uuid.uuid4().hex[:8]}"})
        for name in ("killed", "uninterrupted")
    )
    yield pair  # type: ignore[misc]
    for collector in pair:
        collector.stop()


def _produce(topics: dict[str, object], models: list[str], done: threading.Event) -> None:
    """The seeded stream, sent in chunks as if traffic were flowing (about 2,000 events a second)."""
    streams = [
        drifting_stream(PREDICTIONS_PER_MODEL, seed=31 + i, shift_at=4_000, model=m)
        for i, m in enumerate(models)
    ]
    events = [e for pair in zip(*streams, strict=True) for e in pair]
    transport = KafkaTransport(
        str(topics["bootstrap_servers"]), str(topics["predictions_topic"]), str(topics["labels_topic"])
    )
    try:
        for start in range(0, len(events), 500):
            for event in events[start : start + 500]:
                transport.send(event.model, encode(event))
            time.sleep(0.25)
        assert transport.flush(60.0) == 0
    finally:
        transport.close()
        done.set()


@pytest.mark.timeout(600)
def test_sigkill_at_three_random_moments_changes_no_count_join_or_window_score(
    collectors: tuple[Collector, Collector], topics: dict[str, object]
) -> None:
    killed, uninterrupted = collectors
    models = _models()
    total = 4 * PREDICTIONS_PER_MODEL
    kill_at = sorted(np.random.default_rng(12).integers(3_000, 27_000, size=3).tolist())
    killed.start()
    uninterrupted.start()
    eventually(lambda: killed.events_total() >= 0 and uninterrupted.events_total() >= 0, 120, "both up")
    produced = threading.Event()
    producer = threading.Thread(target=_produce, args=(topics, models, produced), daemon=True)
    producer.start()
    for threshold in kill_at:
        eventually(lambda t=threshold: killed.events_total() >= t, 240, f"{threshold} events counted")
        killed.kill()
        killed.start()
    producer.join(timeout=240)
    assert produced.is_set()
    for collector in (uninterrupted, killed):
        eventually(lambda c=collector: c.events_total() >= total, 240, "every event counted")
    time.sleep(3.0)  # anything counted twice would show now
    assert killed.events_total() == uninterrupted.events_total() == total
    assert killed.joined() == uninterrupted.joined() == {m: float(PREDICTIONS_PER_MODEL) for m in models}

    assert len(killed.logs) == 4
    for restarted in killed.logs[1:]:  # each restart took both partitions' state and offsets back
        text = restarted.read_text(errors="replace")
        assert len(set(re.findall(r"restored partition (\d+)", text))) == PARTITIONS, restarted
        assert "(checkpoint)" in text
    # every window once, or several times (after a kill) with the same scores and reference
    _assert_same_windows([killed], uninterrupted)
    got = killed.windows()
    references = {re.search(r"against (\S+),", r).group(1) for rs in got.values() for r in rs}  # type: ignore[union-attr]
    assert len(references) == 2 and all(r.startswith("auto-") for r in references)
    flagged = {key for key, results in got.items() if "detected True" in next(iter(results))}
    after_shift = {(m, i) for m in models for i in range(7, 14)}  # the shift is at prediction 4,000
    assert len(flagged & after_shift) >= 10 and not flagged - after_shift


def _owned(collector: Collector, topic: str) -> set[int]:
    series = scrape(collector.port).get("driftline_consumer_lag", {})
    return {int(dict(k)["partition"]) for k in series if dict(k)["topic"] == topic}


def _assert_same_windows(logs: list[Collector], uninterrupted: Collector) -> None:
    expected = uninterrupted.windows()
    assert len(expected) == 2 * (PREDICTIONS_PER_MODEL - 1000) // 500
    assert all(len(results) == 1 for results in expected.values())
    got: dict[tuple[str, int], set[str]] = {}
    for collector in logs:
        for key, results in collector.windows().items():
            got.setdefault(key, set()).update(results)
    assert got == expected


@pytest.mark.timeout(600)
def test_a_killed_collectors_partitions_and_state_move_to_the_other_through_the_kafka_store(
    tmp_path: Path, topics: dict[str, object]
) -> None:
    models = _models()
    group = f"shared-{uuid.uuid4().hex[:8]}"
    state = {"store": "kafka", "topic": unique_topic("state-store"), "interval_seconds": 2.0}
    survivor = Collector(tmp_path / "survivor", {**topics, "group_id": group}, state)
    victim = Collector(tmp_path / "victim", {**topics, "group_id": group}, state)
    uninterrupted = Collector(
        tmp_path / "uninterrupted", {**topics, "group_id": f"alone-{uuid.uuid4().hex[:8]}"}
    )
    collectors = (survivor, victim, uninterrupted)
    predictions = str(topics["predictions_topic"])
    try:
        for collector in collectors:
            collector.start()
        eventually(
            lambda: (
                len(_owned(survivor, predictions)) == len(_owned(victim, predictions)) == 1
                and _owned(uninterrupted, predictions) == {0, 1}
            ),
            120,
            "the shared group to split the partitions 1/1",
        )
        produced = threading.Event()
        producer = threading.Thread(target=_produce, args=(topics, models, produced), daemon=True)
        producer.start()
        threshold = int(np.random.default_rng(13).integers(3_000, 12_000))
        eventually(lambda: victim.events_total() >= threshold, 240, f"{threshold} events in the victim")
        victim.kill()
        producer.join(timeout=240)
        assert produced.is_set()
        total = 4 * PREDICTIONS_PER_MODEL
        for collector in (uninterrupted, survivor):
            eventually(lambda c=collector: c.events_total() >= total, 240, "every event counted")
        time.sleep(3.0)  # anything counted twice would show now
        assert _owned(survivor, predictions) == {0, 1}
        assert survivor.events_total() == uninterrupted.events_total() == total
        assert (
            survivor.joined() == uninterrupted.joined() == {m: float(PREDICTIONS_PER_MODEL) for m in models}
        )
        moved = survivor.logs[0].read_text(errors="replace")
        assert "restored partition" in moved and "(checkpoint)" in moved
        _assert_same_windows([survivor, victim], uninterrupted)
    finally:
        for collector in collectors:
            collector.stop()
