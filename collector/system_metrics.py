"""The collector's own health: process and host resources sampled with psutil.

:class:`SystemMetrics` writes the ``driftline_process_*`` and
``driftline_host_*`` series of the catalog into the metric store. Call
:meth:`SystemMetrics.update` periodically (the runner's tick) or just before a
scrape; one update costs about a tenth of a millisecond.

Example:

>>> from exporters.store import MetricStore
>>> store = MetricStore()
>>> SystemMetrics(store).update()
>>> store.get("driftline_process_threads", {}) >= 1
True
"""

from __future__ import annotations

import psutil

from exporters.store import MetricStore

NO_LABELS: dict[str, str] = {}


class SystemMetrics:
    """Samples the current process and the host into a :class:`MetricStore`."""

    def __init__(self, store: MetricStore, process: psutil.Process | None = None) -> None:
        self.store = store
        self.process = process if process is not None else psutil.Process()
        self._cpu_seconds_seen = 0.0
        psutil.cpu_percent(interval=None)  # primes the host CPU sample: the first call returns 0

    def update(self) -> None:
        """Write one sample of every process and host metric."""
        self._update_process()
        self._update_host()

    def _update_process(self) -> None:
        with self.process.oneshot():
            times = self.process.cpu_times()
            rss = self.process.memory_info().rss
            threads = self.process.num_threads()
            start = self.process.create_time()
            fds = self.process.num_fds() if hasattr(self.process, "num_fds") else None
        # The store's counters only go up by increments, so add what psutil's running total grew by.
        cpu_seconds = float(times.user + times.system)
        self.store.inc(
            "driftline_process_cpu_seconds_total",
            NO_LABELS,
            max(0.0, cpu_seconds - self._cpu_seconds_seen),
        )
        self._cpu_seconds_seen = max(self._cpu_seconds_seen, cpu_seconds)
        self.store.set("driftline_process_resident_memory_bytes", NO_LABELS, float(rss))
        self.store.set("driftline_process_threads", NO_LABELS, float(threads))
        self.store.set("driftline_process_start_time_seconds", NO_LABELS, float(start))
        if fds is not None:
            self.store.set("driftline_process_open_fds", NO_LABELS, float(fds))

    def _update_host(self) -> None:
        memory = psutil.virtual_memory()
        used = (memory.total - memory.available) / memory.total if memory.total else 0.0
        cpu = psutil.cpu_percent(interval=None) / 100.0
        self.store.set("driftline_host_cpu_ratio", NO_LABELS, cpu)
        self.store.set("driftline_host_memory_used_ratio", NO_LABELS, min(1.0, max(0.0, used)))
