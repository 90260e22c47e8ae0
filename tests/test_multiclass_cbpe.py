"""Multiclass CBPE and realized multiclass metrics on seeded softmax streams with covariate shift."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from detectors.cbpe import ESTIMATED_METRICS
from detectors.multiclass_cbpe import MULTICLASS_ESTIMATED_METRICS, MulticlassCBPE
from detectors.performance import PerformanceEvaluator, multiclass_metrics, regression_metrics
from exporters.catalog import PERFORMANCE_METRICS

CLASSES = ("a", "b", "c")
WEIGHTS = np.array([[2.0, -1.0], [-1.0, 2.0], [-1.0, -1.0]])
WINDOW = 3000


def _softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def _stream(rng: np.random.Generator, n: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """Logits of a true softmax model; shift 1 moves traffic from around (1, 0) to the origin,
    where the classes overlap most."""
    x = rng.normal(np.array([1.0, 0.0]) * (1.0 - shift), 1.0, size=(n, 2))
    logits = x @ WEIGHTS.T
    truth = _softmax(logits)
    y = np.array(CLASSES, dtype=object)[(rng.random(n)[:, None] > np.cumsum(truth, axis=1)).sum(axis=1)]
    return logits, y


def _realized(y: np.ndarray, p: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    return {
        "accuracy": accuracy_score(y, predicted),
        "precision_macro": precision_score(y, predicted, average="macro", zero_division=0),
        "recall_macro": recall_score(y, predicted, average="macro", zero_division=0),
        "f1_macro": f1_score(y, predicted, average="macro", zero_division=0),
        "precision_weighted": precision_score(y, predicted, average="weighted", zero_division=0),
        "recall_weighted": recall_score(y, predicted, average="weighted", zero_division=0),
        "f1_weighted": f1_score(y, predicted, average="weighted", zero_division=0),
        "roc_auc_ovr": roc_auc_score(y, p, multi_class="ovr", labels=list(CLASSES)),
    }


@pytest.mark.parametrize("seed", [0, 1])
def test_realized_multiclass_metrics_equal_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    logits, y = _stream(rng, 2000, 0.3)
    p = _softmax(logits)
    predicted = np.array(CLASSES, dtype=object)[p.argmax(axis=1)]
    predicted[:20] = "d"  # a class only in the predictions: precision 0, support 0
    ours = multiclass_metrics(y, predicted, p, CLASSES)
    expected = _realized(y, p, predicted)
    for metric, value in expected.items():
        assert ours[metric] == pytest.approx(value, abs=1e-9), metric
    assert ours["f1"] == ours["f1_macro"]


def test_evaluator_passes_the_probability_matrix_and_drops_auc_without_every_class() -> None:
    evaluator = PerformanceEvaluator(task="multiclass_classification")
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.3, 0.2]])
    full = evaluator.evaluate(
        ["a", "b", "c", "b"], ["a", "b", "c", "a"], class_probabilities=p, classes=CLASSES
    )
    assert full.metrics["roc_auc_ovr"] == pytest.approx(
        roc_auc_score(["a", "b", "c", "b"], p, multi_class="ovr", labels=list(CLASSES))
    )
    partial = evaluator.evaluate(
        ["a", "b", "b", "b"], ["a", "b", "c", "a"], class_probabilities=p, classes=CLASSES
    )
    assert "roc_auc_ovr" not in partial.metrics and partial.metrics["accuracy"] == 0.5


def test_estimate_is_the_one_vs_rest_expected_confusion_matrix() -> None:
    cbpe = MulticlassCBPE(calibration="none")
    cbpe.fit(np.eye(3), CLASSES)
    p = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.2, 0.7], [0.4, 0.4, 0.2]])
    result = cbpe.estimate(p, ["a", "b", "c", "b"])
    # Class a: predicted on row 0 -> tp 0.6, fp 0.4; fn = 0.2 + 0.1 + 0.4.
    tp = np.array([0.6, 0.5 + 0.4, 0.7])
    fp = np.array([0.4, 0.5 + 0.6, 0.3])
    fn = np.array([0.7, 0.3 + 0.2, 0.1 + 0.3 + 0.2])
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    f1 = 2 * tp / (2 * tp + fp + fn)
    support = (tp + fn) / 4
    assert result.metrics["accuracy"] == pytest.approx((0.6 + 0.5 + 0.7 + 0.4) / 4)
    assert result.metrics["precision_macro"] == pytest.approx(np.mean(precision))
    assert result.metrics["recall_weighted"] == pytest.approx(np.sum(recall * support))
    assert result.metrics["f1_weighted"] == pytest.approx(np.sum(f1 * support))
    assert result.metrics["f1_macro"] == pytest.approx(np.mean(f1))
    assert set(result.metrics) == set(MULTICLASS_ESTIMATED_METRICS)
    assert result.calibrated_classes == ()


def test_estimates_follow_realized_metrics_under_covariate_shift() -> None:
    rng = np.random.default_rng(31)
    ref_logits, ref_y = _stream(rng, 6000, 0.0)
    cbpe = MulticlassCBPE()
    cbpe.fit(_softmax(ref_logits), CLASSES, ref_y)
    accuracies = []
    for shift in np.linspace(0.0, 1.0, 5):
        logits, y = _stream(rng, WINDOW, float(shift))
        p = _softmax(logits)
        predicted = np.array(CLASSES, dtype=object)[p.argmax(axis=1)]
        estimate = cbpe.estimate(p)
        realized = _realized(y, p, predicted)
        for metric in MULTICLASS_ESTIMATED_METRICS:
            assert estimate.metrics[metric] == pytest.approx(realized[metric], abs=0.035), (shift, metric)
        accuracies.append(realized["accuracy"])
    assert accuracies[0] - accuracies[-1] > 0.05  # the shift really makes the task harder


def test_per_class_calibration_repairs_an_overconfident_model() -> None:
    rng = np.random.default_rng(41)
    ref_logits, ref_y = _stream(rng, 6000, 0.0)
    logits, y = _stream(rng, WINDOW, 0.7)
    overconfident = _softmax(3.0 * logits)
    realized = float(np.mean(np.array(CLASSES, dtype=object)[overconfident.argmax(axis=1)] == y))
    raw = MulticlassCBPE(calibration="none")
    raw.fit(_softmax(3.0 * ref_logits), CLASSES, ref_y)
    auto = MulticlassCBPE()
    auto.fit(_softmax(3.0 * ref_logits), CLASSES, ref_y)
    assert auto.calibrated_classes == CLASSES and raw.calibrated_classes == ()
    assert abs(raw.estimate(overconfident).metrics["accuracy"] - realized) > 0.05
    assert abs(auto.estimate(overconfident).metrics["accuracy"] - realized) < 0.03
    np.testing.assert_allclose(auto.calibrate(overconfident).sum(axis=1), 1.0)


def test_expected_errors_average_to_one_minus_estimated_accuracy() -> None:
    rng = np.random.default_rng(5)
    logits, y = _stream(rng, 2000, 0.0)
    cbpe = MulticlassCBPE()
    cbpe.fit(_softmax(3.0 * logits), CLASSES, y)
    p = _softmax(3.0 * logits)
    predicted = ["z"] * 10 + [CLASSES[i] for i in p[10:].argmax(axis=1)]
    errors = cbpe.expected_errors(p, predicted)
    assert np.all(errors[:10] == 1.0)  # a class the model does not know is surely wrong
    assert float(np.mean(errors)) == pytest.approx(1.0 - cbpe.estimate(p, predicted).metrics["accuracy"])


def test_invalid_input_is_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="calibration"):
        MulticlassCBPE(calibration="platt")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="before fit"):
        MulticlassCBPE().estimate(np.eye(3))
    cbpe = MulticlassCBPE()
    with pytest.raises(ValueError, match="two distinct classes"):
        cbpe.fit(np.eye(2), ("a", "a"))
    cbpe.fit(np.eye(3), CLASSES)
    with pytest.raises(ValueError, match=r"\(events, 3\)"):
        cbpe.estimate(np.eye(2))
    with pytest.raises(ValueError, match="predictions for"):
        cbpe.estimate(np.eye(3), ["a"])


def test_every_performance_metric_name_is_a_catalog_label_value() -> None:
    rng = np.random.default_rng(2)
    logits, y = _stream(rng, 500, 0.0)
    p = _softmax(logits)
    predicted = np.array(CLASSES, dtype=object)[p.argmax(axis=1)]
    names = set(MULTICLASS_ESTIMATED_METRICS) | set(multiclass_metrics(y, predicted, p, CLASSES))
    names |= set(ESTIMATED_METRICS) | {"log_loss"} | set(regression_metrics(np.ones(3), np.zeros(3)))
    assert names <= set(PERFORMANCE_METRICS), names - set(PERFORMANCE_METRICS)
