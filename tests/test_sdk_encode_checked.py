"""The SDK's sender checks an event once (``driftline.wire.encode_checked``) with exactly decode's verdict.

Differential: against today's reference path (``encode`` then ``decode``), an
event is sent or rejected alike (reason and field), and what is sent decodes
to the same event, types and key order included (the bytes may differ: msgspec
writes non-ASCII text as UTF-8, not ``\\u`` escapes).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from driftline import schema
from driftline.schema import (
    MAX_MESSAGE_BYTES,
    Heartbeat,
    Label,
    Prediction,
    RejectReason,
    SchemaError,
    decode,
    encode,
)
from driftline.wire import encode_checked
from hypothesis import given, settings
from hypothesis import strategies as st

from collector import fast_decode
from tests.test_fast_decode import typed

ANY_TEXT = st.text(alphabet=st.characters(exclude_categories=()), max_size=8)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**1100, -(2**1100), 10**4400]),
    st.floats(allow_nan=True, allow_infinity=True),
    ANY_TEXT,
    st.sampled_from(["x" * 1100, "\ud83d\ude00", "a\ud800", "\udfff", "é"]),
    st.sampled_from([np.float64(1.5), np.float64("nan"), np.int64(3), np.bool_(True)]),
)
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=2), st.dictionaries(ANY_TEXT, SCALARS, max_size=2))
KEYS = st.one_of(ANY_TEXT, st.sampled_from(["0", "1", "\ud800"]), st.integers(0, 2))


def _verdict(call: Any) -> tuple[object, ...]:
    """Sent (as the event the collector decodes from the bytes), rejected (reason, field) or raised."""
    try:
        return ("sent", typed(decode(call())))
    except SchemaError as error:
        return ("rejected", error.reason, error.field)
    except Exception as error:  # what the client counts as invalid_field
        return ("raised", type(error).__name__)


def _exact(event: Prediction | Label | Heartbeat) -> bytes:
    payload = encode(event)
    decode(payload)
    return payload


@settings(max_examples=400, deadline=None)
@given(
    features=st.dictionaries(KEYS, VALUES, max_size=4),
    prediction=SCALARS,
    probabilities=st.one_of(st.none(), st.dictionaries(KEYS, SCALARS, max_size=3)),
    event_id=st.one_of(ANY_TEXT, st.just("e1")),
    timestamp=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    segments=st.one_of(st.none(), st.dictionaries(KEYS, VALUES, max_size=2)),
)
def test_encode_checked_gives_decodes_verdict_on_any_prediction(
    features: dict[Any, Any],
    prediction: Any,
    probabilities: dict[Any, Any] | None,
    event_id: str,
    timestamp: float | None,
    segments: dict[Any, Any] | None,
) -> None:
    event = Prediction(
        event_id=event_id,
        model="m",
        model_version="1",
        features=features,
        prediction=prediction,
        timestamp=timestamp,
        probabilities=probabilities,
        segments=segments,
    )
    assert _verdict(lambda: encode_checked(event)) == _verdict(lambda: _exact(event))


@settings(max_examples=150, deadline=None)
@given(event_id=ANY_TEXT, label=SCALARS, model_version=st.one_of(st.none(), ANY_TEXT))
def test_encode_checked_gives_decodes_verdict_on_any_label(
    event_id: str, label: Any, model_version: str | None
) -> None:
    event = Label(event_id=event_id, model="m", label=label, timestamp=1.7e9, model_version=model_version)
    assert _verdict(lambda: encode_checked(event)) == _verdict(lambda: _exact(event))


def test_a_plain_valid_event_is_sent_as_the_event_encode_writes() -> None:
    event = Prediction("e1", "m", "1", {"age": 42, "region": "north", "x": 0.5}, 1, timestamp=1.7e9,
                       probabilities={"0": 0.25, "1": 0.75})
    assert decode(encode_checked(event)) == decode(encode(event)) == event


FINITE = st.floats(allow_nan=False, allow_infinity=False)
PLAIN_TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=8)
PLAIN_KEYS = st.text(alphabet=st.characters(exclude_categories=("Cs",)), min_size=1, max_size=8)
PLAIN_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), FINITE, PLAIN_TEXT)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(
    features=st.dictionaries(PLAIN_KEYS, PLAIN_VALUES, max_size=6),
    prediction=st.one_of(st.booleans(), st.integers(-(2**63), 2**63 - 1), FINITE, PLAIN_TEXT),
    probabilities=st.one_of(st.none(), st.dictionaries(PLAIN_KEYS, st.floats(0, 1), max_size=3)),
    timestamp=st.one_of(st.none(), st.floats(0, 1e11, exclude_max=True)),
    latency_ms=st.one_of(st.none(), st.floats(0, 1e6)),
    vector=st.lists(FINITE, min_size=1, max_size=4),
)
def test_a_valid_event_is_written_once_never_reparsed(
    features: dict[str, Any],
    prediction: Any,
    probabilities: dict[str, float] | None,
    timestamp: float | None,
    latency_ms: float | None,
    vector: list[float],
) -> None:
    """The sender's fast path: no reference ``decode`` of its own output, and the same event arrives."""
    event = Prediction("e1", "m", "1", features, prediction, timestamp=timestamp, probabilities=probabilities,
                       latency_ms=latency_ms, segments={"region": "north"}, embeddings={"q": vector})
    expected = typed(decode(encode(event)))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(schema, "decode", None)
        payload = encode_checked(event)
    assert typed(decode(payload)) == expected


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(
    instance=ANY_TEXT,
    cpu_ratio=st.one_of(st.none(), st.floats(-1, 2), st.just(float("nan"))),
    rss_bytes=SCALARS,
    requests_total=st.one_of(st.none(), st.integers(-1, 10), st.floats(allow_nan=True)),
)
def test_encode_checked_gives_decodes_verdict_on_any_heartbeat(
    instance: str, cpu_ratio: float | None, rss_bytes: Any, requests_total: Any
) -> None:
    event = Heartbeat(model="m", model_version="1", instance=instance, timestamp=1.7e9, cpu_ratio=cpu_ratio,
                      rss_bytes=rss_bytes, requests_total=requests_total)
    assert _verdict(lambda: encode_checked(event)) == _verdict(lambda: _exact(event))


def test_the_size_limit_is_on_the_bytes_sent() -> None:
    """Non-ASCII text is written as UTF-8 (2 bytes for "é"), not as ``\\u00e9`` (6 bytes, the reference's
    ``encode``): an event over 1 MiB only in escaped form is sent, and the collector accepts what it gets."""
    accented = {f"f{i}": "é" * 1000 for i in range(300)}
    event = Prediction("e1", "m", "1", accented, 1, timestamp=1.7e9)
    assert len(encode(event)) > MAX_MESSAGE_BYTES
    payload = encode_checked(event)
    assert len(payload) < MAX_MESSAGE_BYTES / 1.5
    assert fast_decode.decode(payload) == decode(payload) == event

    plain = Prediction("e1", "m", "1", {f"f{i}": "x" * 1000 for i in range(1100)}, 1, timestamp=1.7e9)
    with pytest.raises(SchemaError) as rejected:
        encode_checked(plain)
    assert rejected.value.reason is RejectReason.OVERSIZE


def test_numpy_scalars_take_the_fast_path_as_their_python_values() -> None:
    """A NumPy row's scalars (``np.float32``, ``np.int64``, ``np.bool_``) are written as ``encode`` does."""
    row = np.array([0.1, 2.5, -3.0], dtype=np.float32)
    features: dict[str, Any] = dict(zip("abc", row, strict=True))
    features |= {"n": np.int64(7), "flag": np.bool_(True)}
    probabilities = {"0": np.float32(0.25), "1": np.float64(0.75)}
    event = Prediction("e1", "m", "1", features, np.int64(1), timestamp=1.7e9, probabilities=probabilities,
                       embeddings={"q": (np.float32(0.5),)})
    expected = typed(decode(encode(event)))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(schema, "decode", None)
        payload = encode_checked(event)
    assert typed(decode(payload)) == expected
    assert decode(payload).features == {"a": float(row[0]), "b": 2.5, "c": -3.0, "n": 7, "flag": True}
