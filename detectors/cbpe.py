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

from detectors.calibration import IsotonicCalibrator, choose_calibrator

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
        p = self.calibrate(p_raw)
        tp = float(np.sum(p[positive]))
        fp = float(np.sum(1.0 - p[positive]))
        fn = float(np.sum(p[~positive]))
        tn = float(np.sum(1.0 - p[~positive]))
        metrics = {
            "accuracy": (tp + tn) / len(p),
            "precision": _ratio(tp, tp + fp),
            "recall": _ratio(tp, tp + fn),
            "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        }
        auc = expected_roc_auc(p)
        if auc is not None:
            metrics["roc_auc"] = auc
        return CBPEResult(len(p), metrics, self.calibrated)

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


def expected_roc_auc(p: FloatArray, score: FloatArray | None = None) -> float | None:
    """Area under the expected ROC curve: events ranked by ``score`` (default ``p``), each a
    positive with calibrated probability ``p``; tied scores form one step."""
    expected_positives = float(np.sum(p))
    expected_negatives = float(np.sum(1.0 - p))
    if expected_positives <= 0.0 or expected_negatives <= 0.0:
        return None
    rank_by = p if score is None else score
    order = np.argsort(-rank_by, kind="stable")
    sorted_score = rank_by[order]
    tp = np.cumsum(p[order])
    fp = np.cumsum(1.0 - p[order])
    last_of_tie = np.r_[sorted_score[1:] != sorted_score[:-1], True]
    tpr = np.r_[0.0, tp[last_of_tie] / expected_positives]
    fpr = np.r_[0.0, fp[last_of_tie] / expected_negatives]
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else 0.0
