"""Measure the serving process's health for heartbeat events, and tick on a thread.

CPU comes from :func:`time.process_time` (all threads of this process), so it
needs nothing outside the standard library. Resident memory needs psutil (the
``heartbeat`` extra); without it, samples carry ``rss_bytes=None``.

>>> probe = ProcessProbe()
>>> sample = probe.sample()
>>> 0.0 <= sample.cpu_ratio <= 1.0 and sample.uptime_seconds >= 0.0
True
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("driftline.heartbeat")


@dataclass(frozen=True, slots=True)
class ProcessSample:
    """One measurement of this process.

    ``cpu_ratio`` is the CPU time used since the previous sample divided by the
    wall time and the number of usable cores, clipped to [0, 1].
    """

    cpu_ratio: float
    rss_bytes: float | None
    uptime_seconds: float


class ProcessProbe:
    """Samples CPU share, resident memory and uptime of the current process.

    ``uptime_seconds`` counts from the probe's creation. ``has_psutil`` tells
    whether memory can be measured.
    """

    def __init__(self) -> None:
        self._process = _psutil_process()
        self._cores = _usable_cores()
        self._started = time.monotonic()
        self._last_wall = self._started
        self._last_cpu = time.process_time()
        self._lock = threading.Lock()

    @property
    def has_psutil(self) -> bool:
        return self._process is not None

    def sample(self) -> ProcessSample:
        """Measure now; the CPU share covers the time since the previous call."""
        with self._lock:
            wall, cpu = time.monotonic(), time.process_time()
            elapsed = wall - self._last_wall
            used = cpu - self._last_cpu
            self._last_wall, self._last_cpu = wall, cpu
        ratio = used / (elapsed * self._cores) if elapsed > 0 else 0.0
        return ProcessSample(
            cpu_ratio=min(1.0, max(0.0, ratio)),
            rss_bytes=self._rss_bytes(),
            uptime_seconds=wall - self._started,
        )

    def _rss_bytes(self) -> float | None:
        if self._process is None:
            return None
        try:
            return float(self._process.memory_info().rss)
        except Exception:  # psutil.Error and OSError: the sample just lacks memory
            logger.debug("psutil could not read memory_info", exc_info=True)
            return None


class Ticker:
    """Calls ``action`` every ``interval`` seconds on a daemon thread until stopped.

    An exception from ``action`` is logged and the ticking goes on.
    """

    def __init__(self, interval: float, action: Callable[[], None], *, name: str) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval}")
        self.interval = interval
        self._action = action
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Stop ticking; wait up to ``timeout`` seconds for a running action. Safe twice."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._action()
            except Exception:
                logger.exception("heartbeat action failed; ticking continues")


def _psutil_process() -> Any:
    try:
        import psutil
    except ImportError:
        return None
    return psutil.Process()


def _usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)
