"""CBPE, calibration and proxy metrics on seeded streams with covariate shift."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

from detectors.calibration import IsotonicCalibrator, choose_calibrator, expected_calibration_error
from detectors.cbpe import CBPE
from detectors.proxy_metrics import ProxyMetrics, positive_probability, probability_matrix

WEIGHTS = np.array([2.0, -1.0])
WINDOW = 2000


def _stream(rng: np.random.Generator, n: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """Inputs around ``(1.5, 0) * (1 - shift)``: shift 1 moves all traffic onto the boundary."""
    centre = np.array([1.5, 0.0]) * (1.0 - shift)
    x = rng.normal(centre, 1.0, size=(n, 2))
    y = rng.random(n) < 1.0 / (1.0 + np.exp(-(x @ WEIGHTS)))
    return x, y


@pytest.fixture
def model_and_reference() -> tuple[LogisticRegression, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    x, y = _stream(rng, 5000, 0.0)
    model = LogisticRegression().fit(x, y)
    return model, model.predict_proba(x)[:, 1], y


def test_estimated_accuracy_follows_realized_under_covariate_shift(model_and_reference) -> None:
    model, ref_p, ref_y = model_and_reference
    cbpe = CBPE()
    cbpe.fit(ref_p, ref_y)
    rng = np.random.default_rng(12)
    realized_by_window = []
    for shift in np.linspace(0.0, 1.0, 8):
        x, y = _stream(rng, WINDOW, float(shift))
        p = model.predict_proba(x)[:, 1]
        predicted = p >= 0.5
        realized = float(np.mean(predicted == y))
        estimate = cbpe.estimate(p, predicted)
        assert abs(estimate.metrics["accuracy"] - realized) < 0.03, (shift, realized)
        assert estimate.metrics["precision"] == pytest.approx(precision_score(y, predicted), abs=0.04)
        assert estimate.metrics["recall"] == pytest.approx(recall_score(y, predicted), abs=0.04)
        assert estimate.metrics["f1"] == pytest.approx(f1_score(y, predicted), abs=0.04)
        assert estimate.metrics["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=0.03)
        realized_by_window.append(realized)
    # The shift really moves traffic to harder inputs: the test would notice a flat estimate.
    assert realized_by_window[0] - realized_by_window[-1] > 0.07


def test_calibration_on_the_reference_repairs_an_overconfident_model() -> None:
    rng = np.random.default_rng(21)
    x_ref, y_ref = _stream(rng, 5000, 0.0)
    x_cur, y_cur = _stream(rng, WINDOW, 0.7)

    def overconfident(x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-3.0 * (x @ WEIGHTS)))

    realized = float(np.mean((overconfident(x_cur) >= 0.5) == y_cur))
    raw = CBPE(calibration="none")
    raw.fit(overconfident(x_ref), y_ref)
    auto = CBPE(calibration="auto")
    auto.fit(overconfident(x_ref), y_ref)
    assert auto.calibrated and not raw.calibrated
    assert abs(raw.estimate(overconfident(x_cur)).metrics["accuracy"] - realized) > 0.05
    assert abs(auto.estimate(overconfident(x_cur)).metrics["accuracy"] - realized) < 0.03


def test_calibration_is_skipped_when_it_does_not_help() -> None:
    # Perfectly calibrated scores on a coarse grid: isotonic fits the noise and cannot beat them.
    rng = np.random.default_rng(5)
    p = rng.choice([0.1, 0.3, 0.5, 0.7, 0.9], size=20_000)
    y = rng.random(20_000) < p
    assert choose_calibrator(p, y) is None
    assert choose_calibrator(np.sqrt(p), y) is not None  # a distorted model is calibrated


def test_expected_errors_average_to_one_minus_estimated_accuracy(model_and_reference) -> None:
    _model, ref_p, ref_y = model_and_reference
    cbpe = CBPE()
    cbpe.fit(ref_p, ref_y)
    errors = cbpe.expected_errors(ref_p)
    assert errors.shape == ref_p.shape and np.all((errors >= 0) & (errors <= 0.5 + 1e-12))
    assert float(np.mean(errors)) == pytest.approx(1.0 - cbpe.estimate(ref_p).metrics["accuracy"])


def test_cbpe_without_reference_labels_trusts_the_probabilities() -> None:
    cbpe = CBPE()
    cbpe.fit(np.array([0.2, 0.8]))
    estimate = cbpe.estimate(np.array([0.9, 0.8, 0.3, 0.1]))
    assert not estimate.calibrated
    assert estimate.metrics["accuracy"] == pytest.approx((0.9 + 0.8 + 0.7 + 0.9) / 4)
    assert estimate.metrics["precision"] == pytest.approx(1.7 / 2)
    assert estimate.metrics["recall"] == pytest.approx(1.7 / 2.1)


def test_expected_roc_auc_is_undefined_for_certain_predictions() -> None:
    assert "roc_auc" not in CBPE().estimate(np.array([1.0, 1.0, 1.0])).metrics


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_isotonic_calibrator_equals_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = np.round(rng.random(3000), 2)  # many ties
    actual = (rng.random(3000) < scores**2).astype(float)
    ours = IsotonicCalibrator().fit(scores, actual)
    theirs = IsotonicRegression(out_of_bounds="clip").fit(scores, actual)
    probe = np.concatenate([rng.random(500), [-0.5, 0.0, 1.0, 1.5]])
    np.testing.assert_allclose(ours.transform(probe), theirs.predict(probe), atol=1e-9)


def test_expected_calibration_error_values() -> None:
    assert expected_calibration_error([0.05, 0.05, 0.95, 0.95], [0, 0, 1, 1]) == pytest.approx(0.05)
    assert expected_calibration_error([0.5, 0.5], [1, 1]) == pytest.approx(0.5)


def test_proxy_metrics_values() -> None:
    rng = np.random.default_rng(3)
    matrix = rng.dirichlet([1.0, 2.0, 3.0], size=500)
    classes = ("a", "b", "c")
    result = ProxyMetrics(confidence_threshold=0.5).evaluate(matrix, classes)
    assert result.n == 500
    assert result.confidence == pytest.approx(float(np.mean(matrix.max(axis=1))))
    assert result.entropy == pytest.approx(float(np.mean(stats.entropy(matrix, axis=1))))
    assert result.low_confidence_ratio == pytest.approx(float(np.mean(matrix.max(axis=1) < 0.5)))
    counts = np.bincount(matrix.argmax(axis=1), minlength=3) / 500
    assert dict(result.class_distribution) == pytest.approx(dict(zip(classes, counts, strict=True)))


def test_proxy_metrics_use_given_predictions_and_count_unknown_classes() -> None:
    result = ProxyMetrics().evaluate([[0.7, 0.3], [0.6, 0.4]], ("0", "1"), ["1", "x"])
    assert dict(result.class_distribution) == {"0": 0.0, "1": 0.5, "x": 0.5}
    assert result.low_confidence_ratio == 0.0  # 0.6 is not under the default 0.6


def test_probability_helpers_fill_complements_and_missing_rows() -> None:
    events = [{"1": 0.8, "0": 0.2}, {"1": 0.3}, {"0": 0.9}, None]
    matrix = probability_matrix(events, ("0", "1"))
    np.testing.assert_allclose(matrix[:3], [[0.2, 0.8], [0.7, 0.3], [0.9, 0.1]])
    assert np.all(np.isnan(matrix[3]))
    np.testing.assert_allclose(positive_probability(events, "1")[:3], [0.8, 0.3, 0.1])
    assert np.isnan(positive_probability(events, "1")[3])


@pytest.mark.parametrize(
    ("factory", "bad"),
    [
        (lambda: CBPE(threshold=1.0), "1.0"),
        (lambda: CBPE(calibration="platt"), "'platt'"),  # type: ignore[arg-type]
        (lambda: ProxyMetrics(confidence_threshold=0.0), "0.0"),
    ],
)
def test_invalid_parameters_are_refused_naming_the_value(factory, bad: str) -> None:
    with pytest.raises(ValueError, match=bad):
        factory()
