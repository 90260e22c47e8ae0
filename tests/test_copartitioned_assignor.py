"""The collector's partition assignor keeps a model's predictions and labels on one collector.

These tests call the assignor as the group leader does, with kafka-python's own
subscription and assignment structures; the cluster is a two-method stand-in
(the assignor reads only ``topics()`` and ``partitions_for_topic()``). The real
broker round trip is ``tests/test_kafka_scale_out.py``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pytest
from kafka.protocol.consumer.metadata import ConsumerProtocolSubscription

from collector.copartitioned_assignor import CopartitionedAssignor

PREDICTIONS, LABELS = "driftline.predictions", "driftline.labels"


class Cluster:
    """Stand-in for kafka-python's ClusterMetadata: partitions per topic."""

    def __init__(self, partitions: dict[str, int]) -> None:
        self.partitions = partitions

    def topics(self, exclude_internal_topics: bool = True) -> set[str]:
        return set(self.partitions)

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        count = self.partitions.get(topic)
        return None if count is None else set(range(count))


@dataclass
class Member:
    member_id: str
    metadata: Any
    group_instance_id: str | None = None


def member(member_id: str, owned: dict[str, list[int]] | None = None) -> Member:
    sub_tp = ConsumerProtocolSubscription.TopicPartition
    metadata = ConsumerProtocolSubscription(
        version=1,
        topics=sorted([PREDICTIONS, LABELS]),
        user_data=b"",
        owned_partitions=[sub_tp(topic=t, partitions=ps) for t, ps in (owned or {}).items()],
    )
    return Member(member_id, metadata)


def assigned(assignment: dict[str, Any]) -> dict[str, dict[str, set[int]]]:
    """member -> topic -> partition numbers."""
    result: dict[str, dict[str, set[int]]] = {}
    for member_id, protocol_assignment in assignment.items():
        topics: dict[str, set[int]] = {PREDICTIONS: set(), LABELS: set()}
        for tp in protocol_assignment.partitions():
            topics[tp.topic].add(tp.partition)
        result[member_id] = topics
    return result


def test_two_new_members_split_partition_numbers_and_get_the_same_numbers_of_both_topics() -> None:
    result = assigned(CopartitionedAssignor().assign(Cluster({PREDICTIONS: 4, LABELS: 4}), [
        member("a"), member("b"),
    ]))
    for topics in result.values():
        assert topics[PREDICTIONS] == topics[LABELS]
        assert len(topics[PREDICTIONS]) == 2
    assert result["a"][PREDICTIONS] | result["b"][PREDICTIONS] == {0, 1, 2, 3}
    assert not result["a"][PREDICTIONS] & result["b"][PREDICTIONS]


def test_a_joining_member_takes_half_of_the_partition_numbers_in_two_cooperative_rounds() -> None:
    """The case plain cooperative-sticky gets wrong: one member owns all 8 partitions, a second
    joins. Balancing by partition count alone may move all 4 predictions partitions."""
    cluster = Cluster({PREDICTIONS: 4, LABELS: 4})
    everything = {PREDICTIONS: [0, 1, 2, 3], LABELS: [0, 1, 2, 3]}
    first = assigned(CopartitionedAssignor().assign(cluster, [member("a", everything), member("b")]))
    kept = first["a"][PREDICTIONS]
    assert len(kept) == 2 and first["a"][LABELS] == kept
    assert first["b"] == {PREDICTIONS: set(), LABELS: set()}  # moving partitions wait for round 2

    owned = {PREDICTIONS: sorted(kept), LABELS: sorted(kept)}
    second = assigned(CopartitionedAssignor().assign(cluster, [member("a", owned), member("b")]))
    assert second["a"] == {PREDICTIONS: kept, LABELS: kept}
    assert second["b"] == {PREDICTIONS: {0, 1, 2, 3} - kept, LABELS: {0, 1, 2, 3} - kept}


def test_a_partition_another_member_still_owns_is_held_back() -> None:
    cluster = Cluster({PREDICTIONS: 2, LABELS: 2})
    members = [member("a", {PREDICTIONS: [0, 1]}), member("b", {LABELS: [0, 1]})]
    result = assigned(CopartitionedAssignor().assign(cluster, members))
    for member_id, topics in result.items():
        other = "b" if member_id == "a" else "a"
        assert not topics[LABELS] & result[other][LABELS]
        if member_id == "a":
            assert not topics[LABELS] & {0, 1}, "b still owns the labels partitions"
        else:
            assert not topics[PREDICTIONS] & {0, 1}, "a still owns the predictions partitions"


def test_topics_with_different_partition_counts_fall_back_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cluster = Cluster({PREDICTIONS: 4, LABELS: 2})
    with caplog.at_level(logging.WARNING, logger="collector.copartitioned_assignor"):
        result = assigned(CopartitionedAssignor().assign(cluster, [member("a"), member("b")]))
    assert "different partition counts" in caplog.text
    every = [(t, p) for topics in result.values() for t, ps in topics.items() for p in ps]
    assert sorted(every) == sorted([(PREDICTIONS, p) for p in range(4)] + [(LABELS, p) for p in range(2)])
