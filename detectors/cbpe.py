"""Confidence-based performance estimation (CBPE) for binary classifiers, without labels.

If the probability ``p`` a model gives its positive class is calibrated, an
event predicted positive is a true positive with probability ``p`` and a false
positive with probability ``1 - p`` (and the other way round for a negative
prediction). Summing these over a window gives the expected confusion matrix,
and from it the expected accuracy, precision, recall and F1. The expected ROC
AUC is the area under the curve traced by the expected true- and
false-positive rates as the threshold sweeps the probabilities (NannyML's
construction). The estimates follow the realized metrics under covariate shift
(the model's P(y|x) unchanged), which is exactly what makes a gap between the
two a sign of concept drift.

Calibration comes from the labelled reference when there is one, and only when
it helps (:func:`detectors.calibration.choose_calibrator`). The model's own
decision is the prediction in the event when the caller passes it, otherwise
``raw probability >= threshold``.

The estimates feed ``driftline_performance{source="estimated"}``, and
:meth:`CBPE.expected_errors` the concept-drift detector.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> p = rng.uniform(size=4000)
>>> y = rng.uniform(size=4000) < p
>>> cbpe = CBPE()
>>> cbpe.fit(p[:2000], y[:2000])
>>> estimate = cbpe.estimate(p[2000:])
>>> realized = float(np.mean((p[2000:] >= 0.5) == y[2000:]))
>>> abs(estimate.metrics["accuracy"] - realized) < 0.03
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from detectors.base import BatchStatistic
from detectors.calibration import IsotonicCalibrator, choose_calibrator
from detectors.performance import compact_codes, ratios

FloatArray = npt.NDArray[np.float64]
Calibration = Literal["auto", "isotonic", "none"]
CALIBRATIONS: tuple[Calibration, ...] = ("auto", "isotonic", "none")
ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")


@dataclass(frozen=True)
class CBPEResult:
    """Estimated performance of one window: ``driftline_performance{source="estimated"}``."""

    n: int
    metrics: Mapping[str, float]
    """accuracy, precision, recall, f1, roc_auc (roc_auc absent if undefined)."""
    calibrated: bool


class CBPE:
    """Expected binary-classification metrics from predicted probabilities.

    Parameters
    ----------
    threshold
        The decision threshold used when the caller passes no predictions.
    calibration
        ``auto`` calibrates on the labelled reference only when that lowers the
        calibration error on a held-out half; ``isotonic`` always calibrates
        when reference labels are given; ``none`` trusts the raw probabilities.
    """

    def __init__(self, threshold: float = 0.5, calibration: Calibration = "auto") -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
        if calibration not in CALIBRATIONS:
            raise ValueError(f"calibration must be one of {CALIBRATIONS}, got {calibration!r}")
        self.threshold = threshold
        self.calibration = calibration
        self.reset()

    def __repr__(self) -> str:
        return f"CBPE(threshold={self.threshold}, calibration={self.calibration!r})"

    def reset(self) -> None:
        self._calibrator: IsotonicCalibrator | None = None

    @property
    def calibrated(self) -> bool:
        """Whether the reference led to a calibration map."""
        return self._calibrator is not None

    def fit(
        self, reference_probabilities: npt.ArrayLike, reference_actual: npt.ArrayLike | None = None
    ) -> None:
        """Learn the calibration from the reference's positive-class probabilities and 0/1 labels.

        Without reference labels the raw probabilities are used as they are.
        """
        self.reset()
        if reference_actual is None or self.calibration == "none":
            return
        p = np.asarray(reference_probabilities, dtype=np.float64)
        y = np.asarray(reference_actual, dtype=np.float64)
        if self.calibration == "isotonic":
            self._calibrator = IsotonicCalibrator().fit(p, y)
        else:
            self._calibrator = choose_calibrator(p, y)

    def calibrate(self, probabilities: npt.ArrayLike) -> FloatArray:
        """P(positive) after calibration (the raw values when not calibrated)."""
        p = np.asarray(probabilities, dtype=np.float64)
        return self._calibrator.transform(p) if self._calibrator is not None else p

    def expected_errors(
        self, probabilities: npt.ArrayLike, predicted_positive: npt.ArrayLike | None = None
    ) -> FloatArray:
        """Per-event probability that the model's decision is wrong."""
        p_raw = np.asarray(probabilities, dtype=np.float64)
        positive = self._decisions(p_raw, predicted_positive)
        p = self.calibrate(p_raw)
        return np.where(positive, 1.0 - p, p)

    def estimate(
        self, probabilities: npt.ArrayLike, predicted_positive: npt.ArrayLike | None = None
    ) -> CBPEResult:
        """Expected metrics of one window of positive-class probabilities."""
        p_raw = np.asarray(probabilities, dtype=np.float64)
        if p_raw.ndim != 1 or len(p_raw) == 0:
            raise ValueError(f"probabilities must be a non-empty 1-d array, got {p_raw.shape}")
        positive = self._decisions(p_raw, predicted_positive)
        p = self.calibrate(p_raw)[None]
        scores = expected_scores(p, positive[None], expected_roc_aucs(p))
        metrics = {name: float(values[0]) for name, values in scores.items() if not np.isnan(values[0])}
        return CBPEResult(len(p_raw), metrics, self.calibrated)

    def on_resamples(
        self, probabilities: npt.ArrayLike, predicted_positive: npt.ArrayLike | None = None
    ) -> BatchStatistic:
        """The estimate of many resamples of these rows at once (NaN: ROC AUC undefined), each as
        :meth:`estimate` gives it for the resample's rows; calibrated and ranked once for all."""
        p_raw = np.asarray(probabilities, dtype=np.float64)
        positive = self._decisions(p_raw, predicted_positive)
        p = self.calibrate(p_raw)
        ranking = ScoreRanking.of(p, p)
        return lambda rows: expected_scores(p[rows], positive[rows], ranking.aucs(rows))

    def _decisions(
        self, p_raw: FloatArray, predicted_positive: npt.ArrayLike | None
    ) -> npt.NDArray[np.bool_]:
        if predicted_positive is None:
            return p_raw >= self.threshold
        positive = np.asarray(predicted_positive, dtype=bool)
        if positive.shape != p_raw.shape:
            raise ValueError(
                f"predicted_positive has shape {positive.shape}, probabilities {p_raw.shape}"
            )
        return positive


def expected_scores(
    p: FloatArray, positive: npt.NDArray[np.bool_], roc_auc: FloatArray
) -> dict[str, FloatArray]:
    """Expected accuracy, precision, recall and F1 of each row of calibrated probabilities and
    decisions (one window or resample a row), with each row's ``roc_auc`` (NaN: undefined)."""
    width = p.shape[1]
    decided = np.sum(positive, axis=1)
    tp = np.sum(p * positive, axis=1)
    fp = decided - tp  # the 1 - p of the events decided positive
    fn = np.sum(p, axis=1) - tp
    tn = (width - decided) - fn
    return {
        "accuracy": (tp + tn) / width,
        "precision": ratios(tp, tp + fp),
        "recall": ratios(tp, tp + fn),
        "f1": ratios(2 * tp, 2 * tp + fp + fn),
        "roc_auc": roc_auc,
    }


def expected_roc_auc(p: FloatArray, score: FloatArray | None = None) -> float | None:
    """Area under the expected ROC curve: events ranked by ``score`` (default ``p``), each a
    positive with calibrated probability ``p``; tied scores form one step."""
    auc = expected_roc_aucs(p[None], None if score is None else score[None])[0]
    return None if np.isnan(auc) else float(auc)


def expected_roc_aucs(p: FloatArray, score: FloatArray | None = None) -> FloatArray:
    """:func:`expected_roc_auc` of each row (one window or resample a row); NaN where a row's
    expected positives or negatives are zero."""
    if score is None:
        return ranked_expected_roc_aucs(np.sort(p, axis=1)[:, ::-1])
    order = np.argsort(-score, axis=1, kind="stable")
    ties = np.take_along_axis(score, order, axis=1)
    return ranked_expected_roc_aucs(np.take_along_axis(p, order, axis=1), ties)


def ranked_expected_roc_aucs(ranked_p: FloatArray, ties: FloatArray | None = None) -> FloatArray:
    """:func:`expected_roc_aucs` of each row of ``p`` already in descending score order.

    ``ties`` (the ranked scores) makes each run of equal scores one step, each event taking the
    counts at the end of its run. Without it every event is a step of its own, which is the same
    curve wherever tied events have equal ``p``: they add equal steps to the expected true and
    false positives, so the curve through them is the tie's one straight step. Then the area
    needs no cumulative sums: with ``tp_j = p_0 + ... + p_j``, twice the area
    ``sum_j (1 - p_j)(2 tp_j - p_j)`` sums to ``2 sum_j (width - j) p_j - P**2 - P``.
    """
    width = ranked_p.shape[1]
    if ties is not None:
        last_of_tie = np.ones(ties.shape, dtype=bool)
        last_of_tie[:, :-1] = ties[:, 1:] != ties[:, :-1]
        if not last_of_tie.all():
            return _tie_step_aucs(ranked_p, last_of_tie)
    positives = np.sum(ranked_p, axis=1)
    weighted = np.einsum("ij,j->i", ranked_p, np.arange(width, 0, -1, dtype=np.float64))  # no BLAS
    twice_area = 2.0 * weighted - positives**2 - positives
    return _area_ratio(twice_area, positives, width - positives)


def _tie_step_aucs(ranked_p: FloatArray, last_of_tie: npt.NDArray[np.bool_]) -> FloatArray:
    """The areas when a tie of scores joins events of different ``p``: one step per tie."""
    width = ranked_p.shape[1]
    tp = np.cumsum(ranked_p, axis=1)
    fp = np.arange(1, width + 1) - tp
    end = np.where(last_of_tie, np.arange(width), width - 1)
    end = np.minimum.accumulate(end[:, ::-1], axis=1)[:, ::-1]
    tp, fp = np.take_along_axis(tp, end, axis=1), np.take_along_axis(fp, end, axis=1)
    twice_area = fp[:, 0] * tp[:, 0] + np.sum((fp[:, 1:] - fp[:, :-1]) * (tp[:, 1:] + tp[:, :-1]), axis=1)
    return _area_ratio(twice_area, tp[:, -1], fp[:, -1])


def _area_ratio(twice_area: FloatArray, positives: FloatArray, negatives: FloatArray) -> FloatArray:
    """The area under the curve of expected true- and false-positive rates (NaN: no positive or
    no negative expected)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = twice_area / (2.0 * positives * negatives)
    return np.where((positives > 0.0) & (negatives > 0.0), auc, np.nan)


@dataclass(frozen=True)
class ScoreRanking:
    """Rows in descending score order, ranked once, so that a resample's order is a sort of its
    rows' integer ranks (a radix sort for up to 65,536 rows) instead of a sort of floats."""

    rank_of_row: npt.NDArray[np.integer]
    ranked_p: FloatArray
    ties: FloatArray | None
    """The ranked scores when some tie joins rows of different ``p`` (else no tie needs merging)."""

    @classmethod
    def of(cls, score: FloatArray, p: FloatArray) -> ScoreRanking:
        order = np.argsort(-score, kind="stable")
        rank_of_row = np.empty(len(order), dtype=np.intp)
        rank_of_row[order] = np.arange(len(order))
        ranked_score, ranked_p = score[order], p[order]
        mixed = bool(np.any((ranked_score[1:] == ranked_score[:-1]) & (ranked_p[1:] != ranked_p[:-1])))
        return cls(compact_codes(rank_of_row, len(order)), ranked_p, ranked_score if mixed else None)

    def aucs(self, rows: npt.NDArray[np.intp]) -> FloatArray:
        """The expected ROC AUC of each resample (row) of ``rows``."""
        ranks = np.sort(self.rank_of_row[rows], axis=1, kind="stable")
        ties = None if self.ties is None else self.ties[ranks]
        return ranked_expected_roc_aucs(self.ranked_p[ranks], ties)
