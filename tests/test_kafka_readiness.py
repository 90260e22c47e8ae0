"""Readiness of the Kafka source against a real broker: each reason it reports, and the
standby that is ready without partitions. The broker outage is in test_kafka_outage.py."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from kafka.errors import RebalanceInProgressError

from collector.copartitioned_assignor import CopartitionedAssignor
from collector.kafka_source import KafkaSource
from exporters.store import MetricStore
from tests.kafka_fixture import KafkaBroker
from tests.test_kafka_io import new_source, read_all, topic_with_numbered_messages

pytestmark = pytest.mark.integration


class NothingAssignor(CopartitionedAssignor):
    """Assigns nothing, as kafka-python did to a member that joined without topic metadata."""

    def assign(self, cluster: Any, members: Sequence[Any]) -> dict[str, Any]:
        assignment = super().assign(cluster, members)
        return {member: type(a)(a.version, [], b"") for member, a in assignment.items()}


def poll_until(sources: list[KafkaSource], done: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, [s.not_ready_reason() for s in sources]
        for source in sources:
            source.next_batch(100, 0.1)
            source.commit()


def test_a_new_member_is_not_ready_until_it_joined_then_ready(kafka_broker: KafkaBroker) -> None:
    topic = topic_with_numbered_messages(kafka_broker.bootstrap, "ready", 10)
    store = MetricStore()
    source = new_source(kafka_broker.bootstrap, [topic], store=store)
    try:
        assert str(source.not_ready_reason()).startswith("not_joined: ")
        assert store.get("driftline_source_connected", {}) == 0.0
        assert store.get("driftline_commit_failures_total", {}) == 0.0
        read_all(source, 10)
        source.commit()
        assert source.not_ready_reason() is None
        assert store.get("driftline_source_connected", {}) == 1.0
    finally:
        source.close()


def test_failing_commits_make_the_source_not_ready_after_the_stall_time(
    kafka_broker: KafkaBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = topic_with_numbered_messages(kafka_broker.bootstrap, "stall", 10)
    store = MetricStore()
    source = new_source(kafka_broker.bootstrap, [topic], store=store, commit_stall_seconds=1.0)
    try:
        read_all(source, 10)
        real_commit = source._consumer.commit
        failing = {"on": True}

        def commit(**kwargs: object) -> None:
            if failing["on"]:
                raise RebalanceInProgressError("the group is rebalancing")
            real_commit(**kwargs)

        monkeypatch.setattr(source._consumer, "commit", commit)
        source.commit()
        assert source.not_ready_reason() is None  # one failure is no stall yet
        time.sleep(1.2)
        source.commit()
        reason = str(source.not_ready_reason())
        assert reason.startswith("commits_failing: offset commits have failed for 1 s"), reason
        assert store.get("driftline_commit_failures_total", {}) == 2.0
        failing["on"] = False
        source.commit()
        assert source.not_ready_reason() is None
        assert store.get("driftline_commit_failures_total", {}) == 2.0
    finally:
        source.close()


def test_the_only_member_without_partitions_is_not_ready(kafka_broker: KafkaBroker) -> None:
    topic = topic_with_numbered_messages(kafka_broker.bootstrap, "nothing", 10)
    source = new_source(
        kafka_broker.bootstrap, [topic], partition_assignment_strategy=(NothingAssignor,)
    )
    try:
        poll_until([source], lambda: not str(source.not_ready_reason()).startswith("not_joined"))
        assert source.assignment() == frozenset()
        assert source.not_ready_reason() == (
            f"no_partitions: none of the 1 partitions of {topic} is assigned, "
            "and this is the group's only member"
        )
    finally:
        source.close()


def test_a_standby_member_without_partitions_is_ready(kafka_broker: KafkaBroker) -> None:
    topic = topic_with_numbered_messages(kafka_broker.bootstrap, "standby", 10)
    first = new_source(kafka_broker.bootstrap, [topic])
    second = KafkaSource(kafka_broker.bootstrap, [topic], first.group_id)
    sources = [first, second]
    try:
        poll_until(
            sources,
            lambda: all(s.not_ready_reason() is None for s in sources)
            and len(first.assignment() | second.assignment()) == 1,
        )
        holder, standby = sorted(sources, key=lambda s: len(s.assignment()), reverse=True)
        assert holder.assignment() == {(topic, 0)} and standby.assignment() == frozenset()
        for _ in range(10):  # stays ready through further polls
            for source in sources:
                source.next_batch(100, 0.1)
            assert standby.not_ready_reason() is None
    finally:
        first.close()
        second.close()
