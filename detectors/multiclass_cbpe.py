"""Confidence-based performance estimation (CBPE) for multiclass classifiers, without labels.

NannyML's one-vs-rest construction: each class ``k`` is a binary problem
"class k or not". With calibrated probabilities, an event the model assigns to
``k`` is a true positive of ``k`` with probability ``p_k`` and a false positive
with ``1 - p_k``; an event assigned elsewhere is a false negative of ``k`` with
probability ``p_k``. Summing over a window gives one expected confusion matrix
per class, and from them the expected per-class precision, recall and F1,
averaged as scikit-learn does: ``macro`` (plain mean over the classes) and
``weighted`` (by each class's expected support, the sum of its probabilities).
The expected accuracy is the mean calibrated probability of the predicted
class. ``roc_auc_ovr`` is the mean over classes of the expected ROC AUC of the
model's raw score for the class, each event counting ``p_k`` as a positive and
``1 - p_k`` as a negative.

Calibration is per class, on the labelled reference, only where it helps
(:func:`detectors.calibration.choose_calibrator`), and the calibrated rows are
renormalized to sum to one (uniform when every class maps to zero), as NannyML
does.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> p = rng.dirichlet([1.0, 1.0, 1.0], size=6000)
>>> y = np.array([rng.choice(3, p=row) for row in p]).astype(str)
>>> cbpe = MulticlassCBPE()
>>> cbpe.fit(p[:3000], ("0", "1", "2"), y[:3000])
>>> estimate = cbpe.estimate(p[3000:])
>>> realized = float(np.mean(p[3000:].argmax(axis=1).astype(str) == y[3000:]))
>>> abs(estimate.metrics["accuracy"] - realized) < 0.03
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from detectors.base import BatchStatistic
from detectors.calibration import IsotonicCalibrator, choose_calibrator
from detectors.cbpe import CALIBRATIONS, Calibration, ScoreRanking
from detectors.performance import averaged_score_rows

FloatArray = npt.NDArray[np.float64]
MULTICLASS_ESTIMATED_METRICS = (
    "accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "precision_weighted",
    "recall_weighted",
    "f1_weighted",
    "roc_auc_ovr",
)


@dataclass(frozen=True)
class MulticlassCBPEResult:
    """Estimated performance of one window: ``driftline_performance{source="estimated"}``."""

    n: int
    metrics: Mapping[str, float]
    """The names of ``MULTICLASS_ESTIMATED_METRICS`` (roc_auc_ovr absent if a class is undefined)."""
    calibrated_classes: tuple[str, ...]


class MulticlassCBPE:
    """Expected multiclass metrics from a matrix of predicted class probabilities.

    Parameters
    ----------
    calibration
        ``auto`` calibrates a class on the labelled reference only when that
        lowers its calibration error on a held-out half; ``isotonic`` always
        calibrates every class when reference labels are given; ``none``
        trusts the raw probabilities.
    """

    def __init__(self, calibration: Calibration = "auto") -> None:
        if calibration not in CALIBRATIONS:
            raise ValueError(f"calibration must be one of {CALIBRATIONS}, got {calibration!r}")
        self.calibration = calibration
        self.reset()

    def __repr__(self) -> str:
        return f"MulticlassCBPE(calibration={self.calibration!r})"

    def reset(self) -> None:
        self.classes: tuple[str, ...] = ()
        self._calibrators: dict[int, IsotonicCalibrator] = {}

    @property
    def calibrated_classes(self) -> tuple[str, ...]:
        """The classes whose probabilities the reference led to calibrate."""
        return tuple(self.classes[i] for i in sorted(self._calibrators))

    def fit(
        self,
        reference_probabilities: npt.ArrayLike,
        classes: Sequence[str],
        reference_actual: Sequence[str] | npt.NDArray[np.object_] | None = None,
    ) -> None:
        """Learn per-class calibration from the reference (columns in the order of ``classes``)."""
        self.reset()
        if len(classes) < 2 or len(set(classes)) != len(classes):
            raise ValueError(f"need at least two distinct classes, got {list(classes)!r}")
        self.classes = tuple(classes)
        matrix = self._matrix(reference_probabilities)
        if reference_actual is None or self.calibration == "none":
            return
        actual = np.asarray([str(v) for v in reference_actual], dtype=object)
        if len(actual) != len(matrix):
            raise ValueError(f"{len(actual)} reference labels for {len(matrix)} rows")
        for index, cls in enumerate(self.classes):
            y = (actual == cls).astype(np.float64)
            calibrator: IsotonicCalibrator | None
            if self.calibration == "isotonic":
                calibrator = IsotonicCalibrator().fit(matrix[:, index], y)
            else:
                calibrator = choose_calibrator(matrix[:, index], y)
            if calibrator is not None:
                self._calibrators[index] = calibrator

    def calibrate(self, probabilities: npt.ArrayLike) -> FloatArray:
        """Per-class calibrated probabilities, rows renormalized to one (uniform if all zero)."""
        matrix = self._matrix(probabilities).copy()
        if not self._calibrators:
            return matrix
        for index, calibrator in self._calibrators.items():
            matrix[:, index] = calibrator.transform(matrix[:, index])
        total = matrix.sum(axis=1, keepdims=True)
        uniform = np.full_like(matrix, 1.0 / matrix.shape[1])
        return np.divide(matrix, total, out=uniform, where=total != 0)

    def expected_errors(
        self, probabilities: npt.ArrayLike, predicted: Sequence[str] | None = None
    ) -> FloatArray:
        """Per-event probability that the model's predicted class is wrong."""
        raw = self._matrix(probabilities)
        return 1.0 - np.sum(self.calibrate(raw) * self._one_hot(raw, predicted), axis=1)

    def estimate(
        self, probabilities: npt.ArrayLike, predicted: Sequence[str] | None = None
    ) -> MulticlassCBPEResult:
        """Expected metrics of one window; ``predicted`` defaults to each row's top class."""
        raw = self._matrix(probabilities)
        if len(raw) == 0:
            raise ValueError("probabilities must have at least one row")
        scores = self.on_resamples(raw, predicted)(np.arange(len(raw))[None])
        metrics = {name: float(values[0]) for name, values in scores.items() if not np.isnan(values[0])}
        return MulticlassCBPEResult(len(raw), metrics, self.calibrated_classes)

    def on_resamples(
        self, probabilities: npt.ArrayLike, predicted: Sequence[str] | None = None
    ) -> BatchStatistic:
        """The estimate of many resamples of these rows at once (NaN: roc_auc_ovr undefined), each
        as :meth:`estimate` gives it for the resample's rows.

        Calibration and each class's ranking of the rows by raw score are done once; a resample
        then sorts integer ranks. The classes are scored one at a time, so memory stays that of
        a few (resamples x window) arrays.
        """
        raw = self._matrix(probabilities)
        p = self.calibrate(raw)
        assigned = self._one_hot(raw, predicted)
        rankings = [ScoreRanking.of(raw[:, k], p[:, k]) for k in range(len(self.classes))]

        def scores(rows: npt.NDArray[np.intp]) -> dict[str, FloatArray]:
            tp, fp, fn, aucs = (np.empty((len(rows), len(rankings))) for _ in range(4))
            for k, ranking in enumerate(rankings):
                pk, hit = p[:, k][rows], assigned[:, k][rows]
                tp[:, k] = np.sum(pk * hit, axis=1)
                fp[:, k] = np.sum(hit, axis=1) - tp[:, k]  # the 1 - p of the events assigned k
                fn[:, k] = np.sum(pk, axis=1) - tp[:, k]
                aucs[:, k] = ranking.aucs(rows)
            metrics = {"accuracy": np.sum(tp, axis=1) / rows.shape[1]}
            metrics.update(averaged_score_rows(tp, fp, fn))
            metrics["roc_auc_ovr"] = np.mean(aucs, axis=1)  # NaN when a class's is undefined
            return metrics

        return scores

    def _matrix(self, probabilities: npt.ArrayLike) -> FloatArray:
        if not self.classes:
            raise RuntimeError("MulticlassCBPE used before fit")
        matrix = np.asarray(probabilities, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != len(self.classes):
            raise ValueError(
                f"probabilities must be (events, {len(self.classes)}) for classes "
                f"{list(self.classes)!r}, got {matrix.shape}"
            )
        return matrix

    def _one_hot(self, raw: FloatArray, predicted: Sequence[str] | None) -> npt.NDArray[np.bool_]:
        """Which class each event was assigned to; a class outside ``classes`` is none of them."""
        if predicted is None:
            return np.arange(len(self.classes)) == raw.argmax(axis=1)[:, None]
        if len(predicted) != len(raw):
            raise ValueError(f"{len(predicted)} predictions for {len(raw)} rows")
        names = np.asarray([str(v) for v in predicted], dtype=object)
        return names[:, None] == np.asarray(self.classes, dtype=object)[None, :]
