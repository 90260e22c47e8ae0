"""Dead-letter sinks: where rejected input goes, with its reason, so nothing is dropped silently."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import IO, Protocol

from driftline.schema import SchemaError

from collector.sources import RawMessage


class DeadLetterSink(Protocol):
    """Receives every message the pipeline rejects."""

    def write(self, message: RawMessage, error: SchemaError) -> None:
        """Keep one rejected message with the reason it was rejected."""

    def flush(self) -> None:
        """Make written messages durable."""

    def close(self) -> None:
        """Release resources; safe to call twice."""


class MemoryDeadLetterSink:
    """Keeps rejected messages in a list (demo and tests)."""

    def __init__(self) -> None:
        self.rejected: list[tuple[RawMessage, SchemaError]] = []

    def write(self, message: RawMessage, error: SchemaError) -> None:
        self.rejected.append((message, error))

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None


class FileDeadLetterSink:
    """One JSON object a line: ``line``, ``reason``, ``field``, ``message`` and the ``raw`` input.

    ``raw`` is the original line as text when it is UTF-8, otherwise ``raw_base64``
    holds its bytes, so every rejected line can be recovered exactly.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: IO[str] | None = self.path.open("w", encoding="utf-8")

    def write(self, message: RawMessage, error: SchemaError) -> None:
        if self._file is None:
            raise ValueError(f"dead-letter file {self.path} is closed")
        record: dict[str, object] = {
            "line": message.offset,
            "reason": error.reason.value,
            "field": error.field,
            "message": error.message,
        }
        try:
            record["raw"] = message.value.decode("utf-8")
        except UnicodeDecodeError:
            record["raw_base64"] = base64.b64encode(message.value).decode("ascii")
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
