"""Transports move encoded events from the SDK's background sender to a destination.

A transport's ``send`` runs on the client's sender thread, never on the serving
path, so it may block. ``flush`` returns how many messages it could not
deliver within the timeout. A transport whose ``send`` may block for long can
also define ``abort()``: called from another thread when ``Client.close`` runs
out of time, it makes a blocked ``send`` give up at once (raise).
"""

from __future__ import annotations

import threading
from collections import deque
from pathlib import Path
from typing import IO, Protocol


class Transport(Protocol):
    """Where the client's background sender delivers encoded events."""

    def send(self, key: str, payload: bytes) -> None:
        """Deliver one message keyed by model name (may block)."""

    def flush(self, timeout: float) -> int:
        """Wait for buffered messages; return how many are still undelivered."""

    def close(self) -> None:
        """Release resources; safe to call twice."""


class MemoryTransport:
    """A bounded in-process queue: the embedded default and the tests read from it.

    >>> transport = MemoryTransport()
    >>> transport.send("credit", b"{}")
    >>> transport.drain(10)
    [b'{}']
    """

    def __init__(self, max_messages: int = 1_000_000) -> None:
        if max_messages < 1:
            raise ValueError(f"max_messages must be >= 1, got {max_messages}")
        self.max_messages = max_messages
        self._messages: deque[bytes] = deque()
        self._lock = threading.Lock()
        self._not_full = threading.Condition(self._lock)

    def send(self, key: str, payload: bytes) -> None:
        with self._not_full:
            while len(self._messages) >= self.max_messages:
                self._not_full.wait()
            self._messages.append(payload)

    def drain(self, max_items: int) -> list[bytes]:
        """Take up to ``max_items`` messages, oldest first, without blocking."""
        with self._not_full:
            count = min(max_items, len(self._messages))
            taken = [self._messages.popleft() for _ in range(count)]
            self._not_full.notify_all()
        return taken

    def __len__(self) -> int:
        with self._lock:
            return len(self._messages)

    def flush(self, timeout: float) -> int:
        return 0

    def close(self) -> None:
        return None


class FileTransport:
    """Appends one JSON line per event to a file (JSON lines).

    The file is replayable with ``driftline replay``. It is opened lazily on the
    first event, in append mode, so several runs accumulate in one file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: IO[bytes] | None = None
        self._lock = threading.Lock()

    def send(self, key: str, payload: bytes) -> None:
        with self._lock:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("ab")
            self._file.write(payload + b"\n")

    def flush(self, timeout: float) -> int:
        with self._lock:
            if self._file is not None:
                self._file.flush()
        return 0

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
