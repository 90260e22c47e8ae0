"""A bounded sample of each embedding's vectors, one float32 array per name.

A window and an automatic reference keep at most ``max_rows`` vectors of each
embedding name (reservoir sampling: every vector seen has the same chance to
be kept), so a 1,024-dimension embedding costs at most 4 MB per buffer
whatever the number of events. The slot the n-th vector may replace is a hash
of n, not a draw from a random stream, so a buffer restored from a checkpoint
goes on keeping exactly the vectors the uninterrupted one would.

>>> buffer = EmbeddingBuffer(max_rows=2)
>>> for value in (1.0, 2.0, 3.0):
...     buffer.add({"query": (value, -value)})
>>> buffer.arrays()["query"].shape, buffer.seen["query"]
((2, 2), 3)
>>> restored = EmbeddingBuffer.from_dict(buffer.to_dict())
>>> restored.arrays()["query"].tolist() == buffer.arrays()["query"].tolist()
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

MAX_ROWS = 1000
"""Vectors kept per name in a window or an automatic reference."""

Vectors = npt.NDArray[np.float32]
_MASK = (1 << 64) - 1


class EmbeddingBuffer:
    """Reservoir samples of vectors per embedding name, stored as float32 rows."""

    def __init__(self, max_rows: int = MAX_ROWS) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows must be >= 1, got {max_rows!r}")
        self.max_rows = max_rows
        self.seen: dict[str, int] = {}
        self._rows: dict[str, Vectors] = {}

    def __bool__(self) -> bool:
        return bool(self.seen)

    def add(self, embeddings: Mapping[str, Sequence[float]]) -> None:
        """Offer one event's vectors (each name's length already checked against its first)."""
        for name, vector in embeddings.items():
            seen = self.seen.get(name, 0)
            self.seen[name] = seen + 1
            slot = seen if seen < self.max_rows else _slot(seen)
            if slot < self.max_rows:
                self._room(name, slot, len(vector))[slot] = vector

    def arrays(self) -> dict[str, Vectors]:
        """The kept vectors of each name (rows in slot order)."""
        return {name: rows[: min(self.seen[name], self.max_rows)] for name, rows in self._rows.items()}

    def to_dict(self) -> dict[str, Any]:
        """Plain data for checkpoints: the row bound, and per name the count seen, width and rows' bytes."""
        names = {
            name: {"seen": self.seen[name], "dims": int(rows.shape[1]), "rows": rows.tobytes()}
            for name, rows in self.arrays().items()
        }
        return {"max_rows": self.max_rows, "names": names}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EmbeddingBuffer:
        """Rebuild a buffer from :meth:`to_dict`'s output."""
        buffer = cls(int(data["max_rows"]))
        for name, entry in data["names"].items():
            rows = np.frombuffer(entry["rows"], dtype=np.float32).reshape(-1, int(entry["dims"]))
            if len(rows) != min(int(entry["seen"]), buffer.max_rows):
                raise ValueError(f"embedding {name!r}: {len(rows)} rows for {entry['seen']} seen")
            buffer.seen[str(name)] = int(entry["seen"])
            buffer._rows[str(name)] = rows.copy()
        return buffer

    def _room(self, name: str, slot: int, dims: int) -> Vectors:
        """The name's row array, grown (doubling, up to ``max_rows``) so that ``slot`` exists."""
        rows = self._rows.get(name)
        if rows is None:
            rows = np.empty((min(16, self.max_rows), dims), dtype=np.float32)
        elif slot >= len(rows):
            grown = np.empty((min(2 * len(rows), self.max_rows), rows.shape[1]), dtype=np.float32)
            grown[: len(rows)] = rows
            rows = grown
        self._rows[name] = rows
        return rows


def _slot(seen: int) -> int:
    """A uniform slot in ``[0, seen]`` for the vector after ``seen`` others (splitmix64 of ``seen``)."""
    z = (seen + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return (z ^ (z >> 31)) % (seen + 1)
