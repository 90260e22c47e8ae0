"""Sources deliver raw messages to the pipeline in batches (bytewax's partitioned-source idea).

A source never blocks longer than the timeout it is given, returns an empty
batch when nothing arrived, and reports the next offset per partition so the
offsets can travel with the state. Decoding is the pipeline's job, so every
byte sequence reaches the pipeline and is either processed or dead-lettered.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from driftline.transports import MemoryTransport


@dataclass(frozen=True, slots=True)
class RawMessage:
    """One message as it arrived, with where it came from."""

    value: bytes
    topic: str
    partition: int
    offset: int
    receive_time: float
    """Wall-clock time the collector received it (Unix seconds)."""


class Source(Protocol):
    """A partitioned stream of raw messages."""

    def next_batch(self, max_items: int, timeout: float) -> list[RawMessage]:
        """Up to ``max_items`` messages, waiting at most ``timeout`` seconds for the first."""

    def commit(self) -> None:
        """Mark every message returned so far as processed."""

    def snapshot(self) -> dict[str, dict[int, int]]:
        """The next offset to read, per topic and partition."""

    @property
    def exhausted(self) -> bool:
        """True when a finite source has delivered everything (never for a live stream)."""

    def close(self) -> None:
        """Release resources; safe to call twice."""


class GroupSource(Source, Protocol):
    """A consumer group member (the Kafka sources, on either client library)."""

    group_id: str
    on_assign: Callable[[list[tuple[str, int]]], None] | None

    def not_ready_reason(self) -> str | None:
        """Why the member is not ready (``reason: explanation``), None when ready; any thread."""

    def assignment(self) -> frozenset[tuple[str, int]]:
        """The ``(topic, partition)`` pairs owned now; any thread."""

    def partition_count(self, topic: str) -> int | None:
        """How many partitions ``topic`` has, as far as the member knows."""

    def pause(self) -> None:
        """Stop fetching while staying in the group."""

    def resume(self) -> None:
        """Fetch again after :meth:`pause`."""

    @property
    def paused(self) -> bool:
        """Between :meth:`pause` and :meth:`resume`."""


class MemorySource:
    """Reads what an SDK :class:`~driftline.transports.MemoryTransport` holds (the embedded default)."""

    topic = "memory"

    def __init__(self, transport: MemoryTransport) -> None:
        self.transport = transport
        self._offset = 0
        self._closed = False

    def next_batch(self, max_items: int, timeout: float) -> list[RawMessage]:
        deadline = time.monotonic() + timeout
        payloads = self.transport.drain(max_items)
        while not payloads and time.monotonic() < deadline and not self._closed:
            time.sleep(min(0.01, max(0.0, deadline - time.monotonic())))
            payloads = self.transport.drain(max_items)
        now = time.time()
        batch = [
            RawMessage(p, self.topic, 0, self._offset + i, now) for i, p in enumerate(payloads)
        ]
        self._offset += len(batch)
        return batch

    def commit(self) -> None:
        return None

    def snapshot(self) -> dict[str, dict[int, int]]:
        return {self.topic: {0: self._offset}}

    @property
    def exhausted(self) -> bool:
        return self._closed and len(self.transport) == 0

    def close(self) -> None:
        self._closed = True


class FileSource:
    """Reads a JSON-lines file; the offset of a message is its 1-based line number."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.topic = str(self.path)
        self._file: IO[bytes] = self.path.open("rb")
        self._lines: Iterator[bytes] = iter(self._file)
        self._line = 0
        self._done = False

    def next_batch(self, max_items: int, timeout: float) -> list[RawMessage]:
        batch: list[RawMessage] = []
        now = time.time()
        while len(batch) < max_items and not self._done:
            raw = next(self._lines, None)
            if raw is None:
                self._done = True
                break
            self._line += 1
            value = raw.rstrip(b"\r\n")
            if value.strip():
                batch.append(RawMessage(value, self.topic, 0, self._line, now))
        return batch

    @property
    def bytes_read(self) -> int:
        """How far into the file the source is (for progress bars)."""
        return self._file.tell()

    def commit(self) -> None:
        return None

    def snapshot(self) -> dict[str, dict[int, int]]:
        return {self.topic: {0: self._line + 1}}

    @property
    def exhausted(self) -> bool:
        return self._done

    def close(self) -> None:
        self._file.close()
