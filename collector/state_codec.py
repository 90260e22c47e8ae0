"""The byte form of everything the collector checkpoints: msgpack with a format version.

msgpack carries only plain data (maps, lists, strings, bytes, numbers), so
reading a damaged or hostile checkpoint can fail but never runs code (unlike
pickle). Every record names its format version and kind; a record of another
version or kind, or bytes that are not one, raise :class:`StateFormatError`
and the caller starts that piece of state afresh.

>>> unpack("partition", pack("partition", {"offsets": {0: 12}}))
{'offsets': {0: 12}}
"""

from __future__ import annotations

from typing import Any

import msgpack

FORMAT_VERSION = 2
"""2: the label join store holds compact predictions (``collector.held_predictions``)."""


class StateFormatError(ValueError):
    """A checkpoint that cannot be read by this version (damaged, another format, another kind)."""


def pack(kind: str, body: dict[str, Any]) -> bytes:
    """``body`` (plain data) as a versioned record of ``kind``."""
    return msgpack.packb({"format": FORMAT_VERSION, "kind": kind, "body": body}, use_bin_type=True)


def unpack(kind: str, data: bytes) -> dict[str, Any]:
    """The body of a record written by :func:`pack` with the same ``kind`` and format version."""
    try:
        record = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise StateFormatError(f"not a Driftline {kind} record: {exc}") from exc
    if not isinstance(record, dict) or not isinstance(record.get("body"), dict):
        raise StateFormatError(f"not a Driftline {kind} record")
    if record.get("format") != FORMAT_VERSION:
        raise StateFormatError(
            f"{kind} record of format {record.get('format')!r}; this collector reads format {FORMAT_VERSION}"
        )
    if record.get("kind") != kind:
        raise StateFormatError(f"a {record.get('kind')!r} record where a {kind} record was expected")
    return record["body"]
