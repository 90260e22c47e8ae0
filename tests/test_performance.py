"""Realized performance equals scikit-learn's on the same labels and predictions (to 1e-9)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from detectors.performance import PerformanceEvaluator, class_key, infer_task

TOL = 1e-9


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_metrics_equal_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 1500
    proba = rng.beta(2, 2, size=n)
    labels = (rng.random(n) < proba).astype(int)
    predictions = (proba >= 0.5).astype(int)
    proba[:5] = [0.0, 1.0, 0.5, 0.5, 0.5]  # exact 0/1 (log-loss clipping) and ties (AUC)
    result = PerformanceEvaluator("binary_classification", "1").evaluate(
        labels.tolist(), predictions.tolist(), proba
    )
    two_columns = np.column_stack([1 - proba, proba])
    expected = {
        "accuracy": skm.accuracy_score(labels, predictions),
        "precision": skm.precision_score(labels, predictions),
        "recall": skm.recall_score(labels, predictions),
        "f1": skm.f1_score(labels, predictions),
        "roc_auc": skm.roc_auc_score(labels, proba),
        "log_loss": skm.log_loss(labels, two_columns, labels=[0, 1]),
    }
    assert result.metrics.keys() == expected.keys()
    for name, value in expected.items():
        assert result.metrics[name] == pytest.approx(value, abs=TOL), name
    assert result.class_recall["1"] == pytest.approx(skm.recall_score(labels, predictions), abs=TOL)
    assert result.class_recall["0"] == pytest.approx(
        skm.recall_score(labels, predictions, pos_label=0), abs=TOL
    )
    assert result.class_support == {"0": int(np.sum(labels == 0)), "1": int(np.sum(labels == 1))}


def test_binary_with_string_classes_and_another_positive_class() -> None:
    rng = np.random.default_rng(3)
    labels = rng.choice(["spam", "ham"], size=400, p=[0.3, 0.7])
    predictions = np.where(rng.random(400) < 0.8, labels, rng.choice(["spam", "ham"], size=400))
    result = PerformanceEvaluator("binary_classification", "spam").evaluate(
        labels.tolist(), predictions.tolist()
    )
    assert set(result.metrics) == {"accuracy", "precision", "recall", "f1"}
    for name, scorer in [
        ("precision", skm.precision_score),
        ("recall", skm.recall_score),
        ("f1", skm.f1_score),
    ]:
        assert result.metrics[name] == pytest.approx(
            scorer(labels, predictions, pos_label="spam"), abs=TOL
        )


def test_binary_edge_cases_follow_sklearn_zero_division() -> None:
    labels = [0, 0, 0, 0]
    predictions = [0, 0, 0, 0]
    result = PerformanceEvaluator("binary_classification").evaluate(labels, predictions, [0.1] * 4)
    assert result.metrics["precision"] == skm.precision_score(labels, predictions, zero_division=0)
    assert result.metrics["f1"] == skm.f1_score(labels, predictions, zero_division=0) == 0.0
    assert "roc_auc" not in result.metrics  # undefined with one class in the labels
    assert result.class_support == {"0": 4}


@pytest.mark.parametrize("seed", [0, 1])
def test_multiclass_metrics_equal_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    classes = np.array(["a", "b", "c", "d"])
    labels = rng.choice(classes, size=2000, p=[0.4, 0.3, 0.2, 0.1])
    noise = rng.choice(np.array(["a", "b", "c", "e"]), size=2000)  # "e" only ever predicted
    predictions = np.where(rng.random(2000) < 0.7, labels, noise)
    result = PerformanceEvaluator("multiclass_classification").evaluate(
        labels.tolist(), predictions.tolist()
    )
    assert result.metrics["accuracy"] == pytest.approx(
        skm.accuracy_score(labels, predictions), abs=TOL
    )
    assert result.metrics["f1"] == pytest.approx(
        skm.f1_score(labels, predictions, average="macro"), abs=TOL
    )
    sk_recall = skm.recall_score(labels, predictions, average=None, labels=classes)
    assert list(result.class_recall) == classes.tolist()
    for cls, value in zip(classes, sk_recall, strict=True):
        assert result.class_recall[cls] == pytest.approx(value, abs=TOL)
    assert result.class_support == {c: int(np.sum(labels == c)) for c in classes}


@pytest.mark.parametrize("seed", [0, 1])
def test_regression_metrics_equal_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.normal(10, 3, size=1000)
    y[0] = 0.0  # MAPE's floored denominator
    y_hat = y + rng.normal(0, 1, size=1000)
    result = PerformanceEvaluator("regression").evaluate(y.tolist(), y_hat.tolist())
    expected = {
        "mae": skm.mean_absolute_error(y, y_hat),
        "mse": skm.mean_squared_error(y, y_hat),
        "rmse": skm.root_mean_squared_error(y, y_hat),
        "mape": skm.mean_absolute_percentage_error(y, y_hat),
        "r2": skm.r2_score(y, y_hat),
    }
    assert result.metrics.keys() == expected.keys()
    for name, value in expected.items():
        assert result.metrics[name] == pytest.approx(value, abs=TOL, rel=TOL), name
    assert result.class_recall == {} and result.class_support == {}


def test_r2_of_a_constant_target_matches_sklearn() -> None:
    evaluator = PerformanceEvaluator("regression")
    assert evaluator.evaluate([2.0, 2.0], [2.0, 2.0]).metrics["r2"] == skm.r2_score([2, 2], [2, 2])
    assert evaluator.evaluate([2.0, 2.0], [1.0, 2.0]).metrics["r2"] == skm.r2_score([2, 2], [1, 2])


def test_class_key_unifies_numbers_booleans_and_strings() -> None:
    assert [class_key(v) for v in (1, 1.0, "1", True, 0, False, 2.5, "a")] == [
        "1", "1", "1", "1", "0", "0", "2.5", "a",
    ]


@pytest.mark.parametrize(
    ("labels", "predictions", "has_probabilities", "task"),
    [
        ([0, 1, 1], [1, 1, 0], False, "binary_classification"),
        ([True, False], [False, False], False, "binary_classification"),
        (["a", "b", "c"], ["a", "a", "b"], False, "multiclass_classification"),
        ([0, 1, 2], [0, 2, 2], True, "multiclass_classification"),
        ([0.5, 1.5, 3.0], [0.4, 1.0, 2.0], False, "regression"),
        ([0, 1, 2, 7], [0, 1, 2, 5], False, "regression"),
    ],
)
def test_infer_task(labels: list, predictions: list, has_probabilities: bool, task: str) -> None:
    assert infer_task(labels, predictions, has_probabilities) == task


def test_an_inferred_task_sticks_until_reset() -> None:
    evaluator = PerformanceEvaluator()
    assert evaluator.evaluate([0.5, 2.5], [0.5, 2.0]).task == "regression"
    assert evaluator.evaluate([1, 0], [1, 1]).task == "regression"
    evaluator.reset()
    assert evaluator.evaluate([1, 0], [1, 1]).task == "binary_classification"


def test_invalid_input_is_refused_naming_the_value() -> None:
    with pytest.raises(ValueError, match="'ranking'"):
        PerformanceEvaluator(task="ranking")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="''"):
        PerformanceEvaluator(positive_class="")
    with pytest.raises(ValueError, match="3 vs 2"):
        PerformanceEvaluator().evaluate([1, 0, 1], [1, 0])
