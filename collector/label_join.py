"""Label join: match late ground-truth labels to the predictions they belong to.

One :class:`LabelJoinStore` per model holds a summary of each recent prediction
(:class:`PredictionRecord`), keyed by ``event_id``. A label event joins the
prediction with the same id, whatever topic it came from and in whatever
order; the outcome is one of the three values of
``driftline_labels_total{outcome}``:

- ``joined``: a stored prediction matched; the pair and the delay are returned
  and the prediction leaves the store (a prediction is joined at most once);
- ``expired``: the prediction was seen but aged out, or was evicted to keep
  the store within ``max_entries``, before its label came;
- ``unmatched``: no stored prediction with that id. This includes a second
  label for an id that was already joined (a duplicate): the first label wins,
  the duplicate is counted ``unmatched`` and marked ``duplicate=True`` so the
  caller can tell it apart. It is never joined twice, so a replayed label
  topic cannot double-count performance.

A label whose prediction has not been seen at all (no record, no tombstone)
is *early*: it is held (outcome ``held``, not a metric value) in a third
bounded map of ``max_early`` labels for ``max_early_age_seconds`` after it
arrived, because a backlog may be read labels first. When its prediction is
added, :meth:`LabelJoinStore.add` returns the join; a held label that ages
out or is pushed out by the size bound is only then ``unmatched``
(:meth:`LabelJoinStore.take_unmatched` hands those over to be counted).

Time is event time and comes from the caller (``now``), so a replay gives the
same outcomes whatever the wall clock says. A prediction is kept for
``max_age_seconds`` after its timestamp: a label arriving at
``now - prediction.timestamp <= max_age_seconds`` joins, a later one is
``expired``. Predictions that aged out or were evicted leave a tombstone (its id
only) in a second bounded set of ``max_tombstones`` ids, so that a late label is
counted ``expired`` rather than ``unmatched``; once a tombstone itself is pushed
out, a very late label is ``unmatched``. Memory is therefore bounded by
``max_entries`` records plus ``max_tombstones`` ids.

>>> store = LabelJoinStore(max_entries=1000, max_age_seconds=3600.0)
>>> store.add(PredictionRecord("e1", "v3", 100.0, "1", {"1": 0.8, "0": 0.2}))
>>> result = store.join("e1", label="1", label_timestamp=160.0, now=160.0)
>>> result.outcome, result.delay_seconds
('joined', 60.0)
>>> store.join("e1", label="1", label_timestamp=161.0, now=161.0).outcome
'unmatched'
>>> store.join("e2", label="0", label_timestamp=170.0, now=170.0).outcome
'held'
>>> store.add(PredictionRecord("e2", "v3", 165.0, "0")).outcome
'joined'
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from driftline.schema import Label

from collector.held_predictions import HeldPredictions, Tombstones
from collector.prediction_record import PredictionRecord, Scalar

__all__ = ["OUTCOMES", "EarlyLabel", "JoinResult", "LabelJoinStore", "PredictionRecord", "Scalar"]
Outcome = Literal["joined", "unmatched", "expired", "held"]
OUTCOMES: tuple[Outcome, ...] = ("joined", "unmatched", "expired")
"""The outcomes counted in ``driftline_labels_total`` (``held`` is not final)."""

_JOINED = True
_EXPIRED = False
"""A tombstone's value: whether its prediction left joined (else it aged out or was evicted)."""


@dataclass(frozen=True)
class EarlyLabel:
    """A label held until its prediction arrives."""

    event_id: str
    label: Scalar
    timestamp: float | None
    """The label's own timestamp, if it had one."""
    arrived: float
    """When it was read (the store's time), from which its age counts."""

    def to_list(self) -> list[Any]:
        return [self.event_id, self.label, self.timestamp, self.arrived]

    @classmethod
    def from_list(cls, item: list[Any]) -> EarlyLabel:
        event_id, label, timestamp, arrived = item
        return cls(str(event_id), label, None if timestamp is None else float(timestamp), float(arrived))


class JoinResult(NamedTuple):
    """The outcome of one label event (a named tuple: one is built per label, see
    :mod:`collector.prediction_record`)."""

    outcome: Outcome
    event_id: str
    label: Scalar
    prediction: PredictionRecord | None = None
    """The joined prediction (only when ``outcome == "joined"``)."""
    delay_seconds: float | None = None
    """Label time minus prediction time, at least 0 (only when joined)."""
    duplicate: bool = False
    """A second label for an id that was already joined (counted ``unmatched``)."""


class LabelJoinStore:
    """A bounded map from ``event_id`` to the prediction awaiting its label.

    Parameters
    ----------
    max_entries
        Most predictions held; adding one more evicts the oldest added.
    max_age_seconds
        How long after its timestamp a prediction waits for its label.
    max_tombstones
        Most ids remembered after they left the store (joined, aged out or
        evicted), to tell ``expired`` and duplicate labels from unknown ones.
        Defaults to ``max_entries``.
    max_early
        Most early labels held (0 turns holding off: an early label is
        ``unmatched`` at once); one more pushes the oldest out as ``unmatched``.
    max_early_age_seconds
        How long after it arrived an early label waits for its prediction.
    """

    def __init__(
        self,
        max_entries: int = 100_000,
        max_age_seconds: float = 86_400.0,
        max_tombstones: int | None = None,
        max_early: int = 10_000,
        max_early_age_seconds: float = 3_600.0,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries!r}")
        if not max_age_seconds > 0:
            raise ValueError(f"max_age_seconds must be > 0, got {max_age_seconds!r}")
        if max_tombstones is not None and max_tombstones < 0:
            raise ValueError(f"max_tombstones must be >= 0, got {max_tombstones!r}")
        if max_early < 0:
            raise ValueError(f"max_early must be >= 0, got {max_early!r}")
        if not max_early_age_seconds > 0:
            raise ValueError(f"max_early_age_seconds must be > 0, got {max_early_age_seconds!r}")
        self.max_early = max_early
        self.max_early_age_seconds = max_early_age_seconds
        self.max_entries = max_entries
        self.max_age_seconds = max_age_seconds
        self.max_tombstones = max_entries if max_tombstones is None else max_tombstones
        self.reset()

    def __repr__(self) -> str:
        return (
            f"LabelJoinStore(max_entries={self.max_entries}, "
            f"max_age_seconds={self.max_age_seconds}, max_tombstones={self.max_tombstones}, "
            f"max_early={self.max_early}, max_early_age_seconds={self.max_early_age_seconds})"
        )

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._pending

    def reset(self) -> None:
        self._pending = HeldPredictions()
        self._tombstones = Tombstones(self.max_tombstones)
        self._early: OrderedDict[str, EarlyLabel] = OrderedDict()
        self._unmatched_early = 0
        self.evicted = 0
        """Predictions pushed out by ``max_entries`` before their label (since reset)."""

    @property
    def early(self) -> int:
        """Early labels held now."""
        return len(self._early)

    def add(self, record: PredictionRecord) -> JoinResult | None:
        """Hold a prediction until its label comes; a repeated ``event_id`` keeps the first.

        When an early label for it is held, the two join at once and the join is returned.
        """
        if record.event_id in self._pending or record.event_id in self._tombstones:
            return None
        self._expire_early(record.timestamp)
        early = self._early.pop(record.event_id, None)
        if early is not None:
            self._remember(record.event_id, _JOINED)
            at = early.arrived if early.timestamp is None else early.timestamp
            return JoinResult("joined", early.event_id, early.label, record, max(0.0, at - record.timestamp))
        self._pending.add(record)
        while len(self._pending) > self.max_entries:
            oldest_id = self._pending.pop_oldest()
            self.evicted += 1
            self._remember(oldest_id, _EXPIRED)
        return None

    def join(self, event_id: str, label: Scalar, label_timestamp: float | None, now: float) -> JoinResult:
        """Match one label; ``label_timestamp`` ``None`` means the label arrived at ``now``."""
        self.expire(now)
        record = self._pending.pop(event_id)
        if record is None:
            tombstone = self._tombstones.get(event_id)
            if tombstone is _EXPIRED:
                return JoinResult("expired", event_id, label)
            if tombstone is None and self.max_early > 0 and event_id not in self._early:
                self._hold(EarlyLabel(event_id, label, label_timestamp, now))
                return JoinResult("held", event_id, label)
            duplicate = tombstone is _JOINED or event_id in self._early
            return JoinResult("unmatched", event_id, label, duplicate=duplicate)
        if now - record.timestamp > self.max_age_seconds:
            self._remember(event_id, _EXPIRED)
            return JoinResult("expired", event_id, label)
        self._remember(event_id, _JOINED)
        at = now if label_timestamp is None else label_timestamp
        return JoinResult("joined", event_id, label, record, max(0.0, at - record.timestamp))

    def join_event(self, label: Label, now: float) -> JoinResult:
        """Match one decoded label event (see :meth:`join`)."""
        return self.join(label.event_id, label.label, label.timestamp, now)

    def compact(self) -> None:
        """Pack the predictions added since the last call (:mod:`collector.held_predictions`):
        once per batch, so that a label in the same batch takes its prediction as it came."""
        self._pending.compact()

    def take_unmatched(self) -> int:
        """Early labels that aged out or were pushed out since the last call (now ``unmatched``)."""
        count, self._unmatched_early = self._unmatched_early, 0
        return count

    def _hold(self, early: EarlyLabel) -> None:
        self._early[early.event_id] = early
        while len(self._early) > self.max_early:
            self._early.popitem(last=False)
            self._unmatched_early += 1

    def _expire_early(self, now: float) -> None:
        cutoff = now - self.max_early_age_seconds
        while self._early:
            oldest_id, oldest = next(iter(self._early.items()))
            if oldest.arrived >= cutoff:
                break
            del self._early[oldest_id]
            self._unmatched_early += 1

    def expire(self, now: float) -> int:
        """Drop predictions older than ``max_age_seconds`` at ``now``; return how many.

        Early labels older than ``max_early_age_seconds`` leave too (see
        :meth:`take_unmatched`).

        The scan walks the store in insertion order and stops at the first
        prediction still young enough, so it costs O(expired). A prediction
        that arrived out of order (older than one added before it) leaves a
        little later, but never joins once too old: :meth:`join` checks the
        age of the matched prediction itself.
        """
        self._expire_early(now)
        cutoff = now - self.max_age_seconds
        dropped = 0
        while (oldest := self._pending.oldest()) is not None and not oldest[1] >= cutoff:
            oldest_id = self._pending.pop_oldest()
            self._remember(oldest_id, _EXPIRED)
            dropped += 1
        return dropped

    def next_expiry(self) -> float:
        """The earliest time at which :meth:`expire` drops something (infinity when nothing is held).

        The oldest held prediction's timestamp plus ``max_age_seconds``, or the
        oldest early label's arrival plus ``max_early_age_seconds``, whichever
        comes first: both leave in insertion order.
        """
        due = math.inf
        oldest = self._pending.oldest()
        if oldest is not None:
            due = oldest[1] + self.max_age_seconds
        oldest_early = next(iter(self._early.values()), None)
        if oldest_early is not None:
            due = min(due, oldest_early.arrived + self.max_early_age_seconds)
        return due

    def _remember(self, event_id: str, outcome: bool) -> None:
        self._tombstones.remember(event_id, outcome)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready snapshot for checkpoints (order preserved).

        Held predictions and tombstones are in the compact forms of
        :mod:`collector.held_predictions`.
        """
        return {
            "max_entries": self.max_entries,
            "max_age_seconds": self.max_age_seconds,
            "max_tombstones": self.max_tombstones,
            "max_early": self.max_early,
            "max_early_age_seconds": self.max_early_age_seconds,
            "evicted": self.evicted,
            "unmatched_early": self._unmatched_early,
            "early": [early.to_list() for early in self._early.values()],
            "pending": self._pending.to_dict(),
            "tombstones": self._tombstones.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabelJoinStore:
        """Rebuild a store from :meth:`to_dict`'s output."""
        store = cls(
            max_entries=int(data["max_entries"]),
            max_age_seconds=float(data["max_age_seconds"]),
            max_tombstones=int(data["max_tombstones"]),
            max_early=int(data.get("max_early", 0)),
            max_early_age_seconds=float(data.get("max_early_age_seconds", 3_600.0)),
        )
        for item in data.get("early", []):
            early = EarlyLabel.from_list(item)
            store._early[early.event_id] = early
        store._unmatched_early = int(data.get("unmatched_early", 0))
        store._pending = HeldPredictions.from_dict(data["pending"])
        store._tombstones = Tombstones.from_dict(store.max_tombstones, data["tombstones"])
        store.evicted = int(data.get("evicted", 0))
        return store
