"""Report renders on their own bounded worker threads, apart from the threads that answer scrapes.

An Evidently render takes seconds of CPU; running it on a request thread would
let a few report views hold connection slots that Prometheus needs. Here at
most ``workers`` renders run and as many wait; one more is refused at once
(:class:`RenderBusy`, answered 503 with Retry-After), and a caller stops
waiting after ``timeout`` seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor


class RenderBusy(Exception):
    """Every render worker is busy and the waiting room is full."""


class RenderPool:
    """A bounded pool for report renders; close it with :meth:`close`."""

    def __init__(self, workers: int, timeout: float) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="driftline-render")
        self._slots = threading.BoundedSemaphore(2 * workers)
        self._timeout = timeout

    def render(self, renderer: Callable[[], str | None]) -> str | None:
        """The renderer's page; raises RenderBusy when full, TimeoutError when it takes too long."""
        if not self._slots.acquire(blocking=False):
            raise RenderBusy
        try:
            future = self._executor.submit(renderer)
        except RuntimeError:  # closed
            self._slots.release()
            raise RenderBusy from None
        future.add_done_callback(self._release)
        return future.result(timeout=self._timeout)

    def _release(self, _: Future[str | None]) -> None:
        self._slots.release()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
