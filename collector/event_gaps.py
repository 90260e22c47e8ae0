"""The typical gap between a model version's events, in bounded memory, for the replay summary.

Gaps are counted in logarithmic buckets (20 a decade, so a bucket spans 12%)
with their sum; the median is the mean gap of the bucket holding it, so it is
within 12% of the exact median and exact when the gaps are equal. Enough to say
"events are 523 s apart, windows close after 60 s" without keeping every gap.

>>> gaps = EventGaps()
>>> for t in (0.0, 500.0, 1000.0, 1530.0, 2050.0):
...     gaps.add(t)
>>> round(gaps.median() or 0.0)
500
"""

from __future__ import annotations

import math

BUCKETS_PER_DECADE = 20


class EventGaps:
    """Counts of the gaps between consecutive event times (out-of-order events give no gap)."""

    def __init__(self) -> None:
        self.reset()

    def __repr__(self) -> str:
        return f"EventGaps(n={self.n})"

    def reset(self) -> None:
        self.n = 0
        self.zero = 0
        self._last: float | None = None
        self._buckets: dict[int, tuple[int, float]] = {}

    def add(self, event_time: float) -> None:
        last, self._last = self._last, event_time if self._last is None else max(self._last, event_time)
        if last is None or event_time < last:
            return
        gap = event_time - last
        self.n += 1
        if gap <= 0.0:
            self.zero += 1
            return
        bucket = math.floor(math.log10(gap) * BUCKETS_PER_DECADE)
        count, total = self._buckets.get(bucket, (0, 0.0))
        self._buckets[bucket] = (count + 1, total + gap)

    def median(self) -> float | None:
        """The median gap in seconds (``None`` before two events)."""
        if self.n == 0:
            return None
        rank = (self.n + 1) // 2
        if rank <= self.zero:
            return 0.0
        seen = self.zero
        for bucket in sorted(self._buckets):
            count, total = self._buckets[bucket]
            seen += count
            if seen >= rank:
                return total / count
        raise AssertionError("unreachable: the buckets hold every positive gap")
