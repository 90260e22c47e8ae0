"""Segments and fairness: a seeded stream with a known disparity, folding, labelled accuracy."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from detectors.fairness import MISSING, OTHER, FairnessEvaluator

RATES = {"north": 0.5, "south": 0.4, "west": 0.3}


def _stream(seed: int, n: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Random regions; within each region exactly its rate of positives, at random positions."""
    rng = np.random.default_rng(seed)
    regions = rng.choice(list(RATES), size=n, p=[0.4, 0.35, 0.25])
    positive = np.zeros(n, dtype=bool)
    for region, rate in RATES.items():
        members = np.flatnonzero(regions == region)
        chosen = rng.choice(members, size=round(rate * len(members)), replace=False)
        positive[chosen] = True
    accuracy = np.where(regions == "west", 0.7, 0.9)
    correct = (rng.random(n) < accuracy).astype(float)
    return regions.tolist(), positive, correct


def test_a_known_disparity_is_measured_within_0_01() -> None:
    regions, positive, correct = _stream(seed=42, n=100_000)
    result = FairnessEvaluator(["region"]).evaluate({"region": regions}, positive, correct)
    region = result.segments["region"]
    assert region.disparate_impact == pytest.approx(0.3 / 0.5, abs=0.01)
    assert region.parity_difference == pytest.approx(0.5 - 0.3, abs=0.01)
    by_value = {v.value: v for v in region.values}
    assert list(by_value) == ["north", "south", "west"]
    for value, rate in RATES.items():
        assert by_value[value].positive_rate == pytest.approx(rate, abs=0.01)
    assert by_value["west"].accuracy == pytest.approx(0.7, abs=0.01)
    assert by_value["north"].accuracy == pytest.approx(0.9, abs=0.01)
    assert sum(v.events for v in region.values) == 100_000
    assert result.folded == 0


def test_equal_rates_give_an_impact_near_one() -> None:
    rng = np.random.default_rng(1)
    groups = rng.choice(["a", "b"], size=100_000).tolist()
    result = FairnessEvaluator(["g"]).evaluate({"g": groups}, rng.random(100_000) < 0.3)
    assert result.segments["g"].disparate_impact == pytest.approx(1.0, abs=0.03)
    assert result.segments["g"].values[0].accuracy is None  # no labels given


def test_values_over_the_limit_are_folded_into_other_and_counted() -> None:
    evaluator = FairnessEvaluator(["shop"], max_values=3, min_events=1)
    first = evaluator.evaluate({"shop": ["a", "b", "c", "d", "e", "a"]}, [1, 0, 1, 0, 0, 1])
    assert [v.value for v in first.segments["shop"].values] == ["__other__", "a", "b", "c"]
    assert first.folded == 2
    other = first.segments["shop"].values[0]
    assert (other.value, other.events, other.positive_rate) == (OTHER, 2, 0.0)
    # The kept values stay kept in later windows; "d" is still folded.
    second = evaluator.evaluate({"shop": ["d", "c"]}, [1, 1])
    assert [v.value for v in second.segments["shop"].values] == ["__other__", "c"]
    assert second.folded == 1
    # Disparity ignores __other__: only a, b, c count.
    assert first.segments["shop"].disparate_impact == 0.0
    assert first.segments["shop"].parity_difference == 1.0
    evaluator.reset()
    assert evaluator.evaluate({"shop": ["d"]}, [1]).folded == 0


def test_missing_values_and_small_groups_stay_out_of_the_disparity() -> None:
    evaluator = FairnessEvaluator(["g", "h"], min_events=3)
    values = {"g": ["a", "a", "a", "b", "b", "b", "c", None]}
    result = evaluator.evaluate(values, [1, 1, 0, 1, 0, 0, 0, 0])
    g = result.segments["g"]
    assert [v.value for v in g.values] == [MISSING, "a", "b", "c"]
    assert g.disparate_impact == pytest.approx((1 / 3) / (2 / 3))
    assert g.parity_difference == pytest.approx(1 / 3)
    h = result.segments["h"]  # the attribute is absent from every event
    assert [(v.value, v.events) for v in h.values] == [(MISSING, 8)]
    assert (h.disparate_impact, h.parity_difference) == (None, None)


def test_all_rates_zero_is_no_disparity() -> None:
    result = FairnessEvaluator(["g"], min_events=1).evaluate({"g": ["a", "b"]}, [0, 0])
    assert (result.segments["g"].disparate_impact, result.segments["g"].parity_difference) == (
        1.0, 0.0,
    )


def test_accuracy_uses_only_labelled_events() -> None:
    evaluator = FairnessEvaluator(["g"], min_events=1)
    result = evaluator.evaluate({"g": ["a", "a", "a"]}, [1, 1, 1], [1.0, np.nan, 0.0])
    (a,) = result.segments["g"].values
    assert (a.accuracy, a.labelled, a.events) == (0.5, 2, 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.events = 4  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "bad"),
    [
        ({"segments": "region"}, "'region'"),
        ({"segments": [""]}, "''"),
        ({"segments": ["r"], "max_values": 0}, "0"),
        ({"segments": ["r"], "min_events": 0}, "0"),
    ],
)
def test_invalid_parameters_are_refused_naming_the_value(kwargs: dict, bad: str) -> None:
    with pytest.raises(ValueError, match=bad):
        FairnessEvaluator(**kwargs)


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="2 values for 3 events"):
        FairnessEvaluator(["g"]).evaluate({"g": ["a", "b"]}, [1, 0, 1])
