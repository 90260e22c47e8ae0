"""Held predictions: the compact form gives back exactly the records that went in."""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Callable
from typing import Any

import pytest

from collector.held_predictions import HeldPredictions
from collector.prediction_record import PredictionRecord


def _records(n: int, seed: int) -> list[PredictionRecord]:
    rng = random.Random(seed)
    records = []
    for i in range(n):
        kind = i % 4
        probabilities = None
        if kind in (0, 1):
            p = rng.random()
            probabilities = {"1": p, "0": 1.0 - p} if kind == 0 else {"a": p, "b": p / 3, "c": 0.0}
        prediction: float | int | str | bool = [str(i % 2), i % 3, rng.gauss(0.0, 10.0), i % 2 == 0][kind]
        segments = {"region": rng.choice(["eu", "us"]), "plan": "pro"} if kind != 2 else None
        records.append(
            PredictionRecord(
                f"e{i}", f"v{i % 2}", 1_000.0 + rng.random() * 50, prediction, probabilities, segments
            )
        )
    return records


@pytest.mark.parametrize("packed", [True, False], ids=["packed", "fresh"])
def test_every_record_comes_back_equal_in_value_and_type(packed: bool) -> None:
    records = _records(400, seed=3)
    held = HeldPredictions()
    for record in records:
        held.add(record)
    assert held.fresh == 400
    if packed:
        held.compact()
        assert held.fresh == 0
    assert list(held.records()) == records
    for record in reversed(records):
        back = held.pop(record.event_id)
        assert back == record
        assert back is not None and type(back.prediction) is type(record.prediction)
    assert len(held) == 0 and held.oldest() is None and held.pop("e1") is None


def test_records_of_one_shape_share_it_and_a_bool_prediction_stays_a_bool() -> None:
    held = HeldPredictions()
    for i in range(3):
        probabilities = {"1": 0.1 * i, "0": 1 - 0.1 * i}
        held.add(PredictionRecord(f"e{i}", "v1", float(i), 1, probabilities, {"r": "eu"}))
    held.add(PredictionRecord("b", "v1", 3.0, True, {"1": 0.5, "0": 0.5}, {"r": "eu"}))
    held.compact()
    assert len(held._shapes) == 2
    assert held.pop("b") == PredictionRecord("b", "v1", 3.0, True, {"1": 0.5, "0": 0.5}, {"r": "eu"})
    assert held.pop("e1") == PredictionRecord("e1", "v1", 1.0, 1, {"1": 0.1, "0": 0.9}, {"r": "eu"})
    assert [type(r.prediction) for r in held.records()] == [int, int]


def test_the_shape_table_keeps_only_shapes_in_use_once_it_outgrows_the_store() -> None:
    held = HeldPredictions()
    for i in range(10_000):  # a distinct prediction each: a shape each
        held.add(PredictionRecord(f"e{i}", "v", float(i), f"class-{i}"))
        held.compact()
        if len(held) > 100:
            held.pop_oldest()
    assert len(held._shapes) <= 4096
    assert [r.prediction for r in held.records()] == [f"class-{i}" for i in range(9_900, 10_000)]


def test_oldest_is_by_insertion_and_pop_oldest_drops_it() -> None:
    held = HeldPredictions()
    for i, ts in enumerate([5.0, 3.0, 9.0]):
        held.add(PredictionRecord(f"e{i}", "v", ts, 1))
    assert held.oldest() == ("e0", 5.0)
    assert held.pop_oldest() == "e0"
    assert held.oldest() == ("e1", 3.0)
    assert list(held) == ["e1", "e2"]


def test_the_oldest_kept_between_calls_is_always_the_first_held() -> None:
    """``oldest`` is remembered between calls (every label asks): through adds, pops of the
    oldest and of others, evictions, the shape table's clean-up and a snapshot, it is what
    reading the first held prediction gives."""
    rng = random.Random(7)
    records = _records(3_000, seed=5) + [  # a shape each: the table outgrows 4,096 and is cleaned up
        PredictionRecord(f"c{i}", "v", 1_000.0 + rng.random(), f"class-{i}") for i in range(6_000)
    ]
    held, model = HeldPredictions(), {}
    for step, record in enumerate(records):
        held.add(record)
        model[record.event_id] = record.timestamp
        action = rng.random()
        if action < 0.45 and model:
            popped = next(iter(model)) if rng.random() < 0.5 else rng.choice(list(model))
            assert held.pop(popped) is not None
            del model[popped]
        elif action < 0.9 and model:
            assert held.pop_oldest() == next(iter(model))
            del model[next(iter(model))]
        if step % 2_000 == 1_999:
            held = HeldPredictions.from_dict(json.loads(json.dumps(held.to_dict())))
        elif rng.random() < 0.1:  # the pipeline packs once per batch: some held fresh, some packed
            held.compact()
        first = next(iter(model.items()), None)
        assert held.oldest() == first
        assert held.oldest() == first  # asked again: the kept value
    assert len(held._shapes) < 6_000  # the clean-up ran


def test_packing_keeps_the_order_and_records_popped_before_it_are_not_held() -> None:
    """Fresh and packed records mix in insertion order; ``compact`` packs only those still held
    (a record popped while fresh does not come back), and a snapshot packs the fresh ones."""
    records = _records(60, seed=11)
    held = HeldPredictions()
    for record in records[:20]:
        held.add(record)
    held.compact()
    for record in records[20:]:
        held.add(record)
    assert held.pop("e25") == records[25] and held.pop("e3") == records[3]
    assert held.fresh == 39
    expected = [r for r in records if r.event_id not in ("e3", "e25")]
    assert list(held.records()) == expected and held.oldest() == ("e0", records[0].timestamp)
    held.compact()
    assert held.fresh == 0 and list(held.records()) == expected and "e25" not in held
    held.add(records[25])
    data = held.to_dict()
    assert held.fresh == 0 and data["ids"][-1] == "e25"
    assert list(HeldPredictions.from_dict(json.loads(json.dumps(data))).records()) == [*expected, records[25]]


def test_snapshot_round_trips_through_json() -> None:
    records = _records(200, seed=8)
    held = HeldPredictions()
    for record in records:
        held.add(record)
    restored = HeldPredictions.from_dict(json.loads(json.dumps(held.to_dict())))
    assert list(restored.records()) == records
    assert restored.to_dict() == held.to_dict()


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.__setitem__("packed", d["packed"][:-12]),  # floats cut off
        lambda d: d.__setitem__("packed", d["packed"] + "AAAAAAAAAAA="),  # bytes no id has
        lambda d: d["ids"].append("e2"),  # an id without bytes
        lambda d: d["ids"].append("e1"),  # an id twice
        lambda d: d["shapes"].pop(),  # no such shape
        lambda d: d["shapes"][0].pop(),  # a shape of three fields
        lambda d: d.__setitem__("packed", "not base64!"),
    ],
)
def test_a_damaged_snapshot_is_an_error_not_a_wrong_record(
    damage: Callable[[dict[str, Any]], object],
) -> None:
    held = HeldPredictions()
    held.add(PredictionRecord("e1", "v", 1.0, "1", {"1": 0.5, "0": 0.5}))
    data = held.to_dict()
    damage(data)
    with pytest.raises((ValueError, IndexError, TypeError, struct.error)):
        HeldPredictions.from_dict(data)
