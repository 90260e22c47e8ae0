"""Segments and fairness: traffic, positive-prediction rate and accuracy per segment value.

For each configured segment attribute (a key of the events' ``segments``),
per value: the events (``driftline_segment_events_total``), the share predicted
positive (``driftline_segment_positive_rate``) and, over labelled events, the
accuracy (``driftline_segment_accuracy``). Across the values of one attribute:
the disparate impact ratio, lowest over highest positive rate
(``driftline_fairness_disparate_impact``; 1 when every rate is 0), and the
demographic parity difference, highest minus lowest
(``driftline_fairness_parity_difference``).

Label sets stay bounded: the first ``max_values`` distinct values of an
attribute keep their own series for the evaluator's life; later new values
are folded into ``__other__`` and counted in :attr:`FairnessResult.folded`
(for ``driftline_limit_exceeded_total{kind="segment_value"}``). An event
without the attribute counts as ``__missing__``. Neither pseudo-value takes
part in the disparity measures, nor does a value with fewer than
``min_events`` events in the window (a rate over a handful of events would
swing the ratio by chance).

>>> evaluator = FairnessEvaluator(["region"], max_values=10, min_events=1)
>>> result = evaluator.evaluate(
...     {"region": ["eu", "eu", "us", "us"]}, [True, False, True, True], [True, True, False, True])
>>> stats = result.segments["region"]
>>> stats.disparate_impact, stats.parity_difference
(0.5, 0.5)
>>> [(v.value, v.events, v.positive_rate, v.accuracy) for v in stats.values]
[('eu', 2, 0.5, 1.0), ('us', 2, 1.0, 0.5)]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

OTHER = "__other__"
MISSING = "__missing__"


@dataclass(frozen=True)
class SegmentValueStats:
    """One segment value in one window."""

    value: str
    events: int
    positive_rate: float
    accuracy: float | None
    """Share correct among the labelled events of this value; ``None`` without any."""
    labelled: int


@dataclass(frozen=True)
class SegmentFairness:
    """One segment attribute in one window."""

    segment: str
    values: tuple[SegmentValueStats, ...]
    disparate_impact: float | None
    """Lowest over highest positive rate; ``None`` with fewer than two eligible values."""
    parity_difference: float | None
    """Highest minus lowest positive rate; ``None`` with fewer than two eligible values."""


@dataclass(frozen=True)
class FairnessResult:
    segments: Mapping[str, SegmentFairness]
    folded: int
    """Events whose value was folded into ``__other__`` in this window (all attributes)."""


class FairnessEvaluator:
    """Per-segment traffic, positive rate and accuracy; disparity across values.

    Parameters
    ----------
    segments
        The segment attributes to break down by.
    max_values
        Distinct values kept per attribute before folding into ``__other__``.
    min_events
        Fewest events for a value to take part in the disparity measures.
    """

    def __init__(self, segments: Sequence[str], max_values: int = 50, min_events: int = 30) -> None:
        if isinstance(segments, str) or not all(isinstance(s, str) and s for s in segments):
            raise ValueError(f"segments must be a list of non-empty names, got {segments!r}")
        if max_values < 1:
            raise ValueError(f"max_values must be >= 1, got {max_values!r}")
        if min_events < 1:
            raise ValueError(f"min_events must be >= 1, got {min_events!r}")
        self.segments = tuple(segments)
        self.max_values = max_values
        self.min_events = min_events
        self.reset()

    def __repr__(self) -> str:
        return (
            f"FairnessEvaluator(segments={self.segments!r}, max_values={self.max_values}, "
            f"min_events={self.min_events})"
        )

    def reset(self) -> None:
        self._known: dict[str, set[str]] = {segment: set() for segment in self.segments}

    def state(self) -> dict[str, list[str]]:
        """The values kept so far per attribute (the rest fold into ``__other__``), as plain data."""
        return {segment: sorted(values) for segment, values in self._known.items()}

    def restore_state(self, state: Mapping[str, Sequence[str]]) -> None:
        """Take back what :meth:`state` returned."""
        self._known = {segment: set(state.get(segment, ())) for segment in self.segments}

    def evaluate(
        self,
        segment_values: Mapping[str, Sequence[str | None]],
        predicted_positive: npt.ArrayLike,
        correct: npt.ArrayLike | None = None,
    ) -> FairnessResult:
        """Break one window down by segment.

        ``segment_values[attribute]`` holds each event's value (``None`` when
        absent); ``correct`` is 1/0 per event, NaN where the event has no label.
        """
        positive = np.asarray(predicted_positive, dtype=bool)
        n = len(positive)
        right = np.full(n, np.nan) if correct is None else np.asarray(correct, dtype=np.float64)
        if right.shape != positive.shape:
            raise ValueError(f"correct has shape {right.shape}, predicted_positive {positive.shape}")
        folded = 0
        result = {}
        for segment in self.segments:
            raw = segment_values.get(segment, [None] * n)
            if len(raw) != n:
                raise ValueError(f"segment {segment!r} has {len(raw)} values for {n} events")
            values, segment_folded = self._fold(segment, raw)
            folded += segment_folded
            result[segment] = self._segment(segment, values, positive, right)
        return FairnessResult(result, folded)

    def _fold(self, segment: str, raw: Sequence[str | None]) -> tuple[npt.NDArray[np.object_], int]:
        known = self._known[segment]
        values = np.empty(len(raw), dtype=object)
        folded = 0
        for i, value in enumerate(raw):
            if value is None:
                values[i] = MISSING
            elif value in known:
                values[i] = value
            elif len(known) < self.max_values:
                known.add(value)
                values[i] = value
            else:
                values[i] = OTHER
                folded += 1
        return values, folded

    def _segment(
        self,
        segment: str,
        values: npt.NDArray[np.object_],
        positive: npt.NDArray[np.bool_],
        right: npt.NDArray[np.float64],
    ) -> SegmentFairness:
        stats = []
        for value in sorted(set(values.tolist())):
            mask = values == value
            labelled = mask & ~np.isnan(right)
            n_labelled = int(np.sum(labelled))
            stats.append(
                SegmentValueStats(
                    value=value,
                    events=int(np.sum(mask)),
                    positive_rate=float(np.mean(positive[mask])),
                    accuracy=float(np.mean(right[labelled])) if n_labelled else None,
                    labelled=n_labelled,
                )
            )
        rates = [
            s.positive_rate
            for s in stats
            if s.value not in (OTHER, MISSING) and s.events >= self.min_events
        ]
        if len(rates) < 2:
            return SegmentFairness(segment, tuple(stats), None, None)
        highest, lowest = max(rates), min(rates)
        impact = lowest / highest if highest > 0 else 1.0
        return SegmentFairness(segment, tuple(stats), impact, highest - lowest)
