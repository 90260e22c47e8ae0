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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

from detectors.base import BatchStatistic

Task = Literal["binary_classification", "multiclass_classification", "regression"]
TASKS: tuple[Task, ...] = ("binary_classification", "multiclass_classification", "regression")
Scalar = float | int | str | bool

FloatArray = npt.NDArray[np.float64]
BoolMatrix = npt.NDArray[np.bool_]
IntMatrix = npt.NDArray[np.integer]
REGRESSION_METRICS = ("mae", "mse", "rmse", "mape", "r2")
_EPS = float(np.finfo(np.float64).eps)


def class_key(value: Scalar) -> str:
    """The class name of a label or prediction: booleans as "1"/"0", whole numbers without ".0"."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def class_keys(values: Sequence[Scalar]) -> npt.NDArray[np.object_]:
    """:func:`class_key` of each value, as an object array, converting each distinct value once.

    Values that compare equal (``1``, ``1.0``, ``True``) share a dictionary entry, and their
    class keys are equal too, so the first one's serves them all.
    """
    keys: dict[Scalar, str] = {}
    for value in values:
        if value not in keys:
            keys[value] = class_key(value)
    return np.array([keys[value] for value in values], dtype=object)


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
        y_true, y_pred = class_keys(labels), class_keys(predictions)
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

    def on_resamples(
        self,
        labels: Sequence[Scalar],
        predictions: Sequence[Scalar],
        positive_probabilities: npt.NDArray[np.float64] | None = None,
    ) -> BatchStatistic:
        """The metrics of many resamples of the rows at once, each as :meth:`evaluate` gives it for
        the resample's rows (to 1e-9; NaN where :meth:`evaluate` leaves a metric out).

        Classes are converted once and every metric is an array operation over the
        (resamples x window) matrix of row indices: the bootstrap of a reference's
        thresholds costs no Python call per resample.
        """
        task = self._settle_task(labels, predictions, positive_probabilities)
        if task == "regression":
            y = np.asarray(labels, dtype=np.float64)
            y_hat = np.asarray(predictions, dtype=np.float64)
            return lambda rows: regression_scores(y[rows], y_hat[rows])
        y_true, y_pred = class_keys(labels), class_keys(predictions)
        if task == "multiclass_classification":
            codes = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)[1]
            true_codes, pred_codes = codes[: len(y_true)], codes[len(y_true) :]
            n_classes = int(codes.max()) + 1
            return lambda rows: multiclass_scores(true_codes[rows], pred_codes[rows], n_classes)
        actual = y_true == self.positive_class
        predicted = y_pred == self.positive_class
        if positive_probabilities is None:
            return lambda rows: binary_scores(actual[rows], predicted[rows])
        return _binary_with_probabilities(actual, predicted, positive_probabilities)

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
    scores = binary_scores(actual[None], predicted[None])
    metrics = {name: float(values[0]) for name, values in scores.items()}
    if positive_probability is not None:
        auc = roc_auc(actual, positive_probability)
        if auc is not None:
            metrics["roc_auc"] = auc
        metrics["log_loss"] = log_loss(actual, positive_probability)
    return metrics


def binary_scores(actual: BoolMatrix, predicted: BoolMatrix) -> dict[str, FloatArray]:
    """Accuracy, precision, recall and F1 of each row of decisions (one resample a row)."""
    tp = np.sum(actual & predicted, axis=1).astype(np.float64)
    fp = np.sum(~actual & predicted, axis=1).astype(np.float64)
    fn = np.sum(actual & ~predicted, axis=1).astype(np.float64)
    return {
        "accuracy": np.mean(actual == predicted, axis=1),
        "precision": ratios(tp, tp + fp),
        "recall": ratios(tp, tp + fn),
        "f1": ratios(2 * tp, 2 * tp + fp + fn),
    }


def _binary_with_probabilities(
    actual: npt.NDArray[np.bool_], predicted: npt.NDArray[np.bool_], proba: FloatArray
) -> BatchStatistic:
    """Binary scores with ROC AUC (from the probabilities' dense ranks) and log loss; both NaN in a
    resample that holds a row without a probability, as :func:`binary_metrics` gives them."""
    missing = np.isnan(proba)
    codes = np.unique(np.where(missing, -1.0, proba), return_inverse=True)[1]
    n_codes = int(codes.max()) + 1
    keys = compact_codes(codes * 2 + actual, 2 * n_codes)  # a row's rank, then its label
    mixed = (np.bincount(codes[actual & ~missing], minlength=n_codes) > 0) & (
        np.bincount(codes[~actual & ~missing], minlength=n_codes) > 0
    )
    with np.errstate(invalid="ignore"):
        losses = -np.log(np.clip(np.where(actual, proba, 1.0 - proba), _EPS, 1.0 - _EPS))

    def scores(rows: IntMatrix) -> dict[str, FloatArray]:
        out = binary_scores(actual[rows], predicted[rows])
        out["roc_auc"] = ranked_roc_aucs(keys[rows], mixed)
        out["log_loss"] = np.mean(losses[rows], axis=1)
        if missing.any():
            unknown = missing[rows].any(axis=1)
            out["roc_auc"][unknown] = out["log_loss"][unknown] = np.nan
        return out

    return scores


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


def multiclass_scores(
    true_codes: IntMatrix, pred_codes: IntMatrix, n_classes: int
) -> dict[str, FloatArray]:
    """:func:`multiclass_metrics` (without probabilities) of each row of class codes (0 to
    ``n_classes - 1``, one resample a row): the averages run over the classes seen in the row."""
    n_resamples = true_codes.shape[0]
    offset = np.arange(n_resamples)[:, None] * n_classes

    def counts(codes: IntMatrix, where: BoolMatrix | None = None) -> FloatArray:
        keys = (codes + offset) if where is None else (codes + offset)[where]
        flat = np.bincount(keys.ravel(), minlength=n_resamples * n_classes)
        return flat.reshape(n_resamples, n_classes).astype(np.float64)

    hit = true_codes == pred_codes
    tp = counts(true_codes, hit)
    actual, predicted = counts(true_codes), counts(pred_codes)
    metrics = {"accuracy": np.mean(hit, axis=1)}
    metrics.update(averaged_score_rows(tp, predicted - tp, actual - tp, (actual + predicted) > 0))
    metrics["f1"] = metrics["f1_macro"]
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


def ranked_roc_aucs(keys: IntMatrix, mixed: npt.NDArray[np.bool_] | None = None) -> FloatArray:
    """:func:`roc_auc` of each row of sort keys ``2 * rank + label`` (rank: the dense rank of the
    score; label 1 for a positive); NaN where a row holds one class.

    The Mann-Whitney count with ties half: the pairs whose negative ranks at or below the
    positive (one sort of the row), less half the pairs tied on one rank. ``mixed`` (per rank:
    does it hold both a positive and a negative among all rows) confines the tied pairs to those
    ranks, counted without a sort; without it they take a second sort. The counts are whole
    numbers, so the value equals :func:`roc_auc`'s exactly.
    """
    n_pos = np.sum(keys & 1, axis=1).astype(np.float64)
    pairs = n_pos * (keys.shape[1] - n_pos)
    at_or_below = _pairs_below(keys)
    if mixed is None or len(keys) * int(np.sum(mixed)) > MAX_TIE_CELLS:
        tied = at_or_below - _pairs_below(keys ^ 1, positive_bit=0)  # positives first in a tie
    else:
        tied = _tied_pairs(keys, mixed)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, (at_or_below - tied / 2) / pairs, np.nan)


MAX_TIE_CELLS = 2_000_000
"""Resamples x mixed ranks up to which the tied pairs are counted per rank (16 MB a count)."""


def _tied_pairs(keys: IntMatrix, mixed: npt.NDArray[np.bool_]) -> FloatArray:
    """Per row, the (positive, negative) pairs on one rank, the ranks ``mixed`` being the only
    ones that can hold such a pair."""
    n_mixed = int(np.sum(mixed))
    if n_mixed == 0:
        return np.zeros(len(keys))
    slot = np.cumsum(mixed) - 1  # each mixed rank's column
    codes = keys >> 1
    row, column = np.nonzero(mixed[codes])
    cells = row * n_mixed + slot[codes[row, column]]
    positive = (keys[row, column] & 1).astype(bool)
    size = len(keys) * n_mixed
    positives = np.bincount(cells[positive], minlength=size)
    negatives = np.bincount(cells[~positive], minlength=size)
    return np.sum((positives * negatives).reshape(len(keys), n_mixed), axis=1).astype(np.float64)


def _pairs_below(keys: IntMatrix, positive_bit: int = 1) -> FloatArray:
    """Per row, the (positive, negative) pairs whose negative sorts before the positive; the low
    bit of a key (``positive_bit`` for a positive) orders a tie. A positive at sorted position
    ``j`` has ``j`` keys before it, of which the negatives are those that are not earlier
    positives: summed, the positions less ``n_pos (n_pos - 1) / 2`` (whole numbers, exact)."""
    ordered = np.sort(keys, axis=1, kind="stable")
    positive = ((ordered & 1) == positive_bit).astype(np.float64)
    n_pos = np.sum(positive, axis=1)
    positions = np.einsum("ij,j->i", positive, np.arange(keys.shape[1], dtype=np.float64))  # no BLAS
    return positions - n_pos * (n_pos - 1) / 2


def log_loss(actual: npt.NDArray[np.bool_], positive_probability: npt.NDArray[np.float64]) -> float:
    """Mean negative log-likelihood of the labels, probabilities clipped to [eps, 1 - eps]."""
    p_true = np.where(actual, positive_probability, 1.0 - positive_probability)
    return float(-np.mean(np.log(np.clip(p_true, _EPS, 1.0 - _EPS))))


def regression_metrics(
    y: npt.NDArray[np.float64], y_hat: npt.NDArray[np.float64]
) -> dict[str, float]:
    """MAE, MSE, RMSE, MAPE (a ratio, not a percentage) and R2 (with at least two events)."""
    return {name: float(values[0]) for name, values in regression_scores(y[None], y_hat[None]).items()}


def regression_scores(y: FloatArray, y_hat: FloatArray) -> dict[str, FloatArray]:
    """:func:`regression_metrics` of each row (one resample a row)."""
    error = y - y_hat
    squared = np.mean(error**2, axis=1)
    metrics = {
        "mae": np.mean(np.abs(error), axis=1),
        "mse": squared,
        "rmse": np.sqrt(squared),
        "mape": np.mean(np.abs(error) / np.maximum(np.abs(y), _EPS), axis=1),
    }
    if y.shape[1] >= 2:
        ss_res = np.sum(error**2, axis=1)
        ss_tot = np.sum((y - np.mean(y, axis=1, keepdims=True)) ** 2, axis=1)
        constant = np.where(ss_res == 0.0, 1.0, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            metrics["r2"] = np.where(ss_tot == 0.0, constant, 1.0 - ss_res / ss_tot)
    return metrics


def averaged_scores(tp: FloatArray, fp: FloatArray, fn: FloatArray) -> dict[str, float]:
    """Macro and support-weighted precision, recall and F1 from per-class counts (0 when 0/0)."""
    scores = averaged_score_rows(tp[None], fp[None], fn[None])
    return {name: float(values[0]) for name, values in scores.items()}


def averaged_score_rows(
    tp: FloatArray, fp: FloatArray, fn: FloatArray, seen: BoolMatrix | None = None
) -> dict[str, FloatArray]:
    """:func:`averaged_scores` of each row of (resamples x classes) counts; the macro means run
    over the classes ``seen`` in a row (all when ``None``)."""
    precision = ratios(tp, tp + fp)
    recall = ratios(tp, tp + fn)
    f1 = ratios(2.0 * tp, 2.0 * tp + fp + fn)
    support = tp + fn
    total = np.sum(support, axis=1, keepdims=True)
    weights = ratios(support, np.broadcast_to(total, support.shape))
    scores = {}
    for name, values in (("precision", precision), ("recall", recall), ("f1", f1)):
        if seen is None:
            scores[f"{name}_macro"] = np.mean(values, axis=1)
        else:
            scores[f"{name}_macro"] = np.sum(np.where(seen, values, 0.0), axis=1) / np.sum(seen, axis=1)
        scores[f"{name}_weighted"] = np.sum(values * weights, axis=1)
    return scores


def compact_codes(codes: npt.NDArray[np.integer], bound: int) -> npt.NDArray[np.integer]:
    """Codes in ``[0, bound)`` in the narrowest unsigned type that holds them: numpy sorts
    16-bit integers by radix, four to five times faster than 64-bit ones."""
    for kind in (np.uint16, np.uint32):
        if bound <= np.iinfo(kind).max + 1:
            return codes.astype(kind)
    return codes.astype(np.int64)


def ratios(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    """Elementwise ``numerator / denominator``, 0 where the denominator is not positive."""
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)
