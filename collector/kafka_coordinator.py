"""A group coordinator that finishes a join round it started, so a member never stays rebalancing.

kafka-python 3.0's ``join_group_async`` loops ``while need_rejoin()`` and, when
a poll's time runs out, leaves the JoinGroup/SyncGroup task running on its IO
thread. The leader's ``_perform_assignment`` records the metadata snapshot,
which clears the "metadata changed" reason to rejoin while the task is still
running. The next poll then sees no reason to rejoin and never awaits the task:
the member stays ``REBALANCING``, its new assignment is never applied and
every commit fails with ``RebalanceInProgressError`` for as long as it runs,
while fetching goes on with the old assignment. A single fresh collector hit
this whenever its second join (made when the metadata refreshed right after
the first join) took longer than one poll: one start in four on a loaded machine.

The Java client avoids it by rejoining while a join is needed *or pending*
(``rejoinNeededOrPending``), as kafka-python 2.x did (dpkp/kafka-python#1695);
:class:`PendingJoinCoordinator` restores that rule.
"""

from __future__ import annotations

from kafka import KafkaConsumer
from kafka.coordinator.consumer import ConsumerCoordinator


class PendingJoinCoordinator(ConsumerCoordinator):
    """The consumer coordinator, rejoining while a join round is still pending."""

    def need_rejoin(self) -> bool:
        pending = self._join_task is not None and self._subscription.partitions_auto_assigned()
        return bool(super().need_rejoin() or pending)


def complete_pending_joins(consumer: KafkaConsumer) -> None:
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
