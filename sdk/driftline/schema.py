"""Event schema version 1: the wire contract between serving code and the collector.

One JSON object (UTF-8) per message. This module is the single definition of
that contract and its reference implementation: the collector's decoder and
the SDK's encoder (:mod:`driftline.wire`, the same limits as msgspec types
checked in C) defer to it for every verdict they cannot vouch for. Anything
that does not conform raises :class:`SchemaError` carrying one reason from
:class:`RejectReason` and the offending field.

An event is converted and checked completely here, so nothing the collector
does with an accepted event can fail on its values: every number fits a
float64, every string (keys included) encodes as UTF-8, and no key repeats.

>>> event = Prediction(event_id="e1", model="credit", model_version="3",
...                    features={"age": 42}, prediction=1, timestamp=1.5)
>>> decode(encode(event)) == event
True
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

SCHEMA_VERSION = 1

MAX_MESSAGE_BYTES = 1_048_576
MAX_STRING_VALUE_CHARS = 1024
MAX_MAP_ENTRIES = 10_000
MAX_ID_CHARS = 128
MAX_VERSION_CHARS = 64
MAX_EMBEDDINGS = 16
"""Embedding names in one prediction event."""
MAX_EMBEDDING_DIMS = 1024
"""Numbers in one embedding vector."""
# Unix seconds beyond this are almost surely milliseconds (year 5138).
MAX_UNIX_SECONDS = 1e11
# Python refuses to parse longer integers (its int/str conversion limit); the
# encoder refuses integers of more bits than that many digits hold.
MAX_INT_DIGITS = 4300
MAX_INT_BITS = int(MAX_INT_DIGITS * math.log2(10))

MODEL_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")

Scalar = float | int | str | bool
FeatureValue = float | int | str | bool | None


class RejectReason(StrEnum):
    """The fixed set of reasons an event is rejected for (docs/contracts.md#rejection-reasons)."""

    INVALID_JSON = "invalid_json"
    OVERSIZE = "oversize"
    UNSUPPORTED_SCHEMA_VERSION = "unsupported_schema_version"
    UNKNOWN_TYPE = "unknown_type"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"
    NON_FINITE = "non_finite"
    LIMIT = "limit"
    PROCESSING_ERROR = "processing_error"
    """The event was valid but the collector failed on it (a bug): see its log."""


class SchemaError(ValueError):
    """An event that does not conform to schema version 1."""

    def __init__(self, reason: RejectReason, field: str, message: str) -> None:
        # A field name or message may quote input that is not valid Unicode text
        # (a lone surrogate): keep them printable for logs, headers and files.
        field, message = utf8_text(field), utf8_text(message)
        where = f"{field}: " if field else ""
        super().__init__(f"{reason.value}: {where}{message}")
        self.reason = reason
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Prediction:
    """One model prediction, with the inputs it was made on."""

    event_id: str
    model: str
    model_version: str
    features: Mapping[str, FeatureValue]
    prediction: Scalar
    timestamp: float | None = None
    data_version: str = "unknown"
    probabilities: Mapping[str, float] | None = None
    latency_ms: float | None = None
    segments: Mapping[str, str] | None = None
    error: str | None = None
    embeddings: Mapping[str, tuple[float, ...]] | None = None
    """Vector features: name -> a fixed-length vector of floats (see :func:`embedding_vector`)."""
    type: str = field(default="prediction", init=False)


@dataclass(frozen=True, slots=True)
class Label:
    """The ground truth for an earlier prediction with the same ``event_id``."""

    event_id: str
    model: str
    label: Scalar
    timestamp: float | None = None
    model_version: str | None = None
    type: str = field(default="label", init=False)


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The health of one serving process."""

    model: str
    model_version: str
    instance: str
    timestamp: float | None = None
    cpu_ratio: float | None = None
    rss_bytes: float | None = None
    requests_total: float | None = None
    errors_total: float | None = None
    uptime_seconds: float | None = None
    type: str = field(default="heartbeat", init=False)


Event = Prediction | Label | Heartbeat

_HEARTBEAT_NUMBERS = ("cpu_ratio", "rss_bytes", "requests_total", "errors_total", "uptime_seconds")


def encode(event: Event) -> bytes:
    """Serialize an event to its wire form (compact UTF-8 JSON).

    numpy scalars are written as their Python value. Encoding does not validate
    ranges and lengths (``decode`` does); it raises :class:`SchemaError` only
    for NaN or infinity and for values JSON cannot represent.
    """
    obj = _wire_object(event)
    try:
        text = json.dumps(obj, separators=(",", ":"), allow_nan=False, default=_plain_scalar)
        return text.encode("utf-8")
    except ValueError as exc:
        _check_values(obj, "")
        raise SchemaError(RejectReason.NON_FINITE, "", "NaN or infinity in event") from exc
    except TypeError as exc:
        raise SchemaError(RejectReason.INVALID_FIELD, "", f"not JSON-serializable: {exc}") from exc


def _wire_object(event: Event) -> dict[str, Any]:
    """The JSON object of an event, before serialization (absent optional fields left out)."""
    obj: dict[str, Any] = {"type": event.type, "schema_version": SCHEMA_VERSION}
    for name in event.__dataclass_fields__:
        if name == "type":
            continue
        value = getattr(event, name)
        if value is None:
            continue
        obj[name] = dict(value) if isinstance(value, Mapping) else value
    if "embeddings" in obj:
        obj["embeddings"] = _wire_vectors(obj["embeddings"])
    return obj


def _wire_vectors(embeddings: object) -> object:
    """Embedding vectors given as tuples written as JSON arrays (lists); anything else left to validation."""
    if type(embeddings) is not dict:
        return embeddings
    return {name: list(vector) if type(vector) is tuple else vector for name, vector in embeddings.items()}


def _plain_scalar(value: object) -> object:
    """``json.dumps``' hook for what it cannot write: a numpy-style scalar as its Python value."""
    if _numpy_style(value):
        return value.item()  # type: ignore[attr-defined]
    raise TypeError(f"{type(value).__name__} is not JSON-serializable")


def plain_scalar(value: object) -> object:
    """A numpy-style scalar as its Python value, as :func:`encode` writes it; anything else as is."""
    if type(value) in _JSON_SCALARS or not _numpy_style(value):
        return value
    return value.item()  # type: ignore[attr-defined]


def _numpy_style(value: object) -> bool:
    """A scalar of zero dimensions with ``.item()``, as NumPy's are (without importing NumPy)."""
    return getattr(value, "ndim", None) == 0 and callable(getattr(value, "item", None))


_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


def decode(raw: bytes | str) -> Event:
    """Parse and validate one message; raise :class:`SchemaError` if it is not valid."""
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass"))
    if size > MAX_MESSAGE_BYTES:
        raise SchemaError(
            RejectReason.OVERSIZE, "", f"message of {size} bytes over {MAX_MESSAGE_BYTES}"
        )
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        # NaN, Infinity and -Infinity parse to floats so that validate() names their field.
        obj = _parse(text)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise SchemaError(RejectReason.INVALID_JSON, "", f"not UTF-8 JSON: {exc}") from exc
    return validate(obj)


class _UnparsedInt:
    """An integer literal too long for Python to parse, kept so validate() names its field."""

    def __init__(self, text: str) -> None:
        self.digits = len(text.lstrip("-"))


def _parse(text: str) -> object:
    """``json.loads`` refusing duplicate keys; overlong integers become :class:`_UnparsedInt`."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except ValueError as exc:
        if isinstance(exc, json.JSONDecodeError) or "integer string conversion" not in str(exc):
            raise
    # Only for a message holding an overlong integer: parse again, marking it.
    return json.loads(text, object_pairs_hook=_unique_keys, parse_int=_int_or_marker)


def _int_or_marker(text: str) -> int | _UnparsedInt:
    try:
        return int(text)
    except ValueError:
        return _UnparsedInt(text)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        counts = Counter(key for key, _ in pairs)
        repeated = next(key for key, count in counts.items() if count > 1)
        raise SchemaError(
            RejectReason.INVALID_JSON, "", f"key {repeated[:64]!r} appears twice: ambiguous"
        )
    return obj


def validate(obj: object) -> Event:
    """Validate a parsed JSON value and build the event it describes."""
    if not isinstance(obj, dict):
        raise SchemaError(RejectReason.INVALID_JSON, "", "message is not a JSON object")
    try:
        _check_values(obj, "")
    except RecursionError as exc:
        raise SchemaError(RejectReason.INVALID_JSON, "", "nested too deeply") from exc
    version = obj.get("schema_version")
    if version is None:
        raise SchemaError(RejectReason.MISSING_FIELD, "schema_version", "required")
    if isinstance(version, bool) or version != SCHEMA_VERSION:
        raise SchemaError(
            RejectReason.UNSUPPORTED_SCHEMA_VERSION, "schema_version", f"{version!r} is not 1"
        )
    kind = obj.get("type")
    if kind is None:
        raise SchemaError(RejectReason.MISSING_FIELD, "type", "required")
    if kind == "prediction":
        return _prediction(obj)
    if kind == "label":
        return _label(obj)
    if kind == "heartbeat":
        return _heartbeat(obj)
    raise SchemaError(
        RejectReason.UNKNOWN_TYPE, "type", f"{kind!r} is not prediction, label or heartbeat"
    )


def _check_values(value: object, path: str) -> None:
    """Every number fits a float64 and every string, keys included, is valid Unicode text."""
    if isinstance(value, str):
        _check_text(value, path)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise SchemaError(RejectReason.NON_FINITE, path, "NaN or infinity")
    elif isinstance(value, int):
        _check_int(value, path)
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            _check_text(key, where)
            _check_values(item, where)
    elif isinstance(value, list):
        if all(type(item) is float and math.isfinite(item) for item in value):
            return  # the common embedding vector: no path built per item
        for index, item in enumerate(value):
            _check_values(item, f"{path}[{index}]")
    elif isinstance(value, _UnparsedInt):
        raise SchemaError(
            RejectReason.INVALID_FIELD, path, f"an integer of {value.digits} digits, over {MAX_INT_DIGITS}"
        )


def _check_int(value: int, path: str) -> None:
    try:
        float(value)
    except OverflowError:
        if value.bit_length() > MAX_INT_BITS:
            raise SchemaError(
                RejectReason.INVALID_FIELD, path, f"an integer of over {MAX_INT_DIGITS} digits"
            ) from None
        raise SchemaError(RejectReason.NON_FINITE, path, "an integer beyond float64's range") from None


_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_text(text: str, path: str) -> None:
    if not text.isascii() and _SURROGATE.search(text):
        raise SchemaError(RejectReason.INVALID_FIELD, path, "not valid Unicode: a lone surrogate")


def utf8_text(text: str) -> str:
    """``text`` with anything UTF-8 cannot encode (lone surrogates) written as ``\\udXXX`` escapes."""
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _prediction(obj: dict[str, Any]) -> Prediction:
    return Prediction(
        event_id=_event_id(obj),
        model=_model(obj),
        model_version=_required_short_string(obj, "model_version"),
        data_version=_short_string(obj, "data_version", required=False) or "unknown",
        timestamp=_timestamp(obj),
        features=_features(obj),
        prediction=_scalar(obj, "prediction", required=True),
        probabilities=_probabilities(obj),
        latency_ms=_non_negative(obj, "latency_ms"),
        segments=_segments(obj),
        error=_optional_string(obj, "error"),
        embeddings=_embeddings(obj),
    )


def _label(obj: dict[str, Any]) -> Label:
    label = _scalar(obj, "label", required=True)
    return Label(
        event_id=_event_id(obj),
        model=_model(obj),
        label=label,
        timestamp=_timestamp(obj),
        model_version=_short_string(obj, "model_version", required=False),
    )


def _heartbeat(obj: dict[str, Any]) -> Heartbeat:
    numbers = {name: _non_negative(obj, name) for name in _HEARTBEAT_NUMBERS}
    cpu = numbers["cpu_ratio"]
    if cpu is not None and cpu > 1.0:
        raise SchemaError(RejectReason.INVALID_FIELD, "cpu_ratio", f"{cpu} is not in [0, 1]")
    instance = _optional_string(obj, "instance")
    if instance is None:
        raise SchemaError(RejectReason.MISSING_FIELD, "instance", "required")
    if not 1 <= len(instance) <= MAX_ID_CHARS:
        raise SchemaError(RejectReason.INVALID_FIELD, "instance", f"must be 1-{MAX_ID_CHARS} chars")
    return Heartbeat(
        model=_model(obj),
        model_version=_required_short_string(obj, "model_version"),
        instance=instance,
        timestamp=_timestamp(obj),
        **numbers,
    )


def _require(obj: dict[str, Any], name: str) -> Any:
    value = obj.get(name)
    if value is None:
        raise SchemaError(RejectReason.MISSING_FIELD, name, "required")
    return value


def _event_id(obj: dict[str, Any]) -> str:
    value = _require(obj, "event_id")
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_ID_CHARS:
        raise SchemaError(
            RejectReason.INVALID_FIELD, "event_id", f"must be a string of 1-{MAX_ID_CHARS} chars"
        )
    return value


def _model(obj: dict[str, Any]) -> str:
    value = _require(obj, "model")
    if not isinstance(value, str) or not MODEL_PATTERN.fullmatch(value):
        raise SchemaError(RejectReason.INVALID_FIELD, "model", "must match [A-Za-z0-9_.-]{1,64}")
    return value


def _required_short_string(obj: dict[str, Any], name: str) -> str:
    value = _short_string(obj, name, required=True)
    assert value is not None  # _require raised for a missing value
    return value


def _short_string(obj: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = _require(obj, name) if required else obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_VERSION_CHARS:
        raise SchemaError(
            RejectReason.INVALID_FIELD, name, f"must be a string of 1-{MAX_VERSION_CHARS} chars"
        )
    return value


def _optional_string(obj: dict[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise SchemaError(RejectReason.INVALID_FIELD, name, "must be a string")
    if len(value) > MAX_STRING_VALUE_CHARS:
        raise SchemaError(RejectReason.OVERSIZE, name, f"over {MAX_STRING_VALUE_CHARS} chars")
    return value


def _timestamp(obj: dict[str, Any]) -> float | None:
    value = obj.get("timestamp")
    if value is None:
        return None
    if isinstance(value, str):
        value = _rfc3339(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not 0 <= value < MAX_UNIX_SECONDS:
            raise SchemaError(
                RejectReason.INVALID_FIELD,
                "timestamp",
                f"{value} is not Unix seconds in [0, {MAX_UNIX_SECONDS:.0e}) (milliseconds?)",
            )
        return float(value)
    raise SchemaError(RejectReason.INVALID_FIELD, "timestamp", "must be RFC 3339 or Unix seconds")


def _rfc3339(text: str) -> float:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise SchemaError(
            RejectReason.INVALID_FIELD, "timestamp", f"{text[:64]!r} is not RFC 3339"
        ) from exc
    if moment.tzinfo is None:
        raise SchemaError(RejectReason.INVALID_FIELD, "timestamp", "RFC 3339 needs a UTC offset")
    return moment.timestamp()


def _scalar(obj: dict[str, Any], name: str, *, required: bool) -> Scalar:
    value = _require(obj, name) if required else obj.get(name)
    if not isinstance(value, int | float | str | bool):
        raise SchemaError(RejectReason.INVALID_FIELD, name, "must be a number, string or bool")
    if isinstance(value, str) and len(value) > MAX_STRING_VALUE_CHARS:
        raise SchemaError(RejectReason.OVERSIZE, name, f"over {MAX_STRING_VALUE_CHARS} chars")
    return value


def _mapping(obj: dict[str, Any], name: str, *, required: bool) -> dict[str, Any] | None:
    value = _require(obj, name) if required else obj.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise SchemaError(RejectReason.INVALID_FIELD, name, "must be an object")
    if len(value) > MAX_MAP_ENTRIES:
        raise SchemaError(RejectReason.OVERSIZE, name, f"over {MAX_MAP_ENTRIES} entries")
    for key in value:
        if not key or len(key) > MAX_VERSION_CHARS * 2:
            raise SchemaError(
                RejectReason.INVALID_FIELD, f"{name}.{key[:64]}", "key must be 1-128 chars"
            )
    return value


def _features(obj: dict[str, Any]) -> dict[str, FeatureValue]:
    features = _mapping(obj, "features", required=True)
    assert features is not None
    for key, value in features.items():
        where = f"features.{key}"
        if value is None or isinstance(value, bool | int | float):
            continue
        if isinstance(value, str):
            if len(value) > MAX_STRING_VALUE_CHARS:
                raise SchemaError(
                    RejectReason.OVERSIZE, where, f"over {MAX_STRING_VALUE_CHARS} chars"
                )
            continue
        raise SchemaError(
            RejectReason.INVALID_FIELD, where, "must be a number, string, bool or null"
        )
    return features


def _probabilities(obj: dict[str, Any]) -> dict[str, float] | None:
    probabilities = _mapping(obj, "probabilities", required=False)
    if probabilities is None:
        return None
    for key, value in probabilities.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
            raise SchemaError(
                RejectReason.INVALID_FIELD, f"probabilities.{key}", "must be a number in [0, 1]"
            )
    return {key: float(value) for key, value in probabilities.items()}


def _segments(obj: dict[str, Any]) -> dict[str, str] | None:
    segments = _mapping(obj, "segments", required=False)
    if segments is None:
        return None
    for key, value in segments.items():
        where = f"segments.{key}"
        if not isinstance(value, str):
            raise SchemaError(RejectReason.INVALID_FIELD, where, "must be a string")
        if len(value) > MAX_STRING_VALUE_CHARS:
            raise SchemaError(RejectReason.OVERSIZE, where, f"over {MAX_STRING_VALUE_CHARS} chars")
    return segments


def _embeddings(obj: dict[str, Any]) -> dict[str, tuple[float, ...]] | None:
    """The optional ``embeddings`` object: at most ``MAX_EMBEDDINGS`` names, each a vector."""
    embeddings = _mapping(obj, "embeddings", required=False)
    if embeddings is None:
        return None
    if len(embeddings) > MAX_EMBEDDINGS:
        raise SchemaError(RejectReason.OVERSIZE, "embeddings", f"over {MAX_EMBEDDINGS} names")
    return {name: embedding_vector(f"embeddings.{name}", vector) for name, vector in embeddings.items()}


def embedding_vector(where: str, vector: object) -> tuple[float, ...]:
    """One embedding: a JSON array of 1 to ``MAX_EMBEDDING_DIMS`` numbers (finiteness is checked before).

    Whether its length is the one its name had before in the model version is
    the collector's check (state this stateless decoder does not have).
    """
    if type(vector) is not list or not vector:
        raise SchemaError(RejectReason.INVALID_FIELD, where, "must be a non-empty array of numbers")
    if len(vector) > MAX_EMBEDDING_DIMS:
        raise SchemaError(RejectReason.OVERSIZE, where, f"over {MAX_EMBEDDING_DIMS} numbers")
    if not all(type(item) is float for item in vector):
        for index, item in enumerate(vector):
            if isinstance(item, bool) or not isinstance(item, int | float):
                raise SchemaError(RejectReason.INVALID_FIELD, f"{where}[{index}]", "must be a number")
    return tuple(map(float, vector))


def check_dimensions(embeddings: Mapping[str, tuple[float, ...]] | None, known: dict[str, int]) -> None:
    """Each vector has the length its name had first (``known``, updated only when all agree).

    The collector keeps ``known`` per model version and the SDK per client, so
    both reject the same vector with the same reason and field.
    """
    if not embeddings:
        return
    for name, vector in embeddings.items():
        expected = known.get(name, len(vector))
        if len(vector) != expected:
            raise SchemaError(
                RejectReason.INVALID_FIELD,
                f"embeddings.{name}",
                f"{len(vector)} numbers where this name's vectors have {expected}",
            )
    for name, vector in embeddings.items():
        known.setdefault(name, len(vector))


def _non_negative(obj: dict[str, Any], name: str) -> float | None:
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise SchemaError(RejectReason.INVALID_FIELD, name, "must be a number >= 0")
    return float(value)
