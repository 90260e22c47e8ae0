"""Label join: out-of-order labels, duplicates, unknown ids, expiry, the size bound, checkpoints."""

from __future__ import annotations

import json
import math
import random

import pytest
from driftline.schema import Label

from collector.label_join import LabelJoinStore, PredictionRecord


def _record(i: int, timestamp: float) -> PredictionRecord:
    return PredictionRecord(
        event_id=f"e{i}",
        model_version="v1",
        timestamp=timestamp,
        prediction="1" if i % 2 else "0",
        probabilities={"1": 0.7, "0": 0.3},
        segments={"region": "eu" if i % 3 else "us"},
    )


def test_labels_in_any_order_join_their_own_predictions() -> None:
    store = LabelJoinStore(max_entries=1000, max_age_seconds=10_000.0)
    for i in range(200):
        store.add(_record(i, float(i)))
    order = list(range(200))
    random.Random(7).shuffle(order)
    for i in order:
        result = store.join(f"e{i}", label=i % 5, label_timestamp=500.0 + i, now=1000.0)
        assert result.outcome == "joined"
        assert result.prediction is not None
        assert result.prediction.event_id == f"e{i}"
        assert result.prediction.segments == {"region": "eu" if i % 3 else "us"}
        assert result.label == i % 5
        assert result.delay_seconds == pytest.approx(500.0)
    assert len(store) == 0


def test_delay_uses_now_without_a_label_timestamp_and_is_never_negative() -> None:
    store = LabelJoinStore(max_entries=10, max_age_seconds=100.0)
    store.add(_record(1, 50.0))
    store.add(_record(2, 50.0))
    assert store.join("e1", "1", None, now=80.0).delay_seconds == 30.0
    # A label stamped before its prediction (clock skew) has a delay of 0, not a negative one.
    assert store.join("e2", "1", 40.0, now=80.0).delay_seconds == 0.0


def test_a_duplicate_label_is_unmatched_and_marked_and_never_joins_twice() -> None:
    store = LabelJoinStore(max_entries=10, max_age_seconds=100.0)
    store.add(_record(1, 0.0))
    first = store.join("e1", "1", 1.0, now=1.0)
    second = store.join("e1", "0", 2.0, now=2.0)
    assert (first.outcome, first.duplicate) == ("joined", False)
    assert (second.outcome, second.duplicate, second.prediction) == ("unmatched", True, None)


def test_a_label_for_an_unknown_id_is_unmatched_when_early_labels_are_not_held() -> None:
    store = LabelJoinStore(max_entries=10, max_age_seconds=100.0, max_early=0)
    store.add(_record(1, 0.0))
    result = store.join("nope", "1", 1.0, now=1.0)
    assert (result.outcome, result.duplicate, result.prediction) == ("unmatched", False, None)
    assert len(store) == 1


def test_expiry_at_the_age_limit() -> None:
    store = LabelJoinStore(max_entries=10, max_age_seconds=60.0)
    store.add(_record(1, 100.0))
    store.add(_record(2, 100.0))
    assert store.join("e1", "1", None, now=160.0).outcome == "joined"  # exactly at the limit
    late = store.join("e2", "1", None, now=160.001)
    assert (late.outcome, late.prediction) == ("expired", None)
    # Once expired, it stays expired (the tombstone remembers it).
    assert store.join("e2", "1", None, now=170.0).outcome == "expired"


def test_expire_drops_old_predictions_and_later_labels_count_as_expired() -> None:
    store = LabelJoinStore(max_entries=100, max_age_seconds=10.0)
    for i in range(20):
        store.add(_record(i, float(i)))
    assert store.expire(now=19.5) == 10  # timestamps 0..9 are older than 19.5 - 10
    assert len(store) == 10
    assert "e9" not in store and "e10" in store
    assert store.join("e3", "1", None, now=19.5).outcome == "expired"
    assert store.join("e10", "1", None, now=19.5).outcome == "joined"


def test_an_out_of_order_prediction_never_joins_once_too_old() -> None:
    store = LabelJoinStore(max_entries=100, max_age_seconds=10.0)
    store.add(_record(1, 100.0))
    store.add(_record(2, 50.0))  # arrived late, already older than its neighbour
    assert store.join("e2", "1", None, now=65.0).outcome == "expired"
    assert store.join("e1", "1", None, now=105.0).outcome == "joined"


def test_the_store_never_exceeds_its_size_and_evicted_ids_expire() -> None:
    store = LabelJoinStore(max_entries=50, max_age_seconds=1e9)
    for i in range(1000):
        store.add(_record(i, float(i)))
        assert len(store) <= 50
    assert len(store) == 50
    assert store.evicted == 950
    assert "e949" not in store and "e950" in store
    assert store.join("e949", "1", None, now=1000.0).outcome == "expired"  # evicted, remembered
    assert store.join("e10", "1", None, now=1000.0).outcome == "held"  # tombstone gone: unknown, early
    assert store.join("e999", "1", None, now=1000.0).outcome == "joined"


def test_a_repeated_prediction_id_keeps_the_first() -> None:
    store = LabelJoinStore(max_entries=10, max_age_seconds=100.0)
    store.add(_record(1, 0.0))
    store.add(PredictionRecord("e1", "v2", 5.0, "0"))
    result = store.join("e1", "1", None, now=10.0)
    assert result.prediction is not None
    assert result.prediction.model_version == "v1"


def test_join_event_reads_a_decoded_label() -> None:
    store = LabelJoinStore(max_entries=10, max_age_seconds=100.0)
    store.add(_record(1, 0.0))
    result = store.join_event(Label(event_id="e1", model="m", label="1", timestamp=4.0), now=9.0)
    assert (result.outcome, result.delay_seconds) == ("joined", 4.0)


def test_checkpoint_round_trip_through_json_keeps_every_outcome() -> None:
    store = LabelJoinStore(max_entries=5, max_age_seconds=100.0, max_tombstones=3)
    for i in range(8):
        store.add(_record(i, float(i)))
    store.join("e6", "1", None, now=10.0)
    restored = LabelJoinStore.from_dict(json.loads(json.dumps(store.to_dict())))
    assert restored.to_dict() == store.to_dict()
    assert repr(restored) == repr(store)
    assert len(restored) == 4
    assert restored.join("e7", "1", None, now=11.0).prediction == store.join(
        "e7", "1", None, now=11.0
    ).prediction
    assert restored.join("e6", "1", None, now=11.0).duplicate
    assert restored.join("e2", "1", None, now=11.0).outcome == "expired"
    assert restored.join("e0", "1", None, now=11.0).outcome == "held"  # tombstone gone: early


def test_reset_forgets_everything() -> None:
    store = LabelJoinStore(max_entries=2, max_age_seconds=100.0)
    for i in range(4):
        store.add(_record(i, 0.0))
    store.reset()
    assert (len(store), store.evicted, store.early) == (0, 0, 0)
    assert store.join("e0", "1", None, now=1.0).outcome == "held"  # nothing known of e0 any more


@pytest.mark.parametrize(
    ("kwargs", "bad"),
    [
        ({"max_entries": 0}, "0"),
        ({"max_age_seconds": 0.0}, "0.0"),
        ({"max_age_seconds": float("nan")}, "nan"),
        ({"max_tombstones": -1}, "-1"),
        ({"max_early": -2}, "-2"),
        ({"max_early_age_seconds": 0.0}, "0.0"),
    ],
)
def test_invalid_parameters_are_refused_naming_the_value(kwargs: dict, bad: str) -> None:
    with pytest.raises(ValueError, match=bad):
        LabelJoinStore(**kwargs)


def test_an_early_label_is_held_and_joins_when_its_prediction_comes() -> None:
    store = LabelJoinStore(max_entries=10, max_age_seconds=100.0)
    held = store.join("e1", label="1", label_timestamp=None, now=50.0)
    assert (held.outcome, held.prediction, store.early) == ("held", None, 1)
    again = store.join("e1", label="0", label_timestamp=None, now=51.0)  # the first label wins
    assert (again.outcome, again.duplicate) == ("unmatched", True)
    result = store.add(_record(1, 45.0))
    assert result is not None and result.outcome == "joined"
    assert (result.label, result.delay_seconds, store.early, len(store)) == ("1", 5.0, 0, 0)
    assert result.prediction == _record(1, 45.0)
    assert store.join("e1", "1", None, now=52.0).duplicate  # joined once, never twice
    assert store.take_unmatched() == 0


def test_early_labels_are_bounded_in_number_and_age_and_leave_as_unmatched() -> None:
    store = LabelJoinStore(max_entries=10, max_age_seconds=100.0, max_early=2, max_early_age_seconds=10.0)
    for i in range(3):
        assert store.join(f"e{i}", "1", None, now=float(i)).outcome == "held"
    assert (store.early, store.take_unmatched()) == (2, 1)  # e0 pushed out
    assert store.add(_record(0, 3.0)) is None  # its label is gone
    assert store.take_unmatched() == 0
    store.expire(now=11.5)  # e1 arrived at 1.0: too old; e2 (2.0) still waits
    assert (store.early, store.take_unmatched()) == (1, 1)
    joined = store.add(_record(2, 12.0))
    assert joined is not None and joined.outcome == "joined"


def test_checkpoint_round_trip_keeps_early_labels() -> None:
    store = LabelJoinStore(max_entries=10, max_age_seconds=100.0, max_early=5, max_early_age_seconds=30.0)
    store.join("e1", label=1, label_timestamp=7.0, now=8.0)
    store.join("e2", label=0, label_timestamp=None, now=9.0)
    restored = LabelJoinStore.from_dict(json.loads(json.dumps(store.to_dict())))
    assert (restored.max_early, restored.max_early_age_seconds, restored.early) == (5, 30.0, 2)
    first = restored.add(_record(1, 5.0))
    assert first is not None and (first.label, first.delay_seconds) == (1, 2.0)
    restored.expire(now=40.0)
    assert restored.take_unmatched() == 1


def test_next_expiry_is_the_first_time_expire_drops_something() -> None:
    store = LabelJoinStore(max_entries=10, max_age_seconds=100.0, max_early=5, max_early_age_seconds=30.0)
    assert store.next_expiry() == math.inf
    store.add(_record(1, 50.0))
    store.add(_record(2, 40.0))  # out of order: leaves after e1, in insertion order
    assert store.next_expiry() == 150.0
    store.join("x", "1", None, now=60.0)  # held early until 90.0
    assert store.next_expiry() == 90.0
    assert store.expire(now=89.0) == 0 and store.take_unmatched() == 0
    store.expire(now=90.5)
    assert (store.take_unmatched(), store.next_expiry()) == (1, 150.0)
    assert store.expire(now=150.5) == 2
    assert store.next_expiry() == math.inf
