"""Performance-threshold fits on a background thread, so that the batch completing a reference
does not wait for them.

Fitting a model version's realized and estimated performance thresholds
bootstraps 2,000 resampled windows of its reference
(:class:`detectors.performance_threshold.PerformanceThresholds`): about 100 ms,
half of the batch that completes an automatic reference
(``bench/reference_batch.py``). In ``driftline collect`` the fits run here
while the batch goes on, and :class:`collector.model_health.ModelHealth` takes
their thresholds when it first needs them (a prediction or label window to
judge), waiting for a fit still running then, or at the end of a batch once a
fit is done. A threshold depends only on the reference, the window size and the
seed, so every window is judged by the thresholds it would have had inline.
Replay has no worker: it fits inline, as before.

Why a thread and not a process like :mod:`collector.calibration_worker`: a fit
is numpy work on (resamples x window) arrays, most of it with the GIL released,
and its statistic is a closure over the reference's arrays that a process would
have to be sent. The closures read only arrays built when the fit is submitted,
so the batch thread changing the model's state meanwhile cannot change them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class ThresholdWorker:
    """Runs threshold fits, one at a time, on one background thread (started on the first fit).

    >>> worker = ThresholdWorker()
    >>> worker.submit(lambda: 6 * 7).result()
    42
    >>> worker.close()
    >>> worker.submit(lambda: 1 + 1).result()  # closed: run at once, in the caller's thread
    2
    """

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False

    def submit(self, fit: Callable[[], T]) -> Future[T]:
        """Start ``fit``; its future. Once closed, ``fit`` runs now and the future is done."""
        if not self._closed:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="driftline-thresholds")
            return self._executor.submit(fit)
        done: Future[T] = Future()
        try:
            done.set_result(fit())
        except Exception as error:  # the caller sees it when taking the result, as from the thread
            done.set_exception(error)
        return done

    def close(self) -> None:
        """Stop taking fits; fits not started are cancelled (their callers are stopping too)."""
        self._closed = True
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
