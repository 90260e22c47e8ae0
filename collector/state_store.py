"""Where checkpoints live: a key-value store of byte strings that are durable once written.

:class:`LocalStateStore` (the default) keeps one file per key in a directory
and writes it atomically: a temporary file, flushed to disk, renamed over the
old one, and the directory flushed, so a crash leaves the old value or the new
one, never half of one. Keys are quoted into file names, so any key is safe.
One collector per directory: with several collectors in one group, use the
Kafka store (:mod:`collector.kafka_state_store`), which follows a partition to
its new owner.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, unquote

from collector.errors import StateStoreError

SUFFIX = ".state"


class StateStore(Protocol):
    """Durable bytes by key."""

    def get(self, key: str) -> bytes | None:
        """The last value written under ``key``, or None."""

    def put(self, key: str, value: bytes) -> None:
        """Write ``value`` under ``key``; durable when this returns."""

    def close(self) -> None:
        """Release resources; safe to call twice."""


class LocalStateStore:
    """One file per key in ``directory``, written atomically.

    >>> import tempfile
    >>> store = LocalStateStore(tempfile.mkdtemp())
    >>> store.put("group/partition/predictions/0", b"state")
    >>> store.get("group/partition/predictions/0"), store.get("missing")
    (b'state', None)
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateStoreError(
                f"state.directory {self.directory}: cannot create it ({exc.strerror}); "
                "set state.directory to a writable folder, or state.store: none"
            ) from exc

    def __repr__(self) -> str:
        return f"LocalStateStore({str(self.directory)!r})"

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def put(self, key: str, value: bytes) -> None:
        path = self._path(key)
        temporary = path.with_name(path.name + ".tmp")
        with temporary.open("wb") as file:
            file.write(value)
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(path)
        _sync_directory(self.directory)

    def keys(self) -> list[str]:
        """Every key written so far."""
        return sorted(unquote(p.name[: -len(SUFFIX)]) for p in self.directory.glob(f"*{SUFFIX}"))

    def close(self) -> None:
        return None

    def _path(self, key: str) -> Path:
        return self.directory / (quote(key, safe="") + SUFFIX)


def _sync_directory(directory: Path) -> None:
    """Make a rename durable (not every platform can open a directory; then it is skipped)."""
    with contextlib.suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
