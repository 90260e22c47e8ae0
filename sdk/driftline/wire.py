"""Event schema version 1 as msgspec types: the SDK's encoder and the collector's fast decoder.

:mod:`driftline.schema` is the reference (stdlib ``json`` plus checks in
Python): it names the exact reason and field of every rejection. This module
states the same limits as :class:`msgspec.Struct` types and constraints, which
msgspec checks in C, in both directions:

* the SDK's sender (:func:`encode_checked`) converts the event it built into
  its Struct (``msgspec.convert``, which checks every constraint) and writes
  that Struct as JSON, so an event is validated once, as built, and its own
  output is never parsed again;
* the collector (``collector.fast_decode``) decodes a message into the same
  Structs.

Either fast path only ever *accepts*: what it cannot vouch for goes to the
reference, which accepts it the same way or raises the exact
:class:`~driftline.schema.SchemaError`. Adding an event field is one line in
its Struct below (and one in the collector's builder).

>>> from driftline.schema import Label, decode
>>> label = Label(event_id="e1", model="credit", label=1, timestamp=1.5)
>>> payload = encode_checked(label)
>>> payload
b'{"type":"label","schema_version":1,"timestamp":1.5,"event_id":"e1","model":"credit","label":1}'
>>> decode(payload) == label
True
"""

from __future__ import annotations

import sys
from typing import Annotated, Any, Literal

import msgspec

from driftline import schema
from driftline.schema import Event

# The reference's limits, as msgspec constraints (a value outside them takes the reference path).
_INT64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
# NaN fails every comparison and infinity is beyond float64's largest: both are outside these bounds.
_FLOAT = Annotated[float, msgspec.Meta(ge=-sys.float_info.max, le=sys.float_info.max)]
_TEXT = Annotated[str, msgspec.Meta(max_length=schema.MAX_STRING_VALUE_CHARS)]
_ID = Annotated[str, msgspec.Meta(min_length=1, max_length=schema.MAX_ID_CHARS)]
_VERSION = Annotated[str, msgspec.Meta(min_length=1, max_length=schema.MAX_VERSION_CHARS)]
_MODEL = Annotated[str, msgspec.Meta(pattern=rf"\A(?:{schema.MODEL_PATTERN.pattern})\Z")]
_KEY = Annotated[str, msgspec.Meta(min_length=1, max_length=schema.MAX_VERSION_CHARS * 2)]
_NON_NEGATIVE = Annotated[float, msgspec.Meta(ge=0.0, le=sys.float_info.max)]
_RATIO = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
_UNIX_SECONDS = Annotated[float, msgspec.Meta(ge=0.0, lt=schema.MAX_UNIX_SECONDS)]
_SCALAR = _INT64 | _FLOAT | _TEXT | bool
_FEATURES = Annotated[
    dict[_KEY, _INT64 | _FLOAT | _TEXT | bool | None], msgspec.Meta(max_length=schema.MAX_MAP_ENTRIES)
]
_PROBABILITIES = Annotated[dict[_KEY, _RATIO], msgspec.Meta(max_length=schema.MAX_MAP_ENTRIES)]
_SEGMENTS = Annotated[dict[_KEY, _TEXT], msgspec.Meta(max_length=schema.MAX_MAP_ENTRIES)]
_VECTOR = Annotated[tuple[_FLOAT, ...], msgspec.Meta(min_length=1, max_length=schema.MAX_EMBEDDING_DIMS)]
_EMBEDDINGS = Annotated[dict[_KEY, _VECTOR], msgspec.Meta(max_length=schema.MAX_EMBEDDINGS)]


class Wire(
    msgspec.Struct, tag_field="type", forbid_unknown_fields=True, omit_defaults=True, kw_only=True, gc=False
):
    """Fields every event type has.

    ``None`` means absent, as in the reference: an explicit ``null`` decodes as
    absent (at the cost of the collector's slower key count, see
    ``collector.fast_decode``), and an absent field is not written. Not
    tracked by the garbage collector: a struct holds no cycles and lives for
    one message.
    """

    schema_version: Literal[1]
    timestamp: _UNIX_SECONDS | str | None = None


class PredictionWire(Wire, tag="prediction", kw_only=True):
    event_id: _ID
    model: _MODEL
    model_version: _VERSION
    features: _FEATURES
    prediction: _SCALAR
    data_version: _VERSION | None = None
    probabilities: _PROBABILITIES | None = None
    latency_ms: _NON_NEGATIVE | None = None
    segments: _SEGMENTS | None = None
    error: _TEXT | None = None
    embeddings: _EMBEDDINGS | None = None


class LabelWire(Wire, tag="label", kw_only=True):
    event_id: _ID
    model: _MODEL
    label: _SCALAR
    model_version: _VERSION | None = None


class HeartbeatWire(Wire, tag="heartbeat", kw_only=True):
    model: _MODEL
    model_version: _VERSION
    instance: _ID
    cpu_ratio: _RATIO | None = None
    rss_bytes: _NON_NEGATIVE | None = None
    requests_total: _NON_NEGATIVE | None = None
    errors_total: _NON_NEGATIVE | None = None
    uptime_seconds: _NON_NEGATIVE | None = None


Wired = PredictionWire | LabelWire | HeartbeatWire
_STRUCTS: dict[str, type[Wired]] = {
    "prediction": PredictionWire,
    "label": LabelWire,
    "heartbeat": HeartbeatWire,
}

_ENCODER = msgspec.json.Encoder()


def encode_checked(event: Event) -> bytes:
    """The wire form of an event, checked as the collector's ``decode`` would check it.

    Raises :class:`~driftline.schema.SchemaError` with the reason and field the
    reference ``decode`` would give. The common event is converted to its
    Struct, which checks every constraint in C, and written from it (key order
    inside each map kept). Whatever the conversion refuses, a timestamp given
    as text (RFC 3339, which only the reference parses) and a message over
    ``MAX_MESSAGE_BYTES`` take the exact path: :func:`~driftline.schema.encode`,
    then :func:`~driftline.schema.decode`, which names the reason. The size
    limit is on the bytes written here, where non-ASCII text is UTF-8 rather
    than the reference's ``\\u`` escapes: the collector judges what it receives.
    """
    fields = _fields(event)
    if type(fields.get("timestamp")) is not str:
        struct = _STRUCTS[event.type]
        payload = _written(fields, struct) or _written(fields, struct, plain=True)
        if payload is not None:
            return payload
    payload = schema.encode(event)
    schema.decode(payload)
    return payload


def _written(fields: dict[str, Any], struct: type[Wired], *, plain: bool = False) -> bytes | None:
    """``fields`` converted to ``struct`` and written, or ``None`` if a constraint or the size limit refuses.

    With ``plain``, numpy-style scalars are first replaced by their Python value (:func:`_plain_values`).
    """
    try:
        payload = _ENCODER.encode(msgspec.convert(_plain_values(fields) if plain else fields, struct))
    except Exception:  # a caller's object may raise anything when converted: the reference judges it
        return None
    return payload if len(payload) <= schema.MAX_MESSAGE_BYTES else None


def _fields(event: Event) -> dict[str, Any]:
    """The event's fields by name (``None`` ones left out), with its schema version."""
    fields: dict[str, Any] = {"schema_version": schema.SCHEMA_VERSION}
    for name in event.__dataclass_fields__:
        value = getattr(event, name)
        if value is not None:
            fields[name] = value
    return fields


def _plain_values(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` with numpy-style scalars written as their Python value, as the reference's ``encode`` does.

    Features taken from a NumPy row are ``np.float32`` or ``np.int64``, which
    msgspec refuses: converted here (top-level values, the values of maps and
    the items of vectors), they take the fast path instead of the reference's.
    """
    return {name: _plain_member(value) for name, value in fields.items()}


def _plain_member(value: object) -> object:
    if type(value) is dict:
        return {key: _plain_member(item) for key, item in value.items()}
    if type(value) is list or type(value) is tuple:
        return [schema.plain_scalar(item) for item in value]
    return schema.plain_scalar(value)
