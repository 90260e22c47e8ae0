"""A group coordinator that finishes a join round it started, so a member never stays rebalancing.

kafka-python 3.0's ``join_group_async`` loops ``while need_rejoin()`` and, when
a poll's time runs out, leaves the JoinGroup/SyncGroup task running on its IO
thread. The leader's ``_perform_assignment`` records the metadata snapshot,
which clears the "metadata changed" reason to rejoin while the task is still
running. The next poll then sees no reason to rejoin and never awaits the task:
the member stays ``REBALANCING``, its new assignment is never applied and
every commit fails with ``RebalanceInProgressError`` for as long as it runs,
while fetching goes on with the old assignment. A single fresh collector hits
this when its second join (made when the metadata refreshed right after the
first join) takes longer than one poll: 3 of 13 fresh starts were seen stuck
so; a leader whose assignment takes 0.5 s is stuck every time.

The Java client avoids it by rejoining while a join is needed *or pending*
(``rejoinNeededOrPending``), as kafka-python 2.x did (dpkp/kafka-python#1695);
:class:`PendingJoinCoordinator` restores that rule. It also answers what
readiness needs to know about the group: whether the coordinator is reachable,
whether a join ever completed, and whether this member is the group's only one.
Call its methods from the consumer's thread only.
"""

from __future__ import annotations

from typing import Any

from kafka import KafkaConsumer
from kafka.coordinator.consumer import ConsumerCoordinator


class PendingJoinCoordinator(ConsumerCoordinator):
    """The consumer coordinator, rejoining while a join round is still pending."""

    led_group_size = 0
    """Members of the group when this member last assigned partitions as its leader."""

    def need_rejoin(self) -> bool:
        pending = self._join_task is not None and self._subscription.partitions_auto_assigned()
        return bool(super().need_rejoin() or pending)

    def _perform_assignment(self, leader_id: str, protocol_name: str, members: Any) -> Any:
        self.led_group_size = len(members)
        return super()._perform_assignment(leader_id, protocol_name, members)

    def reachable(self) -> bool:
        """Whether the group coordinator is known and connected (False while the broker is away)."""
        return self.coordinator() is not None

    def joined(self) -> bool:
        """Whether this member is in a stable group generation now."""
        return self.generation_if_stable() is not None

    def partition_count(self, topics: list[str]) -> int:
        """Partitions of ``topics`` in the cached cluster metadata (never a request)."""
        return sum(len(self._cluster.partitions_for_topic(t) or ()) for t in topics)

    def sole_member(self) -> bool:
        """Whether this member led the last assignment and was the group's only member."""
        return bool(self._is_leader) and self.led_group_size == 1


def complete_pending_joins(consumer: KafkaConsumer) -> PendingJoinCoordinator:
    """Make ``consumer``'s coordinator a :class:`PendingJoinCoordinator` (before it joins).

    ``KafkaConsumer`` builds its coordinator itself and takes no class to use, so
    the instance's class is swapped; the attribute the rule reads is checked so
    an upgrade of kafka-python that renames it fails here, not silently.
    """
    coordinator = consumer._coordinator
    if type(coordinator) is not ConsumerCoordinator or not hasattr(coordinator, "_join_task"):
        raise RuntimeError(
            f"unexpected kafka-python coordinator {type(coordinator).__name__}: "
            "collector.kafka_coordinator needs review for this kafka-python version"
        )
    coordinator.__class__ = PendingJoinCoordinator
    assert isinstance(coordinator, PendingJoinCoordinator)
    return coordinator
