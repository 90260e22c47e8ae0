"""The collector's event decoder: msgspec's typed C decoder first, the SDK's ``decode`` for the rest.

``driftline.schema.decode`` (stdlib ``json`` plus checks in Python) is the
reference: it names the exact reason and field of every rejection. Here a
message is first decoded by msgspec into the :class:`msgspec.Struct` types of
:mod:`driftline.wire` (the ones the SDK encodes with), which carry the same
limits as constraints, and the event is built from them. That
fast path only ever *accepts*: whenever it fails, or cannot rule out a
difference from the reference, the message goes through the reference
``decode``, which accepts it the same way or raises the exact
:class:`~driftline.schema.SchemaError`. So the result of :func:`decode` is
always the reference's, bit for bit; tests/test_fast_decode.py checks that
differentially.

Where msgspec and the reference differ, and what the fast path does:

* duplicate keys: msgspec keeps the last, the reference rejects the message
  (``invalid_json``). See :func:`_unique_keys`.
* integers beyond int64 (the reference keeps any integer a float64 holds):
  constrained to int64, so a longer one takes the reference path.
* NaN, Infinity, lone surrogates, invalid UTF-8, control characters: msgspec
  refuses them, so the reference names them.
* unknown fields (the reference ignores them after checking their values):
  the reference path.

Adding an event field is one line in its Struct (driftline.wire) and one in its builder below.

>>> from driftline.schema import Label, encode
>>> decode(encode(Label(event_id="e1", model="credit", label=1)))
Label(event_id='e1', model='credit', label=1, timestamp=None, model_version=None, type='label')
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

import msgspec
from driftline import schema
from driftline.schema import Event, Heartbeat, Label, Prediction
from driftline.wire import HeartbeatWire, LabelWire, PredictionWire, Wired

_DECODER = msgspec.json.Decoder(Wired)


class _Undecided(Exception):
    """The fast path cannot vouch for the reference's result: ask the reference."""


def decode(raw: bytes | str) -> Event:
    """Parse and validate one message exactly as ``driftline.schema.decode`` does, faster."""
    try:
        return _fast(raw.encode("utf-8") if isinstance(raw, str) else raw)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeEncodeError, _Undecided):
        return schema.decode(raw)


def _fast(raw: bytes) -> Event:
    if len(raw) > schema.MAX_MESSAGE_BYTES:
        raise _Undecided
    wire = _DECODER.decode(raw)
    _unique_keys(raw, wire)
    if isinstance(wire, PredictionWire):
        return _prediction(wire)
    if isinstance(wire, LabelWire):
        return _label(wire)
    return _heartbeat(wire)


_NEW = object.__new__
(
    _set_event_id, _set_model, _set_model_version, _set_features, _set_prediction, _set_timestamp,
    _set_data_version, _set_probabilities, _set_latency_ms, _set_segments, _set_error, _set_embeddings,
    _set_type,
) = (getattr(Prediction, field.name).__set__ for field in dataclasses.fields(Prediction))
"""The slots of the frozen ``Prediction``, in field order (tests/test_fast_decode.py checks the order)."""


def _prediction(wire: PredictionWire) -> Prediction:
    """The event, its slots set directly: a frozen dataclass's ``__init__`` goes through
    ``object.__setattr__`` for each of its 13 fields, half the decoder's cost after msgspec on the
    commonest message. ``Prediction`` has no ``__post_init__`` to skip, and the differential tests
    compare every field with the reference decoder's (tests/test_fast_decode.py)."""
    event = _NEW(Prediction)
    _set_event_id(event, wire.event_id)
    _set_model(event, wire.model)
    _set_model_version(event, wire.model_version)
    _set_features(event, wire.features)
    _set_prediction(event, wire.prediction)
    _set_timestamp(event, _timestamp(wire.timestamp))
    _set_data_version(event, wire.data_version or "unknown")
    _set_probabilities(event, wire.probabilities)
    _set_latency_ms(event, wire.latency_ms)
    _set_segments(event, wire.segments)
    _set_error(event, wire.error)
    _set_embeddings(event, wire.embeddings)
    _set_type(event, "prediction")
    return event


def _label(wire: LabelWire) -> Label:
    # Positional: a quarter cheaper than keywords (the differential tests compare every field).
    return Label(wire.event_id, wire.model, wire.label, _timestamp(wire.timestamp), wire.model_version)


def _heartbeat(wire: HeartbeatWire) -> Heartbeat:
    return Heartbeat(
        model=wire.model,
        model_version=wire.model_version,
        instance=wire.instance,
        timestamp=_timestamp(wire.timestamp),
        cpu_ratio=wire.cpu_ratio,
        rss_bytes=wire.rss_bytes,
        requests_total=wire.requests_total,
        errors_total=wire.errors_total,
        uptime_seconds=wire.uptime_seconds,
    )


def _timestamp(value: float | str | None) -> float | None:
    """Unix seconds of an RFC 3339 text as the reference computes them; any doubt is undecided."""
    if not isinstance(value, str):
        return value
    try:
        seconds = datetime.fromisoformat(value)
        if seconds.tzinfo is None:
            raise _Undecided
        unix = seconds.timestamp()
    except (ValueError, OverflowError, OSError) as exc:
        raise _Undecided from exc
    if not 0 <= unix < schema.MAX_UNIX_SECONDS:
        raise _Undecided
    return unix


def _unique_keys(raw: bytes, wire: Wired) -> None:
    """Raise :class:`_Undecided` unless no object in ``raw`` repeats a key.

    Outside strings, JSON has exactly one colon per key, so ``raw`` holds at
    least as many colons as keys, and more keys than the decoded objects hold
    distinct ones exactly when a key repeats. The common message is settled by
    one ``bytes.count``: as many colons as the keys msgspec's result shows
    (:func:`_key_count`, which does not count a member given as ``null``). Any
    other is decoded again without types, to count its distinct keys and the
    colons inside its strings. A colon escaped as ``\\u003a`` is one in a
    decoded string but not in ``raw``: such a message (rare) is left undecided.
    """
    colons = raw.count(b":")
    keys = _prediction_key_count(wire) if isinstance(wire, PredictionWire) else _key_count(wire)
    if colons == keys:
        return
    if b"\\u003" in raw:
        raise _Undecided
    keys, colons_in_strings = _keys_and_colons(msgspec.json.decode(raw))
    if colons - colons_in_strings != keys:
        raise _Undecided


def _key_count(wire: Wired) -> int:
    """Keys present in the message msgspec decoded: the tag, the fields set, the maps' keys."""
    count = 1
    for value in msgspec.structs.astuple(wire):
        if value is not None:
            count += 1
            if isinstance(value, dict):
                count += len(value)
    return count


def _prediction_key_count(wire: PredictionWire) -> int:
    """:func:`_key_count` of the commonest message, field by field (half the time): the tag and
    the six fields every prediction has, the optional ones set, the maps' keys (embedding
    vectors have none). tests/test_fast_decode.py holds it to :func:`_key_count`."""
    count = 7 + len(wire.features)
    for value in (wire.timestamp, wire.data_version, wire.latency_ms, wire.error):
        if value is not None:
            count += 1
    for mapping in (wire.probabilities, wire.segments, wire.embeddings):
        if mapping is not None:
            count += 1 + len(mapping)
    return count


def _keys_and_colons(value: object) -> tuple[int, int]:
    """The distinct keys of the objects in a decoded JSON value, and the colons in its strings."""
    if isinstance(value, str):
        return 0, value.count(":")
    keys, colons = 0, 0
    if isinstance(value, dict):
        keys = len(value)
        colons = sum(key.count(":") for key in value)
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            item_keys, item_colons = _keys_and_colons(item)
            keys, colons = keys + item_keys, colons + item_colons
    return keys, colons
