"""A cooperative-sticky partition assignor that keeps the predictions and labels topics co-partitioned.

Events are keyed by model, so a model's predictions and its labels land on the
same partition number of the two topics (when both have the same partition
count). The label join needs both on the same collector, but kafka-python's
``CooperativeStickyAssignor`` balances the count of partitions over all topics
together: with two collectors and 4 + 4 partitions it may give one all
predictions partitions and the other all labels partitions, and no label would
ever meet its prediction.

This assignor runs the cooperative-sticky algorithm on one topic (the first
subscribed topic by name) and gives each member the same partition numbers of
every other topic: stickiness and incremental (KIP-429) rebalancing are kept,
per partition number. A partition still owned by another member is held back
for the follow-up rebalance, as the parent does. Topics whose partition counts
differ cannot be co-partitioned; then the parent's assignment is used and a
warning says why.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
from kafka.protocol.consumer.metadata import ConsumerProtocolAssignment
from kafka.structs import TopicPartition

log = logging.getLogger(__name__)


class _OneTopicCluster:
    """The two cluster calls the sticky algorithm makes, restricted to one topic."""

    def __init__(self, cluster: Any, topic: str) -> None:
        self._cluster = cluster
        self._topic = topic

    def topics(self, exclude_internal_topics: bool = True) -> set[str]:
        return {self._topic}

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        if topic != self._topic:
            return None
        partitions: set[int] | None = self._cluster.partitions_for_topic(topic)
        return partitions


class _OneTopicMember:
    """A group member as the parent assignor reads it, with only the lead topic left."""

    def __init__(self, member: Any, topic: str) -> None:
        self.member_id = member.member_id
        self.group_instance_id = getattr(member, "group_instance_id", None)
        self.metadata = _OneTopicSubscription(member.metadata, topic)


class _OneTopicSubscription:
    def __init__(self, metadata: Any, topic: str) -> None:
        self.topics = [t for t in metadata.topics if t == topic]
        self.owned_partitions = [
            tp for tp in (getattr(metadata, "owned_partitions", None) or ()) if tp.topic == topic
        ]
        self.generation_id = getattr(metadata, "generation_id", -1)


class CopartitionedAssignor(CooperativeStickyAssignor):
    """Cooperative-sticky over partition numbers: partition p of every subscribed topic goes
    to the same member."""

    name = "driftline-copartitioned"

    def assign(self, cluster: Any, members: Sequence[Any]) -> dict[str, Any]:
        topics = sorted({t for member in members for t in member.metadata.topics})
        if not topics:
            return dict(super().assign(cluster, members))
        counts = {t: len(cluster.partitions_for_topic(t) or ()) for t in topics}
        if len(set(counts.values())) != 1:
            log.warning(
                "topics %s have different partition counts %s: predictions and labels of one "
                "model may be read by different collectors",
                topics,
                counts,
            )
            return dict(super().assign(cluster, members))
        lead = topics[0]
        lead_assignment = super().assign(
            _OneTopicCluster(cluster, lead), [_OneTopicMember(m, lead) for m in members]
        )
        owners = {
            tp: m.member_id for m in members for tp in self.parse_member_metadata(m.metadata).partitions
        }
        assignment = {}
        for member in members:
            numbers = [tp.partition for tp in lead_assignment[member.member_id].partitions()]
            by_topic: dict[str, list[int]] = defaultdict(list)
            for topic in sorted(set(member.metadata.topics)):
                for number in numbers:
                    owner = owners.get(TopicPartition(topic, number))
                    if owner is None or owner == member.member_id:
                        by_topic[topic].append(number)
            assignment[member.member_id] = ConsumerProtocolAssignment(
                self.version, sorted((t, sorted(ps)) for t, ps in by_topic.items()), b""
            )
        return assignment
