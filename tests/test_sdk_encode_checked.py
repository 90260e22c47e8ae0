"""The SDK's sender checks an event once (encode_checked) with exactly decode's verdict."""

from __future__ import annotations

from typing import Any

import numpy as np
from driftline.schema import Label, Prediction, SchemaError, decode, encode, encode_checked
from hypothesis import given, settings
from hypothesis import strategies as st

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
    try:
        return ("sent", call())
    except SchemaError as error:
        return ("rejected", error.reason, error.field)
    except Exception as error:  # what the client counts as invalid_field
        return ("raised", type(error).__name__)


def _exact(event: Prediction | Label) -> bytes:
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


def test_a_plain_valid_event_is_sent_as_encode_writes_it() -> None:
    event = Prediction("e1", "m", "1", {"age": 42, "region": "north", "x": 0.5}, 1, timestamp=1.7e9,
                       probabilities={"0": 0.25, "1": 0.75})
    assert encode_checked(event) == encode(event)
    assert decode(encode_checked(event)) == event
