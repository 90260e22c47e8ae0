"""Serving instances seen through their heartbeats: up, down, and their health.

The pipeline hands every accepted :class:`~driftline.schema.Heartbeat` to
:meth:`InstanceTracker.observe` and calls :meth:`InstanceTracker.check` on
every tick. ``now`` is event time in replay and the wall clock in ``collect``
(docs/contracts.md#counting-and-windows), so a replay's up/down history never depends on how
fast it ran.

The tracker writes ``driftline_instance_*`` series: ``up`` is 1 after a
heartbeat and 0 once none has arrived for ``timeout_seconds``; an instance
that has been down for ``forget_after_seconds`` loses its series (pods come
and go under new names, and their series must not pile up). At most
``max_instances`` instances per model version are tracked; heartbeats of
further ones are counted in ``driftline_limit_exceeded_total{kind="instance"}``.

Example:

>>> from driftline.schema import Heartbeat
>>> from exporters.store import MetricStore
>>> store = MetricStore()
>>> tracker = InstanceTracker(store, timeout_seconds=30.0)
>>> tracker.observe(Heartbeat(model="m", model_version="1", instance="a"), now=100.0)
True
>>> labels = {"model": "m", "model_version": "1", "instance": "a"}
>>> store.get("driftline_instance_up", labels)
1.0
>>> [key.instance for key in tracker.check(now=131.0)]
['a']
>>> store.get("driftline_instance_up", labels)
0.0
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from driftline.schema import Heartbeat

from collector.config import Config
from exporters.store import MetricStore


@dataclass(frozen=True, order=True)
class InstanceKey:
    """One serving instance of one model version."""

    model: str
    model_version: str
    instance: str

    def labels(self) -> dict[str, str]:
        return {"model": self.model, "model_version": self.model_version, "instance": self.instance}


@dataclass(frozen=True)
class InstanceStatus:
    """What the tracker knows about one instance (for status pages)."""

    key: InstanceKey
    up: bool
    last_seen: float


@dataclass
class _Instance:
    last_seen: float
    up: bool = True
    down_since: float | None = None
    requests_total: float | None = None
    errors_total: float | None = None


class InstanceTracker:
    """Tracks serving instances from heartbeats and writes their series into a store."""

    def __init__(
        self,
        store: MetricStore,
        *,
        timeout_seconds: float = 30.0,
        forget_after_seconds: float = 3600.0,
        max_instances: int = 100,
        count_limit: Callable[[str], None] | None = None,
    ) -> None:
        if not timeout_seconds > 0:
            raise ValueError(f"timeout_seconds must be > 0, got {timeout_seconds}")
        if not forget_after_seconds > 0:
            raise ValueError(f"forget_after_seconds must be > 0, got {forget_after_seconds}")
        if max_instances < 1:
            raise ValueError(f"max_instances must be >= 1, got {max_instances}")
        self.store = store
        self.timeout_seconds = timeout_seconds
        self.forget_after_seconds = forget_after_seconds
        self.max_instances = max_instances
        self.count_limit = count_limit or self._count_limit
        """Counts one refusal of ``kind`` (the pipeline attributes it to the message's partition)."""
        self.reset()

    @classmethod
    def from_config(
        cls, store: MetricStore, config: Config, count_limit: Callable[[str], None] | None = None
    ) -> InstanceTracker:
        """The tracker configured under ``instances:`` and ``limits.max_instances``."""
        return cls(
            store,
            timeout_seconds=config.instances.heartbeat_timeout_seconds,
            forget_after_seconds=config.instances.forget_after_seconds,
            max_instances=config.limits.max_instances,
            count_limit=count_limit,
        )

    def reset(self) -> None:
        """Forget every instance (their series stay in the store until removed)."""
        self._instances: dict[InstanceKey, _Instance] = {}
        self._per_version: dict[tuple[str, str], int] = {}

    def observe(self, heartbeat: Heartbeat, now: float) -> bool:
        """Record one heartbeat at time ``now``; False if refused by ``max_instances``."""
        key = InstanceKey(heartbeat.model, heartbeat.model_version, heartbeat.instance)
        state = self._instances.get(key)
        if state is None:
            state = self._admit(key, now)
            if state is None:
                return False
        state.last_seen = max(state.last_seen, now)
        state.up, state.down_since = True, None
        self._write(key, state, heartbeat)
        return True

    def check(self, now: float) -> list[InstanceKey]:
        """Mark instances silent for ``timeout_seconds`` down; return the ones that just went down.

        Instances down for ``forget_after_seconds`` are forgotten and their series removed.
        """
        went_down: list[InstanceKey] = []
        for key, state in list(self._instances.items()):
            if state.up and now - state.last_seen >= self.timeout_seconds:
                state.up, state.down_since = False, now
                self.store.set("driftline_instance_up", key.labels(), 0.0)
                went_down.append(key)
            elif self._forgettable(state, now):
                self._forget(key)
        return sorted(went_down)

    def forget_model_version(self, model: str, model_version: str) -> None:
        """Drop a retired model version's instances and their series."""
        version = (model, model_version)
        for key in [k for k in self._instances if (k.model, k.model_version) == version]:
            self._forget(key)

    def statuses(self) -> list[InstanceStatus]:
        """Every tracked instance, sorted by model, version and name."""
        return [
            InstanceStatus(key, state.up, state.last_seen)
            for key, state in sorted(self._instances.items())
        ]

    def _forgettable(self, state: _Instance, now: float) -> bool:
        down_since = state.down_since
        return down_since is not None and now - down_since >= self.forget_after_seconds

    def _admit(self, key: InstanceKey, now: float) -> _Instance | None:
        version = (key.model, key.model_version)
        if self._per_version.get(version, 0) >= self.max_instances:
            self.count_limit("instance")
            return None
        self._per_version[version] = self._per_version.get(version, 0) + 1
        state = _Instance(last_seen=now)
        self._instances[key] = state
        return state

    def _count_limit(self, kind: str) -> None:
        self.store.inc("driftline_limit_exceeded_total", {"kind": kind})

    def _forget(self, key: InstanceKey) -> None:
        del self._instances[key]
        version = (key.model, key.model_version)
        self._per_version[version] -= 1
        if not self._per_version[version]:
            del self._per_version[version]
        for name in _SERIES:
            self.store.remove(name, key.labels())

    def _write(self, key: InstanceKey, state: _Instance, heartbeat: Heartbeat) -> None:
        labels = key.labels()
        self.store.set("driftline_instance_up", labels, 1.0)
        last_seen = state.last_seen
        self.store.set("driftline_instance_last_heartbeat_timestamp_seconds", labels, last_seen)
        if heartbeat.cpu_ratio is not None:
            self.store.set("driftline_instance_cpu_ratio", labels, heartbeat.cpu_ratio)
        if heartbeat.rss_bytes is not None:
            self.store.set("driftline_instance_resident_memory_bytes", labels, heartbeat.rss_bytes)
        if heartbeat.uptime_seconds is not None:
            self.store.set("driftline_instance_uptime_seconds", labels, heartbeat.uptime_seconds)
        if heartbeat.requests_total is not None:
            grown = _growth(state.requests_total, heartbeat.requests_total)
            self.store.inc("driftline_instance_requests_total", labels, grown)
            state.requests_total = heartbeat.requests_total
        if heartbeat.errors_total is not None:
            grown = _growth(state.errors_total, heartbeat.errors_total)
            self.store.inc("driftline_instance_errors_total", labels, grown)
            state.errors_total = heartbeat.errors_total


def _growth(previous: float | None, current: float) -> float:
    """How much an instance's own counter grew since its previous heartbeat.

    The first heartbeat seen counts 0: what the instance served before the
    collector saw it would otherwise land in one scrape interval as a spike
    of ``rate()`` (every collector restart would do it). A drop means the
    instance restarted from zero, so all of ``current`` is new.
    """
    if previous is None:
        return 0.0
    return current if current < previous else current - previous


_SERIES = (
    "driftline_instance_up",
    "driftline_instance_last_heartbeat_timestamp_seconds",
    "driftline_instance_cpu_ratio",
    "driftline_instance_resident_memory_bytes",
    "driftline_instance_uptime_seconds",
    "driftline_instance_requests_total",
    "driftline_instance_errors_total",
)
