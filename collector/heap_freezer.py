"""Keeping the collector's long-lived state out of the cyclic garbage collector's full collections.

CPython's collector walks every tracked object of the heap in a full
collection, and runs one whenever the objects promoted to its oldest
generation since the last reach a quarter of it. With many models a window's
events wait longer for their window to fill, so more of them are promoted,
and the heap to walk is larger: with 100 models, three full collections of
about 170 ms each in 150,000 messages, 3.4 us a message (docs/benchmarks.md,
"Scaling", "the heap frozen per batch"). Yet the steady state makes no
cyclic garbage (``tests/test_heap_freezer.py`` checks it): its objects die by
reference counting, which a freeze does not stop.

So after every batch the heap is moved to the permanent generation
(``gc.freeze``, constant time); the collections then walk only what the
current batch made. What a rare cycle (an exception's traceback, a retired
version's structures) would leak in the meantime is reclaimed every
``reclaim_every_seconds`` by one full collection of everything.

>>> freezer = HeapFreezer(reclaim_every_seconds=3600.0)
>>> freezer.start()
>>> gc.get_freeze_count() > 0
True
>>> gc.unfreeze()
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class HeapFreezer:
    """Freeze the heap after each batch; collect all of it once every ``reclaim_every_seconds``."""

    def __init__(
        self, reclaim_every_seconds: float = 3600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not reclaim_every_seconds > 0:
            raise ValueError(f"reclaim_every_seconds must be > 0, got {reclaim_every_seconds!r}")
        self.reclaim_every_seconds = reclaim_every_seconds
        self._clock = clock
        self._reclaimed_at = clock()

    def start(self) -> None:
        """Collect what the start-up left and freeze the rest (modules, classes, configuration)."""
        gc.collect()
        gc.freeze()
        self._reclaimed_at = self._clock()

    def after_batch(self) -> None:
        """Freeze what the batch left alive, or, when due, reclaim the whole heap first."""
        if self._clock() - self._reclaimed_at >= self.reclaim_every_seconds:
            self.reclaim()
        else:
            gc.freeze()

    def reclaim(self) -> int:
        """One full collection of the whole heap, then freeze it again; the unreachable objects found."""
        started = time.perf_counter()
        gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        self._reclaimed_at = self._clock()
        log.info(
            "garbage collection of the whole heap: %d unreachable objects, %.0f ms",
            found,
            (time.perf_counter() - started) * 1000,
        )
        return found
