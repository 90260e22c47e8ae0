"""Concept drift on river's SEA streams: a change in P(y|x) is found; covariate shift alone is not.

The model is a scikit-learn logistic regression trained on SEA's first concept
(``x0 + x1 > 8``, 10% label noise) and calibrated on a labelled reference with
:class:`~detectors.cbpe.CBPE`. Windows hold 1,000 labelled events; the change
comes at window 10.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest
from river.datasets import synth
from sklearn.linear_model import LogisticRegression

from detectors.base import FeatureTable
from detectors.cbpe import CBPE
from detectors.concept_drift import DETECTORS, ConceptDriftDetector, ConceptDriftResult
from detectors.data_drift import DataDriftDetector

WINDOW = 1000
CHANGE_WINDOW = 10


def _sea(variant: int, seed: int, n: int, keep: Callable[[list[float]], bool] | None = None):
    rows, labels = [], []
    for x, y in synth.SEA(variant=variant, noise=0.1, seed=seed):
        row = [x[0], x[1], x[2]]
        if keep is None or keep(row):
            rows.append(row)
            labels.append(y)
        if len(rows) == n:
            break
    return np.array(rows), np.array(labels)


def _near_the_boundary(row: list[float]) -> bool:
    return 7.25 < row[0] + row[1] < 8.75


@pytest.fixture(scope="module")
def model() -> tuple[LogisticRegression, CBPE]:
    x_train, y_train = _sea(0, seed=1, n=5000)
    model = LogisticRegression().fit(x_train, y_train)
    x_ref, y_ref = _sea(0, seed=2, n=5000)
    cbpe = CBPE(calibration="isotonic")
    cbpe.fit(model.predict_proba(x_ref)[:, 1], y_ref)
    return model, cbpe


def _run(
    detector: ConceptDriftDetector,
    model: LogisticRegression,
    cbpe: CBPE,
    x: np.ndarray,
    y: np.ndarray,
    expected: float | None = None,
) -> list[ConceptDriftResult]:
    """Feed the stream window by window; ``expected`` replaces CBPE with one constant."""
    p = model.predict_proba(x)[:, 1]
    predicted = p >= 0.5
    errors = (predicted != y).astype(float)
    expected_errors = cbpe.expected_errors(p, predicted) if expected is None else None
    results = []
    for start in range(0, len(x), WINDOW):
        window = slice(start, start + WINDOW)
        baseline = expected if expected_errors is None else expected_errors[window]
        results.append(detector.update(errors[window], baseline))
    return results


def _concept_change() -> tuple[np.ndarray, np.ndarray]:
    before = _sea(0, seed=10, n=CHANGE_WINDOW * WINDOW)
    after = _sea(1, seed=1010, n=CHANGE_WINDOW * WINDOW)  # now x0 + x1 > 9
    return np.concatenate([before[0], after[0]]), np.concatenate([before[1], after[1]])


def _covariate_shift() -> tuple[np.ndarray, np.ndarray]:
    before = _sea(0, seed=10, n=CHANGE_WINDOW * WINDOW)
    after = _sea(0, seed=1010, n=CHANGE_WINDOW * WINDOW, keep=_near_the_boundary)
    return np.concatenate([before[0], after[0]]), np.concatenate([before[1], after[1]])


@pytest.mark.parametrize("name", DETECTORS)
def test_a_concept_change_is_detected_after_the_change_and_not_before(name, model) -> None:
    x, y = _concept_change()
    results = _run(ConceptDriftDetector(name), *model, x, y)
    before, after = results[:CHANGE_WINDOW], results[CHANGE_WINDOW:]
    assert not any(r.detected for r in before)
    assert not any(r.significant for r in before)
    first = next(i for i, r in enumerate(after) if r.detected)
    assert first <= (8 if name == "ddm" else 2)  # DDM is the slow one
    assert after[0].significant and sum(r.significant for r in after) >= 8
    assert all(r.gap > 0.03 for r in after)


@pytest.mark.parametrize("name", DETECTORS)
def test_covariate_shift_to_harder_inputs_is_not_concept_drift(name, model) -> None:
    x, y = _covariate_shift()
    results = _run(ConceptDriftDetector(name), *model, x, y)
    realized_before = 1 - np.mean([r.realized_error for r in results[:CHANGE_WINDOW]])
    realized_after = 1 - np.mean([r.realized_error for r in results[CHANGE_WINDOW:]])
    assert realized_before - realized_after > 0.03  # the shift lowers realized accuracy
    assert not any(r.detected for r in results)
    assert not any(r.significant for r in results)


def test_the_covariate_shift_is_data_drift_and_would_fool_a_realized_only_check(model) -> None:
    x, y = _covariate_shift()
    columns = ("x0", "x1", "x2")
    kinds = dict.fromkeys(columns, "numerical")

    def table(rows: np.ndarray) -> FeatureTable:
        return FeatureTable(kinds, {c: rows[:, i] for i, c in enumerate(columns)}, len(rows))

    data_drift = DataDriftDetector(drift_share=0.5)
    data_drift.fit(table(x[: CHANGE_WINDOW * WINDOW]))
    assert data_drift.evaluate(table(x[-WINDOW:])).detected
    # Comparing realized errors with the reference error alone flags the shift.
    _, cbpe = model
    reference_error = 0.1
    naive = _run(ConceptDriftDetector("adwin"), *model, x, y, expected=reference_error)
    assert sum(r.significant for r in naive[CHANGE_WINDOW:]) >= 8
    assert cbpe.calibrated


def test_a_constant_expected_error_compares_with_the_reference() -> None:
    rng = np.random.default_rng(4)
    detector = ConceptDriftDetector("page_hinkley")
    steady = detector.update(rng.random(2000) < 0.1, 0.1)
    worse = detector.update(rng.random(2000) < 0.2, 0.1)
    assert (steady.significant, worse.significant) == (False, True)
    assert worse.detected
    assert worse.expected_error == pytest.approx(0.1)
    assert worse.gap == pytest.approx(worse.realized_error - 0.1)


def test_an_improvement_is_not_concept_drift() -> None:
    rng = np.random.default_rng(5)
    for name in DETECTORS:
        detector = ConceptDriftDetector(name)
        results = [detector.update(rng.random(1000) < 0.3, 0.3) for _ in range(5)]
        results += [detector.update(rng.random(1000) < 0.05, 0.3) for _ in range(5)]
        assert not any(r.detected or r.significant for r in results), name


def test_the_gap_test_needs_min_events_and_handles_constant_residuals() -> None:
    detector = ConceptDriftDetector(min_events=50)
    assert detector.update(np.ones(10), 0.0).p_value == 1.0
    assert detector.update(np.ones(60), 0.0).p_value == 0.0
    assert detector.update(np.zeros(60), 0.0).p_value == 1.0


@pytest.mark.parametrize("name", DETECTORS)
def test_reset_gives_the_results_of_a_fresh_detector(name) -> None:
    rng = np.random.default_rng(6)
    errors = rng.random(6000) < np.r_[np.full(3000, 0.1), np.full(3000, 0.4)]
    detector = ConceptDriftDetector(name)
    first = [detector.update(errors[i : i + 1000], 0.1) for i in range(0, 6000, 1000)]
    detector.reset()
    again = [detector.update(errors[i : i + 1000], 0.1) for i in range(0, 6000, 1000)]
    assert first == again
    assert any(r.detected for r in first)
    with pytest.raises(dataclasses.FrozenInstanceError):
        first[0].detected = True  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "bad"),
    [
        ({"detector": "kswin"}, "'kswin'"),
        ({"alpha": 1.5}, "1.5"),
        ({"tolerance": -0.1}, "-0.1"),
        ({"min_events": 1}, "1"),
    ],
)
def test_invalid_parameters_are_refused_naming_the_value(kwargs: dict, bad: str) -> None:
    with pytest.raises(ValueError, match=bad):
        ConceptDriftDetector(**kwargs)


def test_parameters_are_stored_under_their_own_names() -> None:
    detector = ConceptDriftDetector("adwin", 0.01, 0.02, 40, {"delta": 0.01})
    assert (detector.detector, detector.alpha, detector.tolerance, detector.min_events) == (
        "adwin", 0.01, 0.02, 40,
    )
    assert detector.detector_params == {"delta": 0.01}
    assert "delta" in repr(detector)


def test_adwin_changes_are_counted_as_river_reports_them_with_the_mean_rising() -> None:
    """A flag is river's ADWIN detecting a change after which its mean is higher than before
    the residual came: the detector remembers the mean instead of asking river twice a step,
    so the counts must equal those of a river ADWIN asked directly."""
    from river import drift

    rng = np.random.default_rng(11)
    detector, oracle = ConceptDriftDetector("adwin"), drift.ADWIN()
    steps = [rng.normal(0.0, 0.2, 600), rng.normal(0.4, 0.2, 600), rng.normal(-0.3, 0.2, 600),
             rng.normal(0.5, 0.2, 600)]
    flagged = []
    for residuals in steps:
        expected = 0
        for residual in residuals:
            before = oracle.estimation
            oracle.update(float(residual))
            expected += bool(oracle.drift_detected) and oracle.estimation > before
        changes = detector.update(residuals, 0.0).changes
        assert changes == expected
        flagged.append(changes)
    assert flagged[1] > 0 and flagged[3] > 0  # the rises are found, so the comparison means something
