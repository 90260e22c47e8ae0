"""Cache-miss calibrations on one worker process, so that no batch waits for a null simulation.

A calibrated drift threshold the cache does not hold yet takes seconds to
simulate (:func:`detectors.drift_calibration.simulate_threshold`). In
``driftline collect`` a window that needs one is held by its model version
(:mod:`collector.model_state`) while the simulation runs here, and is judged
when every threshold it needs is stored; later windows of that version wait
behind it, so windows are still judged in order and by the same thresholds as
inline. Replay has no worker: it simulates inline where a window needs it, as
before, so its results do not depend on timing.

Why a process and not a thread: numpy's random generators keep the GIL while
they draw, so a simulation on a thread slowed the batch thread's Python to
about 0.65 of its speed (``bench/calibration_latency.py``). The process is started by ``spawn``
(no fork of a threaded service) on the first cache miss, and :meth:`close`
terminates it, a simulation in progress included, so a stop never waits for one.
A simulation that fails, takes longer than ``timeout`` seconds when a caller
must wait, or finds no worker (one cannot be started, or it was closed) is run
inline instead: the window is late, never judged by another rule.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Hashable, Sequence
from multiprocessing.pool import AsyncResult, Pool

from detectors.drift_calibration import NullRequest, simulate_threshold
from detectors.threshold_cache import ThresholdCache

log = logging.getLogger(__name__)

Running = tuple[NullRequest, ThresholdCache, "AsyncResult[float]"]


class CalibrationWorker:
    """Runs threshold simulations on a background process and stores their results in the caches."""

    def __init__(self, timeout: float = 120.0) -> None:
        self.timeout = timeout
        self._pool: Pool | None = None
        self._running: dict[Hashable, Running] = {}
        self._closed = False

    def missing(self, requests: Sequence[NullRequest], cache: ThresholdCache) -> list[NullRequest]:
        """The requests whose thresholds ``cache`` does not hold yet; those not running are started."""
        self._collect()
        left = {}
        for request in requests:
            ident = _ident(request)
            stored = ident not in self._running and cache.lookup(request.key()) is not None
            if ident in self._running or (not stored and self._submit(ident, request, cache)):
                left[ident] = request
        return list(left.values())

    def wait(self, requests: Sequence[NullRequest], cache: ThresholdCache) -> None:
        """Store every request's threshold in ``cache`` before returning (running ones awaited)."""
        for request in self.missing(requests, cache):
            _, _, result = self._running.pop(_ident(request))
            cache.store(request.key(), self._result(request, result, self.timeout))

    def close(self) -> None:
        """Stop the worker process at once (a running simulation is abandoned)."""
        self._closed = True
        if self._pool is not None:
            self._pool.terminate()
            self._pool = None
        self._running.clear()

    def _submit(self, ident: Hashable, request: NullRequest, cache: ThresholdCache) -> bool:
        """Start a simulation on the worker; False if there is no worker and it ran here instead."""
        try:
            if self._closed:
                raise RuntimeError("the calibration worker is closed")
            if self._pool is None:
                self._pool = self._start()
            result = self._pool.apply_async(simulate_threshold, (request,))
        except Exception as error:  # no worker (cannot start one, closed): simulated here, as inline
            log.warning("no calibration worker (%r): simulating the threshold inline", error)
            cache.store(request.key(), simulate_threshold(request))
            return False
        self._running[ident] = (request, cache, result)
        return True

    def _start(self) -> Pool:
        """The worker: one process, spawned (``bench/calibration_latency.py`` measures a thread here)."""
        return multiprocessing.get_context("spawn").Pool(processes=1)

    def _collect(self) -> None:
        """Store the results of the simulations that have finished."""
        for ident, (request, cache, result) in list(self._running.items()):
            if result.ready():
                del self._running[ident]
                cache.store(request.key(), self._result(request, result, 0.0))

    def _result(self, request: NullRequest, result: AsyncResult[float], timeout: float) -> float:
        """The worker's threshold, or the same threshold simulated here if the worker failed."""
        try:
            return float(result.get(timeout))
        except Exception as error:  # the worker died, timed out or raised: same result, computed here
            log.warning("calibration worker failed (%r): simulating the threshold inline", error)
            started = time.perf_counter()
            value = simulate_threshold(request)
            log.info("inline calibration took %.1f s", time.perf_counter() - started)
            return value


def _ident(request: NullRequest) -> Hashable:
    """What makes two requests the same simulation (the cells' counts, not their values)."""
    return (request.cells.key, request.bucket, request.n_sims, request.seed, request.level)
