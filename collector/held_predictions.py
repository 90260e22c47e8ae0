"""The label join store's memory: predictions awaiting their label, in compact form.

A store holds up to ``labels.max_entries`` predictions per model, and most of
them never get a label (they leave when pushed out), so the size of one held
prediction sets the collector's memory once labels are sparse. A
:class:`~collector.label_join.PredictionRecord` with its probabilities and
segments dicts costs about 0.9 KB; here a held prediction is an ordered-map
entry from its ``event_id`` to one ``bytes`` (little-endian):

- the index of its *shape* in the store's table: the tuple
  ``(model_version, prediction, classes, segments)`` that every prediction of
  the same model version with the same probability classes, segment values
  and (non-float) prediction shares;
- its floats: the timestamp, the probabilities in the shape's class order,
  then the prediction if it is a float.

:meth:`HeldPredictions.pop` rebuilds the record with the same values, so the
join's results do not change. ``bench/join_store_memory.py`` measures both forms.

A record is held as it came until :meth:`HeldPredictions.compact` (the
pipeline calls it once per batch, a checkpoint before it writes): a label
that comes within the same batch as its prediction then takes the record as
it is, neither packed nor rebuilt, and memory between batches is the compact
form's.

>>> held = HeldPredictions()
>>> held.add(PredictionRecord("e1", "v3", 100.0, "1", {"1": 0.75, "0": 0.25}, {"region": "eu"}))
>>> held.add(PredictionRecord("e2", "v3", 101.0, 0.5))
>>> held.compact()
>>> held.oldest()
('e1', 100.0)
>>> held.pop("e1")
PredictionRecord(event_id='e1', model_version='v3', timestamp=100.0, prediction='1', \
probabilities={'1': 0.75, '0': 0.25}, segments={'region': 'eu'})
>>> held.pop("e2").prediction, len(held)
(0.5, 0)
"""

from __future__ import annotations

import base64
import struct
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, cast

from collector.prediction_record import PredictionRecord, Scalar

Shape = tuple[str, Scalar | None, tuple[str, ...] | None, tuple[tuple[str, str], ...] | None]
"""``(model_version, prediction or None when it is a float, probability classes, segments)``."""

_MIN_SHAPES = 4096
"""Shapes the table may hold before it drops those no held prediction has."""
_INDEX = struct.Struct("<I")
_TIMESTAMP = struct.Struct("<d")


def _is_float(prediction: Scalar) -> bool:
    return isinstance(prediction, float)


class HeldPredictions:
    """An insertion-ordered map from ``event_id`` to a compactly held :class:`PredictionRecord`.

    A held prediction is one ``bytes``: its shape's index in the store's table
    (4 bytes), then its floats; one added since the last :meth:`compact` is
    still its record. The table keeps every shape seen until it outgrows the
    predictions held; then it keeps only the shapes in use.
    """

    def __init__(self) -> None:
        self._held: OrderedDict[str, bytes | PredictionRecord] = OrderedDict()
        """Packed, or the record itself while it is fresh."""
        self._fresh: list[str] = []
        """The ids added since the last :meth:`compact`, in order (some may have left since)."""
        self._oldest: tuple[str, float] | None = None
        """:meth:`oldest` while it stands (every label asks); None: to be read again."""
        self._shapes: list[Shape] = []
        self._index: dict[tuple[Shape, type], int] = {}

    def __len__(self) -> int:
        return len(self._held)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._held

    def __iter__(self) -> Iterator[str]:
        return iter(self._held)

    def add(self, record: PredictionRecord) -> None:
        """Hold ``record`` (newest), as it is until :meth:`compact`; the caller checks it is not
        held already."""
        self._held[record.event_id] = record
        self._fresh.append(record.event_id)

    def compact(self) -> None:
        """Pack the records added since the last call (in place: the order does not change)."""
        held = self._held
        for event_id in self._fresh:
            record = held.get(event_id)
            if record is not None and not isinstance(record, bytes):
                held[event_id] = self._compact(record)
        self._fresh = []

    @property
    def fresh(self) -> int:
        """Held records not packed yet."""
        held = self._held
        return len({event_id for event_id in self._fresh if not isinstance(held.get(event_id, b""), bytes)})

    def pop(self, event_id: str) -> PredictionRecord | None:
        """The record of ``event_id``, no longer held, or None if it was not."""
        held = self._held.pop(event_id, None)
        if held is None:
            return None
        if self._oldest is not None and self._oldest[0] == event_id:
            self._oldest = None
        return self._record(event_id, held) if isinstance(held, bytes) else held

    def oldest(self) -> tuple[str, float] | None:
        """The ``event_id`` and timestamp of the prediction held longest, or None when empty."""
        if self._oldest is None:
            for event_id, held in self._held.items():
                if isinstance(held, bytes):
                    self._oldest = event_id, float(_TIMESTAMP.unpack_from(held, _INDEX.size)[0])
                else:
                    self._oldest = event_id, float(held.timestamp)
                break
        return self._oldest

    def pop_oldest(self) -> str:
        """Drop the prediction held longest and return its ``event_id``."""
        event_id, _ = self._held.popitem(last=False)
        self._oldest = None
        return event_id

    def records(self) -> Iterator[PredictionRecord]:
        """Every held record, oldest first (rebuilt, for checkpoints and tests)."""
        for event_id, held in self._held.items():
            yield self._record(event_id, held) if isinstance(held, bytes) else held

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data for checkpoints, in columns: the shape table, the ids, and every
        prediction's bytes one after the other in base64.

        A checkpoint is written every few seconds; columns make a store of
        100,000 predictions a list of the ids it already holds and one string,
        not 100,000 rows of new objects that fragment the heap. Fresh records are packed first.
        """
        self.compact()
        packed = cast("Iterable[bytes]", self._held.values())
        return {
            "shapes": [_shape_to_list(shape) for shape in self._shapes],
            "ids": list(self._held),
            "packed": base64.b64encode(b"".join(packed)).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HeldPredictions:
        """Rebuild from :meth:`to_dict`'s output; damaged data raises ``ValueError``, ``IndexError``..."""
        held = cls()
        held._shapes = [_shape_from_list(item) for item in data["shapes"]]
        held._index = {(shape, type(shape[1])): i for i, shape in enumerate(held._shapes)}
        packed = base64.b64decode(str(data["packed"]), validate=True)
        offset = 0
        for event_id in data["ids"]:
            (shape_index,) = _INDEX.unpack_from(packed, offset)
            end = offset + _INDEX.size + 8 * _floats(held._shapes[shape_index])
            if end > len(packed):
                raise ValueError(f"held prediction {event_id!r}: its floats are cut off")
            held._held[str(event_id)] = packed[offset:end]
            offset = end
        if offset != len(packed) or len(held._held) != len(data["ids"]):
            raise ValueError("held predictions: the bytes do not match the ids")
        return held

    def _compact(self, record: PredictionRecord) -> bytes:
        probabilities, segments, prediction = record.probabilities, record.segments, record.prediction
        floats = [record.timestamp]
        if probabilities is not None:
            floats.extend(probabilities.values())
        if _is_float(prediction):
            floats.append(float(prediction))
        shape: Shape = (
            record.model_version,
            None if _is_float(prediction) else prediction,
            None if probabilities is None else tuple(probabilities),
            None if segments is None else tuple(segments.items()),
        )
        return _pack(self._shape_index(shape), floats)

    def _shape_index(self, shape: Shape) -> int:
        """The index of ``shape`` in the table (the prediction's type counts: ``True`` is not ``1``)."""
        key = (shape, type(shape[1]))
        index = self._index.get(key)
        if index is None:
            if len(self._shapes) >= max(_MIN_SHAPES, 2 * len(self._held)):
                self._keep_shapes_in_use()
            index = self._index[key] = len(self._shapes)
            self._shapes.append(shape)
        return index

    def _keep_shapes_in_use(self) -> None:
        """Drop the shapes no held prediction has, renumbering the others (O(held), rarely)."""
        shapes, self._shapes, self._index = self._shapes, [], {}
        for event_id, packed in list(self._held.items()):
            if not isinstance(packed, bytes):
                continue  # fresh: it has no shape yet
            shape_index, floats = _unpack(packed)
            shape = shapes[shape_index]
            index = self._index.setdefault((shape, type(shape[1])), len(self._shapes))
            if index == len(self._shapes):
                self._shapes.append(shape)
            self._held[event_id] = _pack(index, list(floats))

    def _record(self, event_id: str, packed: bytes) -> PredictionRecord:
        shape_index, floats = _unpack(packed)
        version, prediction, classes, segments = self._shapes[shape_index]
        n = 0 if classes is None else len(classes)
        return PredictionRecord(
            event_id,
            version,
            floats[0],
            floats[-1] if prediction is None else prediction,
            None if classes is None else dict(zip(classes, floats[1 : 1 + n], strict=True)),
            None if segments is None else dict(segments),
        )


class Tombstones:
    """The ids of predictions that left the store, oldest first, each with whether it was joined.

    At most ``limit`` (0: none). A plain dict and a deque of the ids in order
    cost about half an ``OrderedDict``; the store remembers an id only once
    it left, so the order is first in, first out.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._joined: dict[str, bool] = {}
        self._order: deque[str] = deque()

    def __len__(self) -> int:
        return len(self._joined)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._joined

    def get(self, event_id: str) -> bool | None:
        """Whether ``event_id`` left joined (True) or aged out or was evicted (False); None if unknown."""
        return self._joined.get(event_id)

    def remember(self, event_id: str, joined: bool) -> None:
        """Remember ``event_id`` as the newest; the oldest beyond ``limit`` are forgotten."""
        if self.limit == 0:
            return
        if event_id in self._joined:
            self._order.remove(event_id)
        self._joined[event_id] = joined
        self._order.append(event_id)
        while len(self._order) > self.limit:
            del self._joined[self._order.popleft()]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the ids, oldest first, and one character each (``1``: joined, ``0``: not)."""
        return {
            "ids": list(self._order),
            "joined": "".join("1" if self._joined[i] else "0" for i in self._order),
        }

    @classmethod
    def from_dict(cls, limit: int, data: Mapping[str, Any]) -> Tombstones:
        """Rebuild from :meth:`to_dict`'s output (``ValueError`` if the two lists do not match)."""
        ids, joined = data["ids"], str(data["joined"])
        if len(ids) != len(joined) or set(joined) - {"0", "1"} or len(set(ids)) != len(ids):
            raise ValueError(f"{len(ids)} tombstones but outcomes {joined[:20]!r}...")
        tombstones = cls(limit)
        for event_id, kind in zip(ids, joined, strict=True):
            tombstones.remember(str(event_id), kind == "1")
        return tombstones


def _floats(shape: Shape) -> int:
    """How many floats a record of ``shape`` packs."""
    _, prediction, classes, _ = shape
    return 1 + (0 if classes is None else len(classes)) + (1 if prediction is None else 0)


_LAYOUTS: dict[int, struct.Struct] = {}
"""The compiled layout of a held prediction with so many floats (a handful of counts in use)."""


def _layout(floats: int) -> struct.Struct:
    layout = _LAYOUTS.get(floats)
    if layout is None:
        layout = _LAYOUTS[floats] = struct.Struct(f"<I{floats}d")
    return layout


def _pack(shape_index: int, floats: list[float]) -> bytes:
    return _layout(len(floats)).pack(shape_index, *floats)


def _unpack(packed: bytes) -> tuple[int, tuple[float, ...]]:
    values = _layout((len(packed) - _INDEX.size) // 8).unpack(packed)
    return values[0], values[1:]


def _shape_to_list(shape: Shape) -> list[Any]:
    version, prediction, classes, segments = shape
    pairs = None if segments is None else [list(pair) for pair in segments]
    return [version, prediction, None if classes is None else list(classes), pairs]


def _shape_from_list(item: list[Any]) -> Shape:
    version, prediction, classes, segments = item
    return (
        str(version),
        prediction,
        None if classes is None else tuple(str(c) for c in classes),
        None if segments is None else tuple((str(name), str(value)) for name, value in segments),
    )
