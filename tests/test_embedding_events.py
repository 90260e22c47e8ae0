"""The optional ``embeddings`` field of prediction events: schema, limits, the SDK argument."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from driftline import Client, MemoryTransport
from driftline.schema import (
    MAX_EMBEDDING_DIMS,
    MAX_EMBEDDINGS,
    Prediction,
    RejectReason,
    SchemaError,
    check_dimensions,
    decode,
    encode,
)
from driftline.wire import encode_checked
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_sdk_encode_checked import _exact
from tests.test_sdk_encode_checked import _verdict as _sdk_verdict

BASE: dict[str, Any] = {
    "type": "prediction",
    "schema_version": 1,
    "event_id": "e-1",
    "model": "search",
    "model_version": "1",
    "features": {"age": 42},
    "prediction": 1,
}


def _event(embeddings: Any) -> Prediction:
    return Prediction(
        event_id="e-1", model="search", model_version="1", features={}, prediction=1, embeddings=embeddings
    )


def _verdict(raw: dict[str, Any]) -> tuple[RejectReason, str]:
    with pytest.raises(SchemaError) as info:
        decode(json.dumps(raw))
    return info.value.reason, info.value.field


def test_an_embedding_round_trips_as_floats() -> None:
    event = decode(json.dumps({**BASE, "embeddings": {"query": [1, 0.5, -2.25]}}))
    assert isinstance(event, Prediction)
    assert event.embeddings == {"query": (1.0, 0.5, -2.25)}
    assert decode(encode(event)) == event
    assert decode(encode_checked(event)) == event


def test_an_event_without_embeddings_is_written_as_before() -> None:
    event = decode(json.dumps(BASE))
    assert isinstance(event, Prediction) and event.embeddings is None
    assert "embeddings" not in json.loads(encode(event))


def test_an_older_decoder_ignores_the_field() -> None:
    """What a collector without this field does: unknown fields pass, values still checked."""
    event = decode(json.dumps({**BASE, "vectors_of_the_future": {"query": [0.1, 0.2]}}))
    assert isinstance(event, Prediction) and event.embeddings is None


@pytest.mark.parametrize(
    ("embeddings", "reason", "field"),
    [
        ({"q": []}, RejectReason.INVALID_FIELD, "embeddings.q"),
        ({"q": "0.1,0.2"}, RejectReason.INVALID_FIELD, "embeddings.q"),
        ({"q": {"0": 0.1}}, RejectReason.INVALID_FIELD, "embeddings.q"),
        ({"q": [0.1, "x"]}, RejectReason.INVALID_FIELD, "embeddings.q[1]"),
        ({"q": [0.1, True]}, RejectReason.INVALID_FIELD, "embeddings.q[1]"),
        ({"q": [[0.1, 0.2]]}, RejectReason.INVALID_FIELD, "embeddings.q[0]"),
        ({"q": [0.1, None]}, RejectReason.INVALID_FIELD, "embeddings.q[1]"),
        ({"": [0.1]}, RejectReason.INVALID_FIELD, "embeddings."),
        ([[0.1]], RejectReason.INVALID_FIELD, "embeddings"),
        ({"q": [0.0] * (MAX_EMBEDDING_DIMS + 1)}, RejectReason.OVERSIZE, "embeddings.q"),
        ({f"e{i}": [0.0] for i in range(MAX_EMBEDDINGS + 1)}, RejectReason.OVERSIZE, "embeddings"),
        ({"q": [0.1, 10**400]}, RejectReason.NON_FINITE, "embeddings.q[1]"),
    ],
    ids=["empty", "string", "object", "string-item", "bool-item", "nested", "null-item", "empty-name",
         "not-an-object", "too-long", "too-many-names", "beyond-float64"],
)
def test_invalid_embeddings_are_rejected_with_reason_and_field(
    embeddings: Any, reason: RejectReason, field: str
) -> None:
    assert _verdict({**BASE, "embeddings": embeddings}) == (reason, field)
    with pytest.raises(SchemaError) as info:
        encode_checked(_event(embeddings))
    assert (info.value.reason, info.value.field) == (reason, field)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_a_non_finite_number_is_non_finite_with_its_path(literal: str) -> None:
    raw = json.dumps({**BASE, "embeddings": {"q": [0.5, "HOLE"]}}).replace('"HOLE"', literal)
    with pytest.raises(SchemaError) as info:
        decode(raw)
    assert (info.value.reason, info.value.field) == (RejectReason.NON_FINITE, "embeddings.q[1]")
    with pytest.raises(SchemaError) as info:
        encode_checked(_event({"q": [0.5, float(literal.replace("1e999", "inf"))]}))
    assert (info.value.reason, info.value.field) == (RejectReason.NON_FINITE, "embeddings.q[1]")


def test_the_limits_themselves_are_accepted() -> None:
    embeddings = {f"e{i}": [0.25] * MAX_EMBEDDING_DIMS for i in range(MAX_EMBEDDINGS)}
    event = decode(encode_checked(_event(embeddings)))
    assert isinstance(event, Prediction) and event.embeddings is not None
    assert {len(v) for v in event.embeddings.values()} == {MAX_EMBEDDING_DIMS}


def test_numpy_items_take_the_exact_path_and_agree() -> None:
    event = _event({"q": [np.float32(0.5), np.float64(1.5)]})
    assert decode(encode_checked(event)) == _event({"q": (0.5, 1.5)})


def test_check_dimensions_fixes_each_names_length_only_on_agreement() -> None:
    known: dict[str, int] = {}
    check_dimensions({"q": (0.1, 0.2)}, known)
    with pytest.raises(SchemaError) as info:
        check_dimensions({"new": (1.0,), "q": (0.1, 0.2, 0.3)}, known)
    assert (info.value.reason, info.value.field) == (RejectReason.INVALID_FIELD, "embeddings.q")
    assert known == {"q": 2}  # the rejected event fixed no new name
    check_dimensions({"new": (1.0, 2.0, 3.0), "q": (0.0, 0.0)}, known)
    assert known == {"q": 2, "new": 3}


# --- the SDK ------------------------------------------------------------------------------


@pytest.fixture
def client() -> Iterator[Client]:
    with Client("search", "1", MemoryTransport()) as made:
        yield made


def _sent(client: Client) -> list[Prediction]:
    assert client.flush(timeout=5.0) == 0
    assert isinstance(client.transport, MemoryTransport)
    events = [decode(raw) for raw in client.transport.drain(1000)]
    return [event for event in events if isinstance(event, Prediction)]


def test_the_sdk_takes_lists_tuples_and_numpy_arrays(client: Client) -> None:
    vector = np.array([0.5, -1.0, 2.0], dtype=np.float32)
    client.log_prediction({"x": 1}, 1, embeddings={"q": vector})
    client.log_prediction({"x": 1}, 1, embeddings={"q": (0.5, -1.0, 2.0)})
    client.log_prediction({"x": 1}, 1, embeddings={"q": [0.5, -1, 2]})
    vector[0] = 9.0  # the array was copied when logged
    sent = _sent(client)
    assert [event.embeddings for event in sent] == [{"q": (0.5, -1.0, 2.0)}] * 3
    assert client.stats.invalid == 0


def test_the_sdk_does_not_import_numpy() -> None:
    script = (
        "import sys\n"
        "from driftline import Client, MemoryTransport\n"
        "with Client('search', '1', MemoryTransport()) as client:\n"
        "    client.log_prediction({'x': 1}, 1, embeddings={'q': (0.5, 1.0)})\n"
        "assert client.stats.sent == 1, client.stats\n"
        "print('numpy' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("embeddings", "reason"),
    [
        ({"q": [math.nan, 1.0, 2.0]}, "non_finite"),
        ({"q": np.array([1.0, np.inf, 2.0])}, "non_finite"),
        ({"q": np.zeros((2, 3))}, "invalid_field"),
        ({"q": np.zeros(MAX_EMBEDDING_DIMS + 1)}, "oversize"),
        ({"q": 3.0}, "invalid_field"),
        ({"q": [1.0, 2.0]}, "invalid_field"),  # not the length the name had first
        ("not a mapping", "invalid_field"),
    ],
    ids=["nan", "numpy-inf", "two-dimensional", "too-long", "scalar", "other-length", "not-a-mapping"],
)
def test_the_sdk_counts_what_the_collector_would_reject(
    client: Client, embeddings: Any, reason: str
) -> None:
    client.log_prediction({"x": 1}, 1, embeddings={"q": [0.0, 0.0, 0.0]})
    client.log_prediction({"x": 1}, 1, embeddings=embeddings)
    client.log_prediction({"x": 1}, 1, embeddings={"q": [1.0, 1.0, 1.0]})
    sent = _sent(client)
    assert [event.embeddings for event in sent] == [{"q": (0.0, 0.0, 0.0)}, {"q": (1.0, 1.0, 1.0)}]
    assert (client.stats.invalid, dict(client.stats.invalid_reasons)) == (1, {reason: 1})


VECTOR_ITEMS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**1100, 10**4400, True, None, "0.5", np.float32(0.5), np.float64("nan")]),
)
VECTORS = st.one_of(
    st.lists(VECTOR_ITEMS, max_size=4),
    st.lists(VECTOR_ITEMS, max_size=4).map(tuple),
    st.sampled_from([[0.0] * (MAX_EMBEDDING_DIMS + 1), "0.5", 0.5, {"0": 0.5}, [[0.5]]]),
)


@settings(max_examples=300, deadline=None)
@given(
    embeddings=st.one_of(
        st.none(),
        st.dictionaries(st.one_of(st.text(max_size=4), st.just("a\ud800"), st.integers(0, 2)), VECTORS,
                        max_size=3),
        st.sampled_from([[[0.5]], "q", {f"e{i}": [0.5] for i in range(MAX_EMBEDDINGS + 1)}]),
    )
)
def test_encode_checked_gives_decodes_verdict_on_any_embeddings(embeddings: Any) -> None:
    """The SDK's one-pass check and the collector's decode agree, reason and field, on any embeddings."""
    event = _event(embeddings)
    assert _sdk_verdict(lambda: encode_checked(event)) == _sdk_verdict(lambda: _exact(event))
