"""The collector's decoder (collector.fast_decode) against the reference ``driftline.schema.decode``.

Differential: for generated events, events written with every JSON liberty
(whitespace, ``\\u`` escapes, repeated keys at any depth, ``null``s, numbers
at the edges of int64 and float64, texts at their length limits), hostile
events, random JSON and random bytes, both decoders must give the same event
(same types, same values, same key order) or the same rejection (reason,
field and message). The fast path must also really be taken for what the SDK
writes, or the speed-up is fiction.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable
from typing import Any

import pytest
from driftline import schema, wire
from driftline.schema import Heartbeat, Label, Prediction, SchemaError, encode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector import fast_decode
from tests.poison import POISONS
from tests.test_poison_property import events, hostile_messages

SETTINGS = settings(
    max_examples=600,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def typed(value: object) -> object:
    """A value with every type spelled out: ``1``, ``1.0``, ``True`` and ``-0.0`` all differ."""
    if dataclasses.is_dataclass(value):
        members = [(f.name, typed(getattr(value, f.name))) for f in dataclasses.fields(value)]
        return (type(value).__name__, members)
    if isinstance(value, dict):
        return ("dict", [(typed(k), typed(v)) for k, v in value.items()])
    return (type(value).__name__, repr(value))


def outcome(decode: Callable[[bytes | str], object], raw: bytes | str) -> object:
    try:
        event = decode(raw)
    except SchemaError as error:
        return ("rejected", error.reason, error.field, error.message)
    except Exception as error:  # the reference's own failures must be reproduced as well
        return ("raised", type(error).__name__, str(error))
    return ("accepted", typed(event))


def assert_same(raw: bytes | str) -> None:
    assert outcome(fast_decode.decode, raw) == outcome(schema.decode, raw), raw


# --- JSON written with every liberty the grammar allows ---------------------------------------

Pairs = list[tuple[str, Any]]


class Literal(str):
    """JSON text written as is (a number, ``null``, ``true``)."""


def written(value: object, rng: random.Random) -> str:
    """``value`` as JSON text: pairs lists are objects (keys may repeat), with random spacing
    and characters of strings randomly written as ``\\u`` escapes (``rng`` is Hypothesis's)."""
    if isinstance(value, Literal):
        return str(value)
    if isinstance(value, str):
        return escaped(value, rng)
    if isinstance(value, list):
        members = [f"{escaped(key, rng)}{space(rng)}:{space(rng)}{written(item, rng)}" for key, item in value]
        return "{" + space(rng) + ("," + space(rng)).join(members) + space(rng) + "}"
    return json.dumps(value)


def space(rng: random.Random) -> str:
    return rng.choice(["", "", "", " ", "\n\t "])


def escaped(text: str, rng: random.Random) -> str:
    """A JSON string of ``text``, some characters (colons above all) written as ``\\uXXXX``."""
    out = []
    for char in text:
        plain = json.dumps(char, ensure_ascii=False)[1:-1]
        if rng.random() < 0.1 or (char == ":" and rng.random() < 0.5):
            hex_digits = f"{ord(char):04x}" if ord(char) < 0x10000 else None
            out.append(f"\\u{hex_digits}" if hex_digits and char not in '"\\' else plain)
        else:
            out.append(plain)
    return '"' + "".join(out) + '"'


EDGE_NUMBERS = [str(n) for n in (0, 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64, 10**30, 2**53 + 1)]
EDGE_NUMBERS += [
    "-0",
    "-0.0",
    "0.0",
    "1.0",
    "-1",
    "-1e-9",
    "1e2",
    "1E-2",
    "1e308",
    "1.7976931348623157e308",
    "1.7976931348623158e308",
    "1e309",
    "5e-324",
    "1e-400",
    "99999999999.9",
    "100000000000",
    "1e11",
    "0.5",
    "1.5",
    "12345678901234567890.5",
    "9007199254740993",
    "9007199254740993.0",
]
EDGE_TEXTS = [
    "",
    "a",
    "a:b",
    "::",
    "m\n",
    "2026-01-01T00:00:00+00:00",
    "2026-01-01T00:00:00",
    "1960-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-12:00",
    "x" * 64,
    "x" * 65,
    "x" * 128,
    "x" * 129,
    "x" * 1024,
    "x" * 1025,
    "\U0001f600" * 1024,
    "\U0001f600" * 1025,
    "é" * 64,
    "é" * 65,
    "prediction",
    "label",
    "heartbeat",
    "credit-risk_v.2",
]
EDGE_VECTORS = ["[]", "[1]", "[-0]", "[1.5,-2]", "[true]", "[null]", "[1e400]", '["a"]', "[[1]]", "[{}]"]
EDGE_VECTORS += ["[" + ",".join(["0.25"] * size) + "]" for size in (1024, 1025)]
EDGE_VECTORS += ["[9007199254740993,18446744073709551617]", "[" + "1" * 400 + "]", "[1 , 2]"]
EDGE_VECTORS += ["{" + ",".join(f'"e{i}":[1]' for i in range(size)) + "}" for size in (16, 17)]
edge_numbers = st.sampled_from(EDGE_NUMBERS)
edge_texts = st.sampled_from(EDGE_TEXTS)
any_value: st.SearchStrategy[Any] = st.one_of(
    edge_numbers.map(Literal),
    st.sampled_from([Literal("null"), Literal("true"), Literal("false"), *map(Literal, EDGE_VECTORS)]),
    edge_texts,
    st.text(max_size=8),
)
FIELDS_OF = {
    "prediction": ["type", *wire.PredictionWire.__struct_fields__],
    "label": ["type", *wire.LabelWire.__struct_fields__],
    "heartbeat": ["type", *wire.HeartbeatWire.__struct_fields__],
}
TOP_KEYS = sorted({name for names in FIELDS_OF.values() for name in names} | {"extra"})


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A valid event as pairs, then a few members changed, removed, repeated or added, written."""
    event = draw(events())
    pairs: Pairs = [(k, list(v.items()) if isinstance(v, dict) else v) for k, v in event.items()]
    if event["type"] == "prediction" and draw(st.booleans()):
        vectors = st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=4)
        named = st.tuples(st.sampled_from(["a", "b", "c:d"]), vectors.map(json.dumps).map(Literal))
        pairs.append(("embeddings", draw(st.lists(named, max_size=3))))
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["set", "set", "set", "drop", "repeat", "add", "nested"]))
        index = draw(st.integers(0, len(pairs) - 1)) if pairs else 0
        if action == "set" and pairs:
            pairs[index] = (pairs[index][0], draw(any_value))
        elif action == "drop" and pairs:
            del pairs[index]
        elif action == "repeat" and pairs:
            pairs.insert(draw(st.integers(0, len(pairs))), (pairs[index][0], draw(any_value)))
        elif action == "add":
            pairs.append((draw(st.sampled_from(TOP_KEYS)), draw(any_value)))
        else:
            maps = [i for i, (_, v) in enumerate(pairs) if isinstance(v, list)]
            if maps:
                members = pairs[draw(st.sampled_from(maps))][1]
                key = draw(st.sampled_from([k for k, _ in members] or ["a"]) | edge_texts)
                members.insert(draw(st.integers(0, len(members))), (key, draw(any_value)))
    if draw(st.booleans()):
        pairs = draw(st.permutations(pairs))
    return written(pairs, draw(st.randoms(use_true_random=False)))


def single_changes() -> list[bytes]:
    """Each base event with one member (top-level or in a map) set to each edge value, once
    in place and once repeated after it: every limit of every field, exhaustively."""
    values = [*EDGE_NUMBERS, "null", "true", "false", "{}", "NaN", *EDGE_VECTORS]
    values += [json.dumps(text) for text in EDGE_TEXTS]
    out = []
    for event in SDK_EVENTS:
        base = json.loads(encode(event))
        paths = [
            *FIELDS_OF[event.type],
            "extra",
            *(
                f"{name}.{key}"
                for name in ("features", "probabilities", "segments", "embeddings")
                if name in base
                for key in [*base[name], *EDGE_TEXTS[:6], "x" * 128, "x" * 129]
            ),
        ]
        for path in paths:
            for value in values:
                out.append(spliced(base, path, value, repeat=False))
                out.append(spliced(base, path, value, repeat=True))
    return out


def spliced(base: dict[str, Any], path: str, literal: str, *, repeat: bool) -> bytes:
    """``base`` with the member at ``path`` (``a`` or ``a.b``) written as ``literal``."""
    event = json.loads(json.dumps(base))
    parent, _, name = path.rpartition(".")
    target = event[parent] if parent else event
    target[name] = "__HOLE__"
    text = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    member = f'{json.dumps(name, ensure_ascii=False)}:"__HOLE__"'
    if repeat:
        text = text.replace(member, f"{member},{member}")
    return text.replace('"__HOLE__"', literal).encode("utf-8")


def test_every_member_set_to_every_edge_value_decodes_the_same() -> None:
    verdicts = []
    for raw in single_changes():
        assert_same(raw)
        verdicts.append(outcome(schema.decode, raw)[0])
    print(len(verdicts), verdicts.count("accepted"), verdicts.count("rejected"))
    assert verdicts.count("accepted") > 1000 and verdicts.count("rejected") > 1000


@SETTINGS
@given(text=mutated(), as_bytes=st.booleans())
def test_events_written_every_way_decode_the_same(text: str, as_bytes: bool) -> None:
    assert_same(text.encode("utf-8", "surrogatepass") if as_bytes else text)


@SETTINGS
@given(raw=hostile_messages)
def test_hostile_messages_decode_the_same(raw: bytes) -> None:
    assert_same(raw)


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(raw=st.binary(max_size=200) | st.text(max_size=60))
def test_random_bytes_and_text_decode_the_same(raw: bytes | str) -> None:
    assert_same(raw)


NUMBER_TEXT = r"-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,24})?([eE][-+]?[0-9]{1,3})?"


@settings(max_examples=400, derandomize=True, database=None, deadline=None)
@given(number=st.from_regex(NUMBER_TEXT, fullmatch=True), member=st.sampled_from(["f", "latency_ms", "t"]))
def test_any_number_literal_decodes_to_the_same_value(number: str, member: str) -> None:
    """msgspec parses numbers itself: the same float (correctly rounded) or int as the stdlib."""
    base = json.loads(encode(SDK_EVENTS[0]))
    path = {"f": "features.age", "latency_ms": "latency_ms", "t": "timestamp"}[member]
    assert_same(spliced(base, path, number, repeat=False))


@pytest.mark.parametrize("poison", POISONS, ids=lambda p: p.name)
def test_poison_pills_are_rejected_the_same(poison: Any) -> None:
    assert_same(poison.raw)
    with pytest.raises(SchemaError) as info:
        fast_decode.decode(poison.raw)
    assert (info.value.reason.value, info.value.field) == (poison.reason, poison.field)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"type":"label","schema_version":1,"event_id":"e","model":"m","label":1,"label":2}',
        b'{"type":"label","schema_version":1,"event_id":"e","model":"m","label":1,"type":"label"}',
        b'{"type":"prediction","schema_version":1,"event_id":"e","model":"m","model_version":"1",'
        b'"prediction":1,"features":{"a":1,"a":2}}',
        # a repeated key hidden by a colon escaped in a string and a space before another colon
        b'{"type":"label","schema_version":1,"event_id":"\\u003a","model":"m","label":1 ,"label" :2}',
        b'{"type":"label","schema_version":1,"event_id":"a:b","model":"m","label":1,"label" :2}',
    ],
)
def test_repeated_keys_are_invalid_json_at_any_depth(raw: bytes) -> None:
    assert_same(raw)
    with pytest.raises(SchemaError) as info:
        fast_decode.decode(raw)
    assert info.value.reason is schema.RejectReason.INVALID_JSON


SDK_EVENTS = [
    Prediction(
        event_id="e1",
        model="credit",
        model_version="3",
        features={"age": 42, "x": -1.5, "r": "n:orth", "t:0": 1, "v": True, "n": None},
        prediction="yes",
        timestamp=1.7e9,
        data_version="d",
        probabilities={"yes": 0.75, "no": 0.25},
        latency_ms=3.0,
        segments={"region": "é\U0001f600"},
        error="time: out",
        embeddings={"text": (0.5, -1.0, 3.0), "image:v2": (1e-300,)},
    ),
    Prediction(event_id="e2", model="m", model_version="1", features={}, prediction=0.5),
    Label(event_id="e1", model="credit", label=1, timestamp=1.7e9, model_version="3"),
    Heartbeat(
        model="m",
        model_version="1",
        instance="i",
        timestamp=1.0,
        cpu_ratio=0.5,
        rss_bytes=1e9,
        requests_total=10.0,
        errors_total=0.0,
        uptime_seconds=5.0,
    ),
]


@pytest.mark.parametrize("event", SDK_EVENTS, ids=lambda e: f"{e.type}-{getattr(e, 'event_id', '')}")
def test_what_the_sdk_writes_takes_the_fast_path(event: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def reference(raw: bytes | str) -> object:
        raise AssertionError(f"the reference decoded {raw!r}")

    monkeypatch.setattr(schema, "decode", reference)
    assert typed(fast_decode.decode(encode(event))) == typed(event)
    assert typed(fast_decode.decode(encode(event).decode("utf-8"))) == typed(event)
    assert typed(fast_decode.decode(wire.encode_checked(event))) == typed(event)  # the SDK's sender


@pytest.mark.parametrize(
    ("raw", "timestamp"),
    [
        (
            b'{"type":"prediction","schema_version":1,"event_id":"e:1","model":"m","model_version":"1",'
            b'"features":{"a:b":null,"c":"d:e"},"prediction":1,"timestamp":null,"error":null,"segments":null}',
            None,
        ),
        (
            b'{"type":"label","schema_version":1,"event_id":"e","model":"m","label":1,'
            b'"timestamp":"2026-01-01T00:00:00+01:00"}',
            1767222000.0,
        ),
    ],
    ids=["explicit-nulls-and-colons", "rfc3339-timestamp"],
)
def test_other_writers_liberties_take_the_fast_path(
    raw: bytes, timestamp: float | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = schema.decode(raw)
    monkeypatch.setattr(schema, "decode", None)
    assert typed(fast_decode.decode(raw)) == typed(expected)
    assert expected.timestamp == timestamp


@pytest.mark.parametrize("present", range(2**7))
def test_a_predictions_key_count_field_by_field_equals_the_generic_count(present: int) -> None:
    """The commonest message's key count, spelled out field by field, is the generic count for
    every combination of its optional fields (a field added to PredictionWire fails here first)."""
    assert wire.PredictionWire.__struct_fields__ == (
        "schema_version", "timestamp", "event_id", "model", "model_version", "features", "prediction",
        "data_version", "probabilities", "latency_ms", "segments", "error", "embeddings",
    )
    optional = {
        "timestamp": 1.5,
        "data_version": "d1",
        "probabilities": {"a": 0.25, "b": 0.75},
        "latency_ms": 3.0,
        "segments": {"region": "eu", "tier": "1"},
        "error": "timeout",
        "embeddings": {"text": (0.5, 1.0, 2.0)},
    }
    chosen = {name: value for bit, (name, value) in enumerate(optional.items()) if present >> bit & 1}
    event = wire.PredictionWire(
        schema_version=1, event_id="e", model="m", model_version="v", features={"x": 1.0, "y": "a"},
        prediction=1, **chosen,  # type: ignore[arg-type]
    )
    assert fast_decode._prediction_key_count(event) == fast_decode._key_count(event)
    assert fast_decode._key_count(event) == 1 + 6 + 2 + sum(
        1 + len(value) if isinstance(value, dict) else 1 for value in chosen.values()
    )


def test_the_decoder_sets_every_slot_of_the_prediction_that_its_init_would() -> None:
    """The decoder builds a Prediction by setting its slots (collector.fast_decode._prediction):
    it must know every field, in order, and skip no validation (no __post_init__)."""
    assert [field.name for field in dataclasses.fields(Prediction)] == [
        "event_id", "model", "model_version", "features", "prediction", "timestamp", "data_version",
        "probabilities", "latency_ms", "segments", "error", "embeddings", "type",
    ]
    assert not hasattr(Prediction, "__post_init__")
    built = fast_decode._prediction(
        wire.PredictionWire(
            schema_version=1, event_id="e", model="m", model_version="v", features={"x": 1.0},
            prediction="yes", timestamp="2024-01-01T00:00:00Z", probabilities={"yes": 1.0}, latency_ms=2.0,
            segments={"s": "a"}, error="e!", embeddings={"t": (1.0,)},
        )
    )
    assert built == Prediction(
        "e", "m", "v", {"x": 1.0}, "yes", 1704067200.0, "unknown", {"yes": 1.0}, 2.0, {"s": "a"}, "e!",
        {"t": (1.0,)},
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.model = "other"  # type: ignore[misc]
