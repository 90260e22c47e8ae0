"""Fresh ``driftline collect`` starts always commit: ten in a row, each on a new group.

In about one start in four the single member of a new group used to be stuck
after ``Elected group leader`` with no assignment, every commit failing with
``RebalanceInProgressError`` while events kept being counted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from collector.copartitioned_assignor import CopartitionedAssignor
from collector.kafka_source import KafkaSource
from tests.conftest import free_port
from tests.kafka_fixture import KafkaBroker, create_topics, unique_topic

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
STARTS = 10
COMMIT_BOUND = 30.0
"""Seconds a fresh start may take to commit (the group join takes about 3 s; CI is slow)."""
BACKLOG = 10_000
"""Events waiting before the first start: processing them holds the GIL while the group joins."""

EVENT = (
    b'{"type":"prediction","schema_version":1,"event_id":"e%d","model":"m%d",'
    b'"model_version":"1","features":{"x":%d.5},"prediction":1}'
)


def committed(admin: KafkaAdminClient, group: str) -> dict[tuple[str, int], int]:
    """The group's committed offsets, as the broker reports them."""
    try:
        offsets = admin.list_group_offsets({group: None}).get(group, {})
    except KafkaError as exc:  # a fresh broker creates its offsets topic on first use
        if not exc.retriable:
            raise
        return {}
    return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


@pytest.fixture
def flowing(kafka_broker: KafkaBroker) -> Iterator[tuple[str, str]]:
    """Fresh predictions and labels topics with a backlog, and events flowing into predictions."""
    prefix = unique_topic("commits")
    predictions, labels = f"{prefix}.predictions", f"{prefix}.labels"
    create_topics(kafka_broker.bootstrap, [predictions, labels], partitions=2)
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
    for n in range(BACKLOG):  # each fresh group starts by reading this backlog
        producer.send(predictions, value=EVENT % (n, n % 4, n), key=b"m%d" % (n % 4))
    producer.flush(timeout=60)
    stop = threading.Event()

    def produce() -> None:
        n = BACKLOG
        while not stop.wait(0.02):
            for _ in range(10):
                producer.send(predictions, value=EVENT % (n, n % 4, n), key=b"m%d" % (n % 4))
                n += 1

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        yield predictions, labels
    finally:
        stop.set()
        thread.join(timeout=10)
        producer.close(timeout=10)


def start_collector(tmp_path: Path, kafka: dict[str, object], name: str) -> subprocess.Popen[bytes]:
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump({"kafka": kafka, "http": {"port": free_port()}}))
    log = (tmp_path / f"{name}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "collector.cli", "-v", "collect", "--config", str(config)],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def stop_collector(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def keeps_committing(
    admin: KafkaAdminClient, group: str, topic: str, process: subprocess.Popen[bytes]
) -> str | None:
    """None when ``group`` committed both partitions of ``topic`` within the bound and then
    committed further (the stuck member's later commits all failed), else what was seen."""
    deadline = time.monotonic() + COMMIT_BOUND
    first: int | None = None
    offsets: dict[tuple[str, int], int] = {}
    while time.monotonic() < deadline and process.poll() is None:
        offsets = {p: o for p, o in committed(admin, group).items() if p[0] == topic}
        if len(offsets) == 2 and first is None:
            first = sum(offsets.values())
            deadline = time.monotonic() + COMMIT_BOUND
        elif first is not None and sum(offsets.values()) > first:
            return None
        time.sleep(0.5)
    return f"committed {offsets} (first complete commit: {first})"


@pytest.mark.timeout(STARTS * (2 * COMMIT_BOUND + 40))
def test_ten_fresh_single_collector_starts_all_commit(
    kafka_broker: KafkaBroker, flowing: tuple[str, str], tmp_path: Path
) -> None:
    predictions, labels = flowing
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    failed: list[str] = []
    try:
        for start in range(STARTS):
            group = f"g-{uuid.uuid4().hex[:8]}"
            kafka = {
                "bootstrap_servers": kafka_broker.bootstrap,
                "group_id": group,
                "predictions_topic": predictions,
                "labels_topic": labels,
                "dlq_topic": f"{predictions}.dlq",
            }
            process = start_collector(tmp_path, kafka, f"start-{start}")
            try:
                failure = keeps_committing(admin, group, predictions, process)
            finally:
                stop_collector(process)
            if failure is not None:
                failed.append(f"start {start} ({group}): {failure}")
    finally:
        admin.close()
    assert not failed, "starts that did not keep committing:\n" + "\n".join(failed)


class SlowAssignor(CopartitionedAssignor):
    """The collector's assignor, taking as long as it may on a loaded machine."""

    def assign(self, cluster: Any, members: Sequence[Any]) -> dict[str, Any]:
        time.sleep(0.5)
        return super().assign(cluster, members)


def test_a_join_round_longer_than_a_poll_still_completes_and_commits(
    kafka_broker: KafkaBroker, flowing: tuple[str, str]
) -> None:
    """A poll that times out while the leader assigns used to leave the member rebalancing."""
    predictions, labels = flowing
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    try:
        for _ in range(3):
            group = f"g-{uuid.uuid4().hex[:8]}"
            source = KafkaSource(
                kafka_broker.bootstrap, [predictions, labels], group,
                partition_assignment_strategy=(SlowAssignor,),
            )
            offsets: dict[tuple[str, int], int] = {}
            try:
                deadline = time.monotonic() + 20.0
                while time.monotonic() < deadline and len(offsets) < 2:
                    source.next_batch(1000, 0.2)  # the collector's poll timeout
                    source.commit()
                    offsets = committed(admin, group)
            finally:
                source.close()
            assert sorted(offsets) == [(predictions, 0), (predictions, 1)]
    finally:
        admin.close()
