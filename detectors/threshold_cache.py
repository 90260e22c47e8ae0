"""Calibrated thresholds computed once per process for every detector, and kept on disk across restarts.

A calibrated threshold (:mod:`detectors.drift_calibration`) is a pure function
of its key: the flag statistic's kind and reference cell counts, the window-size
bucket, the number of null replicates, the seed and the per-test level (plus
the constants and the numpy version the simulation ran with, which the
calibrator puts in the key). For a continuous feature the cell counts depend
only on the reference size, so every model version of one shape shares one
simulation; a categorical feature shares it with any reference of the same
counts.

The process-wide memory store is shared by all instances (unless one is given
its own, as tests do). With a ``directory``, each threshold is also a small JSON
file named by the key's digest, holding the key, so a file of another key, a
torn write or any garbage is ignored and recomputed; writes are atomic
(a temporary file renamed). Nothing is pickled.

>>> cache = ThresholdCache(memory={})
>>> cache.threshold({"example": 1}, lambda: 2.5), cache.threshold({"example": 1}, lambda: 0.0)
(2.5, 2.5)
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""Bump when the meaning of a stored threshold or the file layout changes: old files are then ignored."""

_PROCESS_MEMORY: dict[str, float] = {}
_LOCK = threading.Lock()
_UNWRITABLE: set[Path] = set()
"""Folders a write already failed in: warned about once, then kept in memory only."""


def _identify(key: dict[str, Any]) -> tuple[str, str]:
    """The key's canonical JSON (stored in its file) and that text's digest (the file's name)."""
    canonical = json.dumps({"format": FORMAT_VERSION, **key}, sort_keys=True, separators=(",", ":"))
    return canonical, hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ThresholdCache:
    """Thresholds by key: memory first, then ``directory`` (if any), else computed and stored in both."""

    def __init__(self, directory: Path | None = None, memory: dict[str, float] | None = None) -> None:
        self.directory = directory
        self.memory = _PROCESS_MEMORY if memory is None else memory

    def __repr__(self) -> str:
        return f"ThresholdCache(directory={self.directory!r})"

    def threshold(self, key: dict[str, Any], compute: Callable[[], float]) -> float:
        """The threshold stored for ``key`` (JSON-ready), computing it with ``compute`` if none is."""
        value = self.lookup(key)
        if value is None:
            value = float(compute())
            self.store(key, value)
        return value

    def lookup(self, key: dict[str, Any]) -> float | None:
        """The threshold stored for ``key`` in memory or on disk, else None (nothing is computed)."""
        canonical, digest = _identify(key)
        with _LOCK:
            value = self.memory.get(digest)
        if value is None:
            value = self._read(digest, canonical)
            if value is not None:
                with _LOCK:
                    self.memory[digest] = value
        return value

    def store(self, key: dict[str, Any], value: float) -> None:
        """Keep ``value`` as the threshold of ``key``: in memory, and on disk with a directory."""
        canonical, digest = _identify(key)
        self._write(digest, canonical, value)
        with _LOCK:
            self.memory[digest] = value

    def _path(self, digest: str) -> Path | None:
        return None if self.directory is None else self.directory / f"{digest}.json"

    def _read(self, digest: str, canonical: str) -> float | None:
        path = self._path(digest)
        if path is None or not path.exists():
            return None
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
            value = stored["threshold"]
            if stored["key"] != canonical or not isinstance(value, float) or not math.isfinite(value):
                raise ValueError("another key or not a finite threshold")
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.warning("ignoring calibration cache file %s (%s): recomputing", path, error)
            return None
        return value

    def _write(self, digest: str, canonical: str, value: float) -> None:
        path = self._path(digest)
        if path is None or path.parent in _UNWRITABLE:
            return
        text = json.dumps({"key": canonical, "threshold": value})
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(temporary, path)
        except OSError as error:
            _UNWRITABLE.add(path.parent)
            log.warning(
                "cannot write the calibration cache in %s (%s): thresholds kept in memory only",
                path.parent,
                error,
            )
