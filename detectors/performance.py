"""Realized performance: model quality on one window of joined labels.

Binary classification: accuracy, precision, recall, F1 (of the configured
positive class), ROC AUC and log loss (when the positive-class probability is
known); multiclass: accuracy, macro and weighted precision, recall and F1, and
the one-vs-rest ROC AUC (when the class probabilities are known); regression:
MAE, MSE, RMSE, MAPE and R2.
Every classifier also reports recall and support per class (class balance).
The values equal scikit-learn's defaults (``zero_division`` as 0, log loss
clipped at the float64 machine epsilon, MAPE's denominator floored at it, R2
of a constant target 1 when predicted exactly and 0 otherwise); scikit-learn is
the test oracle, not a runtime dependency.

Classes are compared as strings (:func:`class_key`): ``1``, ``1.0`` and
``"1"`` are the same class, and ``True``/``False`` are ``"1"``/``"0"``, so the
default ``positive_class: "1"`` fits 0/1, boolean and string labels alike.

>>> evaluator = PerformanceEvaluator(task="binary_classification", positive_class="1")
>>> result = evaluator.evaluate([1, 0, 1, 1], [1, 0, 0, 1], [0.9, 0.2, 0.4, 0.8])
>>> result.metrics["accuracy"], result.metrics["recall"], result.metrics["roc_auc"]
(0.75, 0.6666666666666666, 1.0)
>>> dict(result.class_support)
{'0': 1, '1': 3}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

Task = Literal["binary_classification", "multiclass_classification", "regression"]
TASKS: tuple[Task, ...] = ("binary_classification", "multiclass_classification", "regression")
Scalar = float | int | str | bool

FloatArray = npt.NDArray[np.float64]
REGRESSION_METRICS = ("mae", "mse", "rmse", "mape", "r2")
_EPS = float(np.finfo(np.float64).eps)


def class_key(value: Scalar) -> str:
    """The class name of a label or prediction: booleans as "1"/"0", whole numbers without ".0"."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def infer_task(
    labels: Sequence[Scalar], predictions: Sequence[Scalar], has_probabilities: bool = False
) -> Task:
    """Guess the task from the events when the configuration does not say.

    Probabilities, strings or booleans mean classification; so do numbers that
    are all whole and take at most two values (0/1 labels). Any other numbers
    mean regression. Classification with more than two classes (over labels
    and predictions) is multiclass.
    """
    values = [*labels, *predictions]
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    keys = {class_key(v) for v in values}
    if numeric and not has_probabilities:
        whole = all(float(v).is_integer() for v in values)
        if not (whole and len(keys) <= 2):
            return "regression"
    return "binary_classification" if len(keys) <= 2 else "multiclass_classification"


@dataclass(frozen=True)
class PerformanceResult:
    """Realized performance of one window: feeds ``driftline_performance{source="realized"}``."""

    task: Task
    n: int
    metrics: Mapping[str, float]
    """Metric name (the ``metric`` label) to value; a metric that is undefined is absent."""
    class_recall: Mapping[str, float]
    """Recall per class present in the labels (``driftline_class_recall``)."""
    class_support: Mapping[str, int]
    """Labelled events per class (``driftline_class_support``)."""


class PerformanceEvaluator:
    """Realized metrics of one window of labels and predictions.

    Parameters
    ----------
    task
        ``binary_classification``, ``multiclass_classification`` or
        ``regression``; ``None`` infers it from the first evaluated window and
        keeps it until :meth:`reset`.
    positive_class
        The positive class of a binary classifier (compared via :func:`class_key`).
    """

    def __init__(self, task: Task | None = None, positive_class: str = "1") -> None:
        if task is not None and task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        if not isinstance(positive_class, str) or not positive_class:
            raise ValueError(f"positive_class must be a non-empty string, got {positive_class!r}")
        self.task = task
        self.positive_class = positive_class
        self.reset()

    def __repr__(self) -> str:
        return f"PerformanceEvaluator(task={self.task!r}, positive_class={self.positive_class!r})"

    def reset(self) -> None:
        self.task_: Task | None = self.task
        """The task in use: the configured one, or the one inferred from the first window."""

    def evaluate(
        self,
        labels: Sequence[Scalar],
        predictions: Sequence[Scalar],
        positive_probabilities: Sequence[float] | npt.NDArray[np.float64] | None = None,
        class_probabilities: npt.NDArray[np.float64] | None = None,
        classes: Sequence[str] = (),
    ) -> PerformanceResult:
        """Score one window; ``positive_probabilities`` is P(positive class) (binary only),
        ``class_probabilities`` the (events x ``classes``) matrix (multiclass only)."""
        task = self._settle_task(labels, predictions, positive_probabilities)
        if task == "regression":
            y = np.asarray(labels, dtype=np.float64)
            y_hat = np.asarray(predictions, dtype=np.float64)
            return PerformanceResult(task, len(y), regression_metrics(y, y_hat), {}, {})
        y_true = np.array([class_key(v) for v in labels], dtype=object)
        y_pred = np.array([class_key(v) for v in predictions], dtype=object)
        recall, support = per_class_recall(y_true, y_pred)
        if task == "binary_classification":
            proba = None
            if positive_probabilities is not None:
                proba = np.asarray(positive_probabilities, dtype=np.float64)
            positive = self.positive_class
            metrics = binary_metrics(y_true == positive, y_pred == positive, proba)
        else:
            metrics = multiclass_metrics(y_true, y_pred, class_probabilities, classes)
        return PerformanceResult(task, len(y_true), metrics, recall, support)

    def on_rows(
        self,
        labels: Sequence[Scalar],
        predictions: Sequence[Scalar],
        positive_probabilities: npt.NDArray[np.float64] | None = None,
    ) -> Callable[[npt.NDArray[np.intp]], Mapping[str, float]]:
        """The metrics of any subset of rows, as :meth:`evaluate` gives them for those rows.

        Classes are converted once, so scoring many subsets (bootstrap windows
        of a reference) costs array indexing, not a ``class_key`` per value.
        """
        task = self._settle_task(labels, predictions, positive_probabilities)
        if task == "regression":
            y = np.asarray(labels, dtype=np.float64)
            y_hat = np.asarray(predictions, dtype=np.float64)
            return lambda rows: regression_metrics(y[rows], y_hat[rows])
        y_true = np.array([class_key(v) for v in labels], dtype=object)
        y_pred = np.array([class_key(v) for v in predictions], dtype=object)
        if task == "multiclass_classification":
            return lambda rows: multiclass_metrics(y_true[rows], y_pred[rows])
        actual = y_true == self.positive_class
        predicted = y_pred == self.positive_class
        proba = positive_probabilities
        if proba is None or np.isnan(proba).any():
            return lambda rows: binary_metrics(
                actual[rows], predicted[rows], None if proba is None else proba[rows]
            )
        codes = np.unique(proba, return_inverse=True)[1]
        n_codes = int(codes.max()) + 1

        def metrics(rows: npt.NDArray[np.intp]) -> dict[str, float]:
            out = binary_metrics(actual[rows], predicted[rows])
            auc = ranked_roc_auc(actual[rows], codes[rows], n_codes)
            if auc is not None:
                out["roc_auc"] = auc
            out["log_loss"] = log_loss(actual[rows], proba[rows])
            return out

        return metrics

    def _settle_task(
        self,
        labels: Sequence[Scalar],
        predictions: Sequence[Scalar],
        positive_probabilities: Sequence[float] | npt.NDArray[np.float64] | None,
    ) -> Task:
        """Check the lengths; the task in use (inferred from the first window when not configured)."""
        if len(labels) != len(predictions) or len(labels) == 0:
            raise ValueError(
                "need as many labels as predictions, at least one: "
                f"{len(labels)} vs {len(predictions)}"
            )
        if positive_probabilities is not None and len(positive_probabilities) != len(labels):
            raise ValueError(
                f"positive_probabilities has {len(positive_probabilities)} values "
                f"for {len(labels)} labels"
            )
        if self.task_ is None:
            self.task_ = infer_task(labels, predictions, positive_probabilities is not None)
        return self.task_


def binary_metrics(
    actual: npt.NDArray[np.bool_],
    predicted: npt.NDArray[np.bool_],
    positive_probability: npt.NDArray[np.float64] | None = None,
) -> dict[str, float]:
    """Accuracy, precision, recall, F1, and with probabilities ROC AUC and log loss."""
    tp = float(np.sum(actual & predicted))
    fp = float(np.sum(~actual & predicted))
    fn = float(np.sum(actual & ~predicted))
    metrics = {
        "accuracy": float(np.mean(actual == predicted)),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
    }
    if positive_probability is not None:
        auc = roc_auc(actual, positive_probability)
        if auc is not None:
            metrics["roc_auc"] = auc
        metrics["log_loss"] = log_loss(actual, positive_probability)
    return metrics


def multiclass_metrics(
    y_true: npt.NDArray[np.object_],
    y_pred: npt.NDArray[np.object_],
    probabilities: npt.NDArray[np.float64] | None = None,
    classes: Sequence[str] = (),
) -> dict[str, float]:
    """Accuracy, macro and weighted precision/recall/F1, and with probabilities roc_auc_ovr.

    The averages run over the classes seen in labels or predictions (scikit-learn's
    default); ``f1`` is ``f1_macro``, kept under its first name. ``probabilities``
    is the (events x ``classes``) matrix; roc_auc_ovr (the macro one-vs-rest AUC)
    needs every one of ``classes`` in the labels and no label outside them.
    """
    seen = np.unique(np.concatenate([y_true, y_pred]))
    actual = y_true[:, None] == seen[None, :]
    predicted = y_pred[:, None] == seen[None, :]
    tp = np.sum(actual & predicted, axis=0).astype(np.float64)
    fp = np.sum(~actual & predicted, axis=0).astype(np.float64)
    fn = np.sum(actual & ~predicted, axis=0).astype(np.float64)
    metrics = {"accuracy": float(np.mean(y_true == y_pred))}
    metrics.update(averaged_scores(tp, fp, fn))
    metrics["f1"] = metrics["f1_macro"]
    if probabilities is not None:
        auc = roc_auc_ovr(y_true, probabilities, classes)
        if auc is not None:
            metrics["roc_auc_ovr"] = auc
    return metrics


def roc_auc_ovr(
    y_true: npt.NDArray[np.object_], probabilities: npt.NDArray[np.float64], classes: Sequence[str]
) -> float | None:
    """Mean one-vs-rest ROC AUC over ``classes``; ``None`` unless the labels hold exactly them."""
    if set(np.unique(y_true).tolist()) != set(classes) or probabilities.shape != (len(y_true), len(classes)):
        return None
    aucs = [roc_auc(y_true == cls, probabilities[:, k]) for k, cls in enumerate(classes)]
    return float(np.mean([a for a in aucs if a is not None]))


def per_class_recall(
    y_true: npt.NDArray[np.object_], y_pred: npt.NDArray[np.object_]
) -> tuple[dict[str, float], dict[str, int]]:
    """Recall and support of every class that occurs in the labels."""
    classes, counts = np.unique(y_true, return_counts=True)
    recall = {}
    support = {}
    for cls, count in zip(classes.tolist(), counts.tolist(), strict=True):
        actual = y_true == cls
        recall[cls] = float(np.sum(actual & (y_pred == cls))) / count
        support[cls] = int(count)
    return recall, support


def roc_auc(actual: npt.NDArray[np.bool_], score: npt.NDArray[np.float64]) -> float | None:
    """Area under the ROC curve (Mann-Whitney, ties count half); ``None`` with one class only."""
    n_pos = int(np.sum(actual))
    n_neg = len(actual) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = stats.rankdata(score)
    return float((np.sum(ranks[actual]) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def ranked_roc_auc(
    actual: npt.NDArray[np.bool_], codes: npt.NDArray[np.intp], n_codes: int
) -> float | None:
    """:func:`roc_auc` of scores given by their dense ranks ``codes`` (0 to ``n_codes - 1``).

    Counting positives and negatives per rank replaces the sort: the same
    Mann-Whitney count (ties half), exactly, in linear time.
    """
    positives = np.bincount(codes[actual], minlength=n_codes)
    negatives = np.bincount(codes[~actual], minlength=n_codes)
    n_pos, n_neg = int(positives.sum()), int(negatives.sum())
    if n_pos == 0 or n_neg == 0:
        return None
    below = np.cumsum(negatives) - negatives
    return float(np.sum(positives * (below + 0.5 * negatives)) / (n_pos * n_neg))


def log_loss(actual: npt.NDArray[np.bool_], positive_probability: npt.NDArray[np.float64]) -> float:
    """Mean negative log-likelihood of the labels, probabilities clipped to [eps, 1 - eps]."""
    p_true = np.where(actual, positive_probability, 1.0 - positive_probability)
    return float(-np.mean(np.log(np.clip(p_true, _EPS, 1.0 - _EPS))))


def regression_metrics(
    y: npt.NDArray[np.float64], y_hat: npt.NDArray[np.float64]
) -> dict[str, float]:
    """MAE, MSE, RMSE, MAPE (a ratio, not a percentage) and R2 (with at least two events)."""
    error = y - y_hat
    metrics = {
        "mae": float(np.mean(np.abs(error))),
        "mse": float(np.mean(error**2)),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mape": float(np.mean(np.abs(error) / np.maximum(np.abs(y), _EPS))),
    }
    if len(y) >= 2:
        ss_res = float(np.sum(error**2))
        ss_tot = float(np.sum((y - np.mean(y)) ** 2))
        if ss_tot == 0.0:
            metrics["r2"] = 1.0 if ss_res == 0.0 else 0.0
        else:
            metrics["r2"] = 1.0 - ss_res / ss_tot
    return metrics


def averaged_scores(tp: FloatArray, fp: FloatArray, fn: FloatArray) -> dict[str, float]:
    """Macro and support-weighted precision, recall and F1 from per-class counts (0 when 0/0)."""
    precision = _ratios(tp, tp + fp)
    recall = _ratios(tp, tp + fn)
    f1 = _ratios(2.0 * tp, 2.0 * tp + fp + fn)
    support = tp + fn
    weights = support / np.sum(support) if np.sum(support) > 0 else np.zeros_like(support)
    scores = {}
    for name, values in (("precision", precision), ("recall", recall), ("f1", f1)):
        scores[f"{name}_macro"] = float(np.mean(values))
        scores[f"{name}_weighted"] = float(np.sum(values * weights))
    return scores


def _ratios(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else 0.0
