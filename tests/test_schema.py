"""Event schema v1 (docs/contracts.md#event-schema): round trips and every rejection reason.

``limit`` is not tested here: the collector applies cardinality limits, not the schema.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from driftline.schema import (
    MAX_MESSAGE_BYTES,
    MAX_STRING_VALUE_CHARS,
    Heartbeat,
    Label,
    Prediction,
    RejectReason,
    SchemaError,
    decode,
    encode,
)

PREDICTION: dict[str, Any] = {
    "type": "prediction",
    "schema_version": 1,
    "event_id": "e-1",
    "timestamp": 1767225600.25,
    "model": "credit-risk_v.2",
    "model_version": "3",
    "data_version": "2026-05",
    "features": {"age": 42, "income": 55000.5, "region": "north", "vip": True, "phone": None},
    "prediction": 1,
    "probabilities": {"0": 0.2, "1": 0.8},
    "latency_ms": 3.5,
    "segments": {"region": "north"},
    "error": "timeout",
}
LABEL: dict[str, Any] = {
    "type": "label",
    "schema_version": 1,
    "event_id": "e-1",
    "timestamp": 1767229200.0,
    "model": "credit-risk_v.2",
    "model_version": "3",
    "label": 0,
}
HEARTBEAT: dict[str, Any] = {
    "type": "heartbeat",
    "schema_version": 1,
    "timestamp": 1767225660.0,
    "model": "credit-risk_v.2",
    "model_version": "3",
    "instance": "host-a-1234",
    "cpu_ratio": 0.25,
    "rss_bytes": 123456789.0,
    "requests_total": 1000.0,
    "errors_total": 3.0,
    "uptime_seconds": 60.5,
}
BASES = {"prediction": PREDICTION, "label": LABEL, "heartbeat": HEARTBEAT}

DELETE = object()


def changed(base: dict[str, Any], field: str, value: object) -> bytes:
    """``base`` with one (possibly ``parent.child``) field set or deleted, as JSON bytes."""
    obj = copy.deepcopy(base)
    target = obj
    *parents, name = field.split(".", 1) if "." in field else [field]
    for parent in parents:
        target = target[parent]
    if value is DELETE:
        del target[name]
    else:
        target[name] = value
    return json.dumps(obj).encode("utf-8")


def rejection(raw: bytes | str) -> SchemaError:
    with pytest.raises(SchemaError) as info:
        decode(raw)
    return info.value


# --- round trips ------------------------------------------------------------------


EVENTS = [
    Prediction(
        event_id="e-1",
        model="credit-risk",
        model_version="3",
        data_version="2026-05",
        features={"age": 42, "income": 55000.5, "region": "north", "vip": False, "phone": None},
        prediction="approve",
        timestamp=1767225600.125,
        probabilities={"approve": 0.75, "reject": 0.25},
        latency_ms=0.0,
        segments={"region": "north"},
        error="upstream timeout",
    ),
    Prediction(event_id="e-2", model="m", model_version="1", features={}, prediction=0.5),
    Label(event_id="e-1", model="credit-risk", label=True, timestamp=1767229200.0),
    Label(event_id="e-1", model="credit-risk", label="approve", model_version="3"),
    Heartbeat(
        model="credit-risk",
        model_version="3",
        instance="host-1",
        timestamp=1767225660.0,
        cpu_ratio=1.0,
        rss_bytes=1.5e9,
        requests_total=10.0,
        errors_total=0.0,
        uptime_seconds=3.0,
    ),
    Heartbeat(model="credit-risk", model_version="3", instance="host-1"),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.type)
def test_round_trip_equals_the_original(event: Prediction | Label | Heartbeat) -> None:
    assert decode(encode(event)) == event


@pytest.mark.parametrize("base", BASES.values(), ids=BASES.keys())
def test_decoding_then_encoding_keeps_every_field(base: dict[str, Any]) -> None:
    event = decode(json.dumps(base))
    assert json.loads(encode(event)) == base
    assert decode(json.dumps(base).encode("utf-8")) == event


def test_encode_is_compact_utf8_json_with_type_and_version() -> None:
    raw = encode(Label(event_id="é", model="m", label=1))
    assert raw == b'{"type":"label","schema_version":1,"event_id":"\\u00e9","model":"m","label":1}'
    assert decode(raw.decode("ascii")) == Label(event_id="é", model="m", label=1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-05-01T12:00:00Z", datetime(2026, 5, 1, 12, tzinfo=UTC).timestamp()),
        ("2026-05-01T14:00:00+02:00", datetime(2026, 5, 1, 12, tzinfo=UTC).timestamp()),
        ("2026-05-01T12:00:00.250Z", datetime(2026, 5, 1, 12, tzinfo=UTC).timestamp() + 0.25),
        (1767225600, 1767225600.0),
        (1767225600.5, 1767225600.5),
        (0, 0.0),
    ],
)
def test_timestamps_in_rfc3339_and_unix_seconds(text: str | float, expected: float) -> None:
    event = decode(changed(LABEL, "timestamp", text))
    assert event.timestamp == pytest.approx(expected, abs=1e-6)
    assert isinstance(event.timestamp, float)


@pytest.mark.parametrize("base", BASES.values(), ids=BASES.keys())
def test_fields_not_in_the_table_are_ignored(base: dict[str, Any]) -> None:
    extended = base | {"trace_id": "abc", "nested": {"x": [1, 2, {"y": None}]}, "count": 3}
    assert decode(json.dumps(extended)) == decode(json.dumps(base))


def test_optional_fields_take_their_defaults() -> None:
    minimal = {key: PREDICTION[key] for key in PREDICTION if key in _REQUIRED["prediction"]}
    event = decode(json.dumps(minimal))
    assert isinstance(event, Prediction)
    assert event.data_version == "unknown"
    assert (event.timestamp, event.probabilities, event.latency_ms) == (None, None, None)
    assert (event.segments, event.error) == (None, None)


def test_numpy_scalars_encode_as_plain_json_values() -> None:
    features: dict[str, Any] = {"a": np.float32(1.5), "b": np.int64(3), "c": np.bool_(True)}
    prediction: Any = np.int64(1)
    event = Prediction(
        event_id="e", model="m", model_version="1", features=features, prediction=prediction
    )
    assert json.loads(encode(event))["features"] == {"a": 1.5, "b": 3, "c": True}


# --- encode refuses what JSON cannot carry --------------------------------------------


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_encode_rejects_non_finite_and_names_the_field(value: float) -> None:
    event = Prediction(event_id="e", model="m", model_version="1", features={"x": value},
                       prediction=1)
    with pytest.raises(SchemaError) as info:
        encode(event)
    assert (info.value.reason, info.value.field) == (RejectReason.NON_FINITE, "features.x")


@pytest.mark.parametrize("value", [object(), np.array([1.0, 2.0]), {1, 2}])
def test_encode_rejects_values_json_cannot_represent(value: object) -> None:
    features: dict[str, Any] = {"x": value}
    event = Prediction(event_id="e", model="m", model_version="1", features=features,
                       prediction=1)
    with pytest.raises(SchemaError) as info:
        encode(event)
    assert info.value.reason is RejectReason.INVALID_FIELD


# --- rejections: every reason but `limit` ----------------------------------------------


def test_the_reasons_are_the_fixed_set_of_the_contract() -> None:
    assert {reason.value for reason in RejectReason} == {
        "invalid_json",
        "oversize",
        "unsupported_schema_version",
        "unknown_type",
        "missing_field",
        "invalid_field",
        "non_finite",
        "limit",
        "processing_error",
    }


@pytest.mark.parametrize(
    "raw",
    [
        b'{"type": "label", "model": "caf\xe9"}',  # Latin-1, not UTF-8
        b"\xff\xfe{}",
        b'{"type": "prediction", "schema_version": 1',  # truncated
        b"",
        b"not json",
        b"[1, 2]",
        b'"a string"',
        b"42",
        b"null",
        "[]",
    ],
    ids=["latin1", "bom-bytes", "truncated", "empty", "text", "array", "string", "number",
         "null", "str-array"],
)
def test_invalid_json(raw: bytes | str) -> None:
    error = rejection(raw)
    assert (error.reason, error.field) == (RejectReason.INVALID_JSON, "")


LONG = "x" * (MAX_STRING_VALUE_CHARS + 1)


@pytest.mark.parametrize(
    ("base", "field", "value", "expected_field"),
    [
        (PREDICTION, "padding", "x" * MAX_MESSAGE_BYTES, ""),
        (PREDICTION, "features.region", LONG, "features.region"),
        (PREDICTION, "segments.region", LONG, "segments.region"),
        (PREDICTION, "error", LONG, "error"),
        (PREDICTION, "prediction", LONG, "prediction"),
        (PREDICTION, "features", {f"f{i}": i for i in range(10_001)}, "features"),
        (LABEL, "label", LONG, "label"),
        (HEARTBEAT, "padding", "x" * MAX_MESSAGE_BYTES, ""),
    ],
    ids=["message", "string-feature", "segment", "error", "prediction", "feature-count",
         "label", "heartbeat-message"],
)
def test_oversize(base: dict[str, Any], field: str, value: object, expected_field: str) -> None:
    error = rejection(changed(base, field, value))
    assert (error.reason, error.field) == (RejectReason.OVERSIZE, expected_field)


def test_oversize_counts_utf8_bytes_of_a_str_message() -> None:
    # 600k two-byte characters: under the limit in characters, over it in bytes.
    raw = json.dumps(PREDICTION | {"padding": "é" * 600_000}, ensure_ascii=False)
    assert len(raw) < MAX_MESSAGE_BYTES < len(raw.encode("utf-8"))
    error = rejection(raw)
    assert (error.reason, error.field) == (RejectReason.OVERSIZE, "")


@pytest.mark.parametrize("version", [2, 0, -1, "1", 1.5, True, [1], {"v": 1}])
@pytest.mark.parametrize("base", BASES.values(), ids=BASES.keys())
def test_unsupported_schema_version(base: dict[str, Any], version: object) -> None:
    error = rejection(changed(base, "schema_version", version))
    expected = (RejectReason.UNSUPPORTED_SCHEMA_VERSION, "schema_version")
    assert (error.reason, error.field) == expected


@pytest.mark.parametrize("kind", ["Prediction", "predictions", "metric", "", 3, False, ["label"]])
def test_unknown_type(kind: object) -> None:
    error = rejection(changed(PREDICTION, "type", kind))
    assert (error.reason, error.field) == (RejectReason.UNKNOWN_TYPE, "type")


_REQUIRED = {
    "prediction": [
        "type", "schema_version", "event_id", "model", "model_version", "features", "prediction",
    ],
    "label": ["type", "schema_version", "event_id", "model", "label"],
    "heartbeat": ["type", "schema_version", "model", "model_version", "instance"],
}
MISSING_CASES = [(kind, name) for kind, names in _REQUIRED.items() for name in names]


@pytest.mark.parametrize(
    ("kind", "name"), MISSING_CASES, ids=[f"{k}-{n}" for k, n in MISSING_CASES]
)
@pytest.mark.parametrize("how", ["absent", "null"])
def test_missing_field(kind: str, name: str, how: str) -> None:
    error = rejection(changed(BASES[kind], name, DELETE if how == "absent" else None))
    assert (error.reason, error.field) == (RejectReason.MISSING_FIELD, name)


INVALID_CASES: list[tuple[str, dict[str, Any], str, object, str]] = [
    ("model-space", PREDICTION, "model", "credit risk", "model"),
    ("model-empty", PREDICTION, "model", "", "model"),
    ("model-65", LABEL, "model", "m" * 65, "model"),
    ("model-slash", HEARTBEAT, "model", "team/credit", "model"),
    ("model-non-ascii", PREDICTION, "model", "crédit", "model"),
    ("model-number", PREDICTION, "model", 7, "model"),
    ("event-id-empty", PREDICTION, "event_id", "", "event_id"),
    ("event-id-129", LABEL, "event_id", "e" * 129, "event_id"),
    ("event-id-number", PREDICTION, "event_id", 12, "event_id"),
    ("model-version-65", PREDICTION, "model_version", "v" * 65, "model_version"),
    ("model-version-empty", HEARTBEAT, "model_version", "", "model_version"),
    ("label-model-version-number", LABEL, "model_version", 3, "model_version"),
    ("data-version-65", PREDICTION, "data_version", "d" * 65, "data_version"),
    ("probability-over-1", PREDICTION, "probabilities.1", 1.0001, "probabilities.1"),
    ("probability-negative", PREDICTION, "probabilities.0", -0.1, "probabilities.0"),
    ("probability-string", PREDICTION, "probabilities.0", "0.2", "probabilities.0"),
    ("probability-bool", PREDICTION, "probabilities.0", True, "probabilities.0"),
    ("probabilities-list", PREDICTION, "probabilities", [0.2, 0.8], "probabilities"),
    ("latency-negative", PREDICTION, "latency_ms", -1, "latency_ms"),
    ("latency-string", PREDICTION, "latency_ms", "3ms", "latency_ms"),
    ("timestamp-milliseconds", PREDICTION, "timestamp", 1767225600000, "timestamp"),
    ("timestamp-negative", LABEL, "timestamp", -1.0, "timestamp"),
    ("timestamp-naive-rfc3339", PREDICTION, "timestamp", "2026-05-01T12:00:00", "timestamp"),
    ("timestamp-date-only", LABEL, "timestamp", "2026-05-01", "timestamp"),
    ("timestamp-garbage", HEARTBEAT, "timestamp", "yesterday", "timestamp"),
    ("timestamp-bool", PREDICTION, "timestamp", True, "timestamp"),
    ("features-list", PREDICTION, "features", [1, 2], "features"),
    ("features-string", PREDICTION, "features", "age=42", "features"),
    ("feature-list", PREDICTION, "features.age", [42], "features.age"),
    ("feature-object", PREDICTION, "features.age", {"value": 42}, "features.age"),
    ("feature-empty-name", PREDICTION, "features.", 1, "features."),
    ("prediction-list", PREDICTION, "prediction", [1], "prediction"),
    ("prediction-object", PREDICTION, "prediction", {"class": 1}, "prediction"),
    ("segment-number", PREDICTION, "segments.region", 3, "segments.region"),
    ("segments-list", PREDICTION, "segments", ["north"], "segments"),
    ("error-number", PREDICTION, "error", 500, "error"),
    ("label-list", LABEL, "label", [0], "label"),
    ("cpu-ratio-over-1", HEARTBEAT, "cpu_ratio", 1.5, "cpu_ratio"),
    ("rss-negative", HEARTBEAT, "rss_bytes", -1, "rss_bytes"),
    ("requests-string", HEARTBEAT, "requests_total", "10", "requests_total"),
    ("instance-129", HEARTBEAT, "instance", "i" * 129, "instance"),
    ("instance-empty", HEARTBEAT, "instance", "", "instance"),
    ("instance-number", HEARTBEAT, "instance", 1, "instance"),
]


@pytest.mark.parametrize(
    ("base", "field", "value", "expected_field"),
    [case[1:] for case in INVALID_CASES],
    ids=[case[0] for case in INVALID_CASES],
)
def test_invalid_field(
    base: dict[str, Any], field: str, value: object, expected_field: str
) -> None:
    error = rejection(changed(base, field, value))
    assert (error.reason, error.field) == (RejectReason.INVALID_FIELD, expected_field)


NON_FINITE_LITERALS = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"]


@pytest.mark.parametrize("literal", NON_FINITE_LITERALS)
@pytest.mark.parametrize(
    ("base", "field"),
    [
        (PREDICTION, "features.income"),
        (PREDICTION, "probabilities.1"),
        (PREDICTION, "latency_ms"),
        (PREDICTION, "prediction"),
        (LABEL, "label"),
        (LABEL, "timestamp"),
        (HEARTBEAT, "cpu_ratio"),
        (PREDICTION, "unknown_extra"),
    ],
    ids=["feature", "probability", "latency", "prediction", "label", "timestamp", "heartbeat",
         "ignored-field"],
)
def test_non_finite(base: dict[str, Any], field: str, literal: str) -> None:
    # json.dumps cannot write these, so splice the literal into the text by hand.
    raw = changed(base, field, "__HOLE__").replace(b'"__HOLE__"', literal.encode())
    assert literal.encode() in raw
    error = rejection(raw)
    assert (error.reason, error.field) == (RejectReason.NON_FINITE, field)


def test_the_error_message_names_reason_and_field() -> None:
    error = rejection(changed(PREDICTION, "latency_ms", -1))
    assert str(error).startswith("invalid_field: latency_ms: ")
    assert isinstance(error, ValueError)


# --- poison: values that parse but cannot be processed -------------------------------------

BIG = "1" + "0" * 400  # an integer over float64's range (about 1.8e308)
HUGE = "9" * 4301  # over Python's 4,300-digit limit for int parsing


def spliced(base: dict[str, Any], field: str, literal: str) -> bytes:
    """``base`` with ``field`` set to a raw JSON literal that json.dumps cannot write."""
    raw = changed(base, field, "__HOLE__").replace(b'"__HOLE__"', literal.encode())
    assert literal.encode() in raw
    return raw


OVERFLOW_FIELDS = [
    (PREDICTION, "latency_ms"),
    (PREDICTION, "features.age"),
    (PREDICTION, "prediction"),
    (PREDICTION, "probabilities.1"),
    (PREDICTION, "timestamp"),
    (LABEL, "label"),
    (HEARTBEAT, "cpu_ratio"),
    (HEARTBEAT, "rss_bytes"),
    (HEARTBEAT, "uptime_seconds"),
    (PREDICTION, "unknown_extra"),
]
OVERFLOW_IDS = ["latency", "feature", "prediction", "probability", "timestamp", "label",
                "cpu", "rss", "uptime", "ignored-field"]


@pytest.mark.parametrize("sign", ["", "-"])
@pytest.mark.parametrize(("base", "field"), OVERFLOW_FIELDS, ids=OVERFLOW_IDS)
def test_an_integer_beyond_float64_is_non_finite(
    base: dict[str, Any], field: str, sign: str
) -> None:
    error = rejection(spliced(base, field, sign + BIG))
    assert (error.reason, error.field) == (RejectReason.NON_FINITE, field)


@pytest.mark.parametrize(("base", "field"), OVERFLOW_FIELDS, ids=OVERFLOW_IDS)
def test_an_integer_too_long_to_parse_is_an_invalid_field(base: dict[str, Any], field: str) -> None:
    error = rejection(spliced(base, field, HUGE))
    assert (error.reason, error.field) == (RejectReason.INVALID_FIELD, field)


def test_the_largest_integer_a_float_holds_is_accepted() -> None:
    event = decode(spliced(PREDICTION, "features.age", str(int(1.7976931348623157e308))))
    assert isinstance(event, Prediction)
    assert float(event.features["age"]) == 1.7976931348623157e308  # type: ignore[arg-type]


SURROGATE_CASES = [
    ("model-version", PREDICTION, "model_version", r"v\ud800", "model_version"),
    ("segment-value", PREDICTION, "segments.region", r"\udfff", "segments.region"),
    ("feature-value", PREDICTION, "features.region", r"a\ud800b", "features.region"),
    ("event-id", LABEL, "event_id", r"\ud800", "event_id"),
    ("label", LABEL, "label", r"\udc00", "label"),
    ("instance", HEARTBEAT, "instance", r"\ud800", "instance"),
    ("error", PREDICTION, "error", r"\ud800", "error"),
    ("ignored-field", PREDICTION, "trace", r"\ud800", "trace"),
]


@pytest.mark.parametrize(
    ("base", "field", "escaped", "expected_field"),
    [case[1:] for case in SURROGATE_CASES],
    ids=[case[0] for case in SURROGATE_CASES],
)
def test_a_lone_surrogate_in_a_value_is_an_invalid_field(
    base: dict[str, Any], field: str, escaped: str, expected_field: str
) -> None:
    error = rejection(spliced(base, field, f'"{escaped}"'))
    assert (error.reason, error.field) == (RejectReason.INVALID_FIELD, expected_field)


@pytest.mark.parametrize("parent", ["features", "segments", "probabilities", ""])
def test_a_lone_surrogate_in_a_key_is_an_invalid_field_named_printably(parent: str) -> None:
    # json.dumps escapes the surrogate as \ud800: valid JSON text holding an invalid string.
    obj = copy.deepcopy(PREDICTION)
    (obj[parent] if parent else obj)["\ud800"] = "1"
    error = rejection(json.dumps(obj).encode("ascii"))
    expected = rf"{parent}.\ud800" if parent else r"\ud800"
    assert (error.reason, error.field) == (RejectReason.INVALID_FIELD, expected)
    str(error).encode("utf-8")  # printable: no surrogate reaches a log, header or file


def test_a_lone_surrogate_in_a_str_message_is_an_invalid_field() -> None:
    error = rejection(json.dumps(PREDICTION | {"model_version": "\ud800"}, ensure_ascii=False))
    assert (error.reason, error.field) == (RejectReason.INVALID_FIELD, "model_version")


def test_a_surrogate_pair_is_one_character_and_accepted() -> None:
    event = decode(spliced(PREDICTION, "model_version", '"\\ud83d\\ude00"'))
    assert isinstance(event, Prediction)
    assert event.model_version == "\U0001f600"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"type":"label","schema_version":1,"event_id":"a","model":"m","label":1,"label":0}',
        b'{"type":"label","schema_version":1,"event_id":"a","event_id":"b","model":"m","label":1}',
        b'{"type":"prediction","schema_version":1,"event_id":"a","model":"m","model_version":"1",'
        b'"features":{"x":1,"x":2},"prediction":1}',
        b'{"type":"label","schema_version":1,"event_id":"a","model":"m","label":1,'
        b'"extra":{"deep":[{"k":1,"k":1}]}}',
    ],
    ids=["label", "event-id", "feature", "nested-extra"],
)
def test_duplicate_keys_at_any_depth_are_invalid_json(raw: bytes) -> None:
    error = rejection(raw)
    assert error.reason is RejectReason.INVALID_JSON


@pytest.mark.parametrize(
    "text",
    ["9999-12-31T23:59:59+00:00", "5138-11-16T09:46:40+00:00", "1969-12-31T23:59:59+00:00",
     "0001-01-01T00:00:00+14:00"],
    ids=["year-9999", "at-the-limit", "before-1970", "year-1"],
)
def test_string_timestamps_outside_the_numeric_range_are_invalid(text: str) -> None:
    error = rejection(changed(LABEL, "timestamp", text))
    assert (error.reason, error.field) == (RejectReason.INVALID_FIELD, "timestamp")


def test_encode_names_the_reason_of_an_integer_json_cannot_carry() -> None:
    over = Prediction(event_id="e", model="m", model_version="1", features={"x": 10**400},
                      prediction=1)
    huge = Prediction(event_id="e", model="m", model_version="1", features={"x": 10**5000},
                      prediction=1)
    assert rejection(encode(over)).field == "features.x"
    assert rejection(encode(over)).reason is RejectReason.NON_FINITE
    with pytest.raises(SchemaError) as info:
        encode(huge)
    assert (info.value.reason, info.value.field) == (RejectReason.INVALID_FIELD, "features.x")
