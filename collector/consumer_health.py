"""What readiness and the consumer metrics know about a consumer group member, whatever its client.

Both Kafka sources (:mod:`collector.kafka_source` on kafka-python and
:mod:`collector.confluent_source` on confluent-kafka) record here, on the
consumer's thread, what they observe after each poll and commit: whether the
group coordinator is reachable, whether a join completed, which partitions are
held, whether commits go through. :meth:`ConsumerHealth.not_ready_reason` reads
it from any thread (the HTTP server's). The metrics it keeps are
``driftline_source_connected``, ``driftline_commit_failures_total`` and
``driftline_consumer_lag{topic,partition}``.

>>> from exporters.store import MetricStore
>>> store = MetricStore()
>>> health = ConsumerHealth("g", ["p", "l"], store, commit_stall_seconds=30.0)
>>> health.not_ready_reason()
'not_joined: not yet a member of consumer group g'
>>> health.observe(connected=True, joined=True, sole_member=True, partition_count=2)
>>> print(health.not_ready_reason())
no_partitions: none of the 2 partitions of p, l is assigned, and this is the group's only member
>>> health.owned = frozenset({("p", 0), ("l", 0)})
>>> health.not_ready_reason() is None
True
>>> store.get(CONNECTED_METRIC, {})
1.0
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from exporters.store import MetricStore

logger = logging.getLogger(__name__)

Partition = tuple[str, int]

LAG_METRIC = "driftline_consumer_lag"
COMMIT_FAILURES_METRIC = "driftline_commit_failures_total"
CONNECTED_METRIC = "driftline_source_connected"


class ConsumerHealth:
    """Group membership, connection and commit health of one consumer, and its metrics."""

    def __init__(
        self,
        group_id: str,
        topics: Sequence[str],
        store: MetricStore | None,
        *,
        commit_stall_seconds: float,
    ) -> None:
        if commit_stall_seconds <= 0:
            raise ValueError(f"commit_stall_seconds must be > 0, got {commit_stall_seconds}")
        self.group_id = group_id
        self.topics = list(topics)
        self.store = store
        self.commit_stall_seconds = commit_stall_seconds
        self.owned: frozenset[Partition] = frozenset()
        """Kept by the rebalance callbacks, so other threads (readiness) may read it."""
        self._commit_failing_since: float | None = None
        """Monotonic time of the first failed commit since the last one that went through."""
        self._connected = False
        self._joined = False
        """A group join completed at least once (a member before that is not ready)."""
        self._sole_member = False
        self._partition_count = 0
        if store is not None:
            store.inc(COMMIT_FAILURES_METRIC, {}, 0.0)
            store.set(CONNECTED_METRIC, {}, 0.0)

    def observe(self, *, connected: bool, joined: bool, sole_member: bool, partition_count: int) -> None:
        """Record the group's state as seen right after a poll (consumer's thread)."""
        if connected != self._connected and self._joined:
            if connected:
                logger.warning("kafka group coordinator reachable again")
            else:
                logger.warning("kafka group coordinator lost: the broker is unreachable")
        self._connected = connected
        self._joined = self._joined or joined
        self._sole_member = sole_member
        self._partition_count = partition_count
        if self.store is not None:
            self.store.set(CONNECTED_METRIC, {}, 1.0 if connected else 0.0)

    def commit_succeeded(self) -> None:
        self._commit_failing_since = None

    def commit_failed(self, exc: Exception) -> None:
        """A commit that retrying may cure: logged, counted, and timed for ``commits_failing``."""
        logger.warning("kafka commit failed (will retry with the next batch): %s", exc)
        if self._commit_failing_since is None:
            self._commit_failing_since = time.monotonic()
        if self.store is not None:
            self.store.inc(COMMIT_FAILURES_METRIC, {})

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        if self.store is not None:
            self.store.set(LAG_METRIC, _lag_labels(topic, partition), max(0, lag))

    def remove_lag(self, topic: str, partition: int) -> None:
        if self.store is not None:
            self.store.remove(LAG_METRIC, _lag_labels(topic, partition))

    def not_ready_reason(self) -> str | None:
        """Why this member is not ready, as ``reason: explanation``; None when ready (any thread).

        Reasons: ``not_joined`` (no group join completed yet), ``kafka_unreachable``
        (the group coordinator cannot be reached), ``commits_failing`` (for longer
        than ``commit_stall_seconds``), ``no_partitions`` (none assigned while the
        topics have some and this is the group's only member; a member whose
        partitions are all held by others is a ready standby).
        """
        if not self._joined:
            return f"not_joined: not yet a member of consumer group {self.group_id}"
        if not self._connected:
            return "kafka_unreachable: the consumer group's coordinator cannot be reached"
        since = self._commit_failing_since
        if since is not None and time.monotonic() - since > self.commit_stall_seconds:
            return (
                f"commits_failing: offset commits have failed for {time.monotonic() - since:.0f} s "
                f"(more than {self.commit_stall_seconds:g} s)"
            )
        if not self.owned and self._partition_count > 0 and self._sole_member:
            return (
                f"no_partitions: none of the {self._partition_count} partitions of "
                f"{', '.join(self.topics)} is assigned, and this is the group's only member"
            )
        return None


def sorted_partitions(partitions: Sequence[Partition]) -> list[Partition]:
    """Distinct ``(topic, partition)`` pairs in order (for callbacks and logs)."""
    return sorted(set(partitions))


def partition_names(partitions: Sequence[Partition]) -> str:
    return ", ".join(f"{topic}[{number}]" for topic, number in partitions)


def _lag_labels(topic: str, partition: int) -> dict[str, str]:
    return {"topic": topic, "partition": str(partition)}
