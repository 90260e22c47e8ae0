"""Detector state as plain data: a detector restored from it gives the same later results."""

from __future__ import annotations

import json

import numpy as np
import pytest

from detectors.base import FeatureTable
from detectors.concept_drift import DETECTORS, ConceptDriftDetector
from detectors.data_drift import DataDriftDetector
from detectors.fairness import FairnessEvaluator


def _table(rng: np.random.Generator, n: int, shift: float) -> FeatureTable:
    columns = {
        "x": rng.normal(shift, 1.0, n),
        "c": rng.choice(["a", "b", "c"], n, p=[0.5 - shift / 4, 0.3, 0.2 + shift / 4]).astype(object),
    }
    return FeatureTable({"x": "numerical", "c": "categorical"}, columns, n)


@pytest.mark.parametrize("detector", DETECTORS)
def test_concept_drift_detector_replays_its_inputs_into_the_same_signals(detector: str) -> None:
    rng = np.random.default_rng(5)
    expected = rng.uniform(0.0, 0.3, size=6000)
    errors = rng.uniform(size=6000) < expected + np.r_[np.zeros(3000), np.full(3000, 0.25)]
    windows = [(errors[i : i + 500], expected[i : i + 500]) for i in range(0, 6000, 500)]
    whole = ConceptDriftDetector(detector)
    first = ConceptDriftDetector(detector)
    for window in windows[:5]:
        whole.update(*window)
        first.update(*window)
    restored = ConceptDriftDetector(detector)
    restored.restore_state(json.loads(json.dumps(first.state())))
    later = [(whole.update(*w), restored.update(*w)) for w in windows[5:]]
    assert [a for a, _ in later] == [b for _, b in later]
    assert any(a.detected for a, _ in later)


def test_concept_drift_log_is_bounded_and_says_how_much_it_saw() -> None:
    detector = ConceptDriftDetector("adwin", max_log=100)
    detector.update(np.zeros(250), 0.0)
    state = detector.state()
    assert (len(state["residuals"]), state["seen"]) == (100, 250)
    with pytest.raises(ValueError, match="-1"):
        ConceptDriftDetector("adwin", max_log=-1)


def test_concept_drift_log_keeps_the_most_recent_residuals_oldest_first() -> None:
    detector = ConceptDriftDetector("adwin", max_log=100)
    residuals = np.random.default_rng(4).normal(0.0, 1.0, 250)
    for start in range(0, 250, 30):  # windows of 30 wrap the ring at uneven places
        detector.update(residuals[start : start + 30], 0.0)
    assert detector.state()["residuals"] == residuals[150:].tolist()
    silent = ConceptDriftDetector("adwin", max_log=0)
    silent.update(residuals, 0.0)
    assert silent.state() == {"residuals": [], "seen": 250}


def test_data_drift_streaks_and_pools_survive_a_restore() -> None:
    rng = np.random.default_rng(6)
    reference = _table(rng, 3000, 0.0)
    windows = [_table(rng, 400, 0.0 if i < 3 else 0.4) for i in range(8)]

    def detector() -> DataDriftDetector:
        fitted = DataDriftDetector(persistence=3, pooled_windows=3, drift_share=0.5)
        fitted.fit(reference)
        return fitted

    whole, first = detector(), detector()
    for window in windows[:4]:
        whole.evaluate(window)
        first.evaluate(window)
    restored = detector()
    restored.restore_state(json.loads(json.dumps(first.state())))
    later = [(whole.evaluate(w), restored.evaluate(w)) for w in windows[4:]]
    assert [a for a, _ in later] == [b for _, b in later]
    assert any(a.detected for a, _ in later) and not later[0][0].detected  # persistence mattered


def test_fairness_keeps_the_same_values_after_a_restore() -> None:
    evaluator = FairnessEvaluator(["region"], max_values=2)
    evaluator.evaluate({"region": ["north", "south", "east"]}, [True, False, True])
    restored = FairnessEvaluator(["region"], max_values=2)
    restored.restore_state(json.loads(json.dumps(evaluator.state())))
    values = {"region": ["east", "west", "north", "south"]}
    assert restored.evaluate(values, [1, 0, 1, 0]) == evaluator.evaluate(values, [1, 0, 1, 0])
