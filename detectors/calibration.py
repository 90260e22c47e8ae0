"""Probability calibration for performance estimation: isotonic regression, used only when it helps.

:class:`IsotonicCalibrator` is the pool-adjacent-violators fit scikit-learn's
``IsotonicRegression(out_of_bounds="clip")`` computes (tied scores averaged,
linear interpolation between the fitted points, clipped outside them), in
numpy so scikit-learn stays a test-only dependency.

:func:`choose_calibrator` decides whether calibrating helps: it fits on one half
of the labelled reference and compares the expected calibration error of the
raw and the calibrated scores on the other half. Calibration is kept (and refit
on the whole reference) only if it clearly lowers that error; a model that is already
well calibrated keeps its own probabilities.

>>> import numpy as np
>>> calibrator = IsotonicCalibrator().fit(np.array([0.1, 0.4, 0.6, 0.9]), np.array([0, 1, 0, 1]))
>>> calibrator.transform(np.array([0.1, 0.5, 0.95])).round(3).tolist()
[0.0, 0.5, 1.0]
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


class IsotonicCalibrator:
    """A non-decreasing map from a model's score to the observed positive rate."""

    def __init__(self) -> None:
        self.reset()

    def __repr__(self) -> str:
        return "IsotonicCalibrator()"

    def reset(self) -> None:
        self._x: FloatArray | None = None
        self._y: FloatArray | None = None

    def fit(self, scores: npt.ArrayLike, actual: npt.ArrayLike) -> IsotonicCalibrator:
        """Fit on reference scores and 0/1 outcomes (at least one of each length)."""
        x = np.asarray(scores, dtype=np.float64)
        y = np.asarray(actual, dtype=np.float64)
        if x.shape != y.shape or x.ndim != 1 or len(x) == 0:
            raise ValueError(
                f"scores and actual must be equal-length 1-d arrays, got {x.shape} and {y.shape}"
            )
        unique_x, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
        mean_y = np.bincount(inverse, weights=y) / counts
        self._x = unique_x
        self._y = _pool_adjacent_violators(mean_y, counts.astype(np.float64))
        return self

    def transform(self, scores: npt.ArrayLike) -> FloatArray:
        """Calibrated probabilities (scores outside the fitted range get the end values)."""
        if self._x is None or self._y is None:
            raise RuntimeError("IsotonicCalibrator.transform called before fit")
        return np.interp(np.asarray(scores, dtype=np.float64), self._x, self._y)


def _pool_adjacent_violators(y: FloatArray, weights: FloatArray) -> FloatArray:
    """The weighted least-squares non-decreasing fit of ``y`` (already in score order)."""
    means: list[float] = []
    totals: list[float] = []
    sizes: list[int] = []
    for value, weight in zip(y.tolist(), weights.tolist(), strict=True):
        means.append(value)
        totals.append(weight)
        sizes.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            weight_sum = totals[-2] + totals[-1]
            means[-2] = (means[-2] * totals[-2] + means[-1] * totals[-1]) / weight_sum
            totals[-2] = weight_sum
            sizes[-2] += sizes[-1]
            del means[-1], totals[-1], sizes[-1]
    return np.repeat(np.array(means), sizes)


def expected_calibration_error(
    probabilities: npt.ArrayLike, actual: npt.ArrayLike, bins: int = 10
) -> float:
    """Traffic-weighted mean gap between predicted and observed positive rate, equal-width bins."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(actual, dtype=np.float64)
    index = np.minimum((p * bins).astype(int), bins - 1)
    counts = np.bincount(index, minlength=bins)
    gaps = np.abs(np.bincount(index, weights=y - p, minlength=bins))
    return float(np.sum(gaps) / max(int(np.sum(counts)), 1))


def choose_calibrator(
    scores: npt.ArrayLike, actual: npt.ArrayLike, bins: int = 10
) -> IsotonicCalibrator | None:
    """An isotonic calibrator fitted on all of the reference, or ``None`` if it does not help.

    Even positions fit, odd positions judge, so the split is deterministic and
    spreads over the whole reference period. Calibration must lower the error
    by more than ``1 / sqrt(n)`` of the judging half, about the sampling noise
    of the error itself, so that noise alone never replaces a model's own
    (already calibrated) probabilities with a step function.
    """
    x = np.asarray(scores, dtype=np.float64)
    y = np.asarray(actual, dtype=np.float64)
    if len(x) < 2 * bins or len(np.unique(y)) < 2:
        return None
    fit_part, judge_part = slice(0, None, 2), slice(1, None, 2)
    trial = IsotonicCalibrator().fit(x[fit_part], y[fit_part])
    raw_error = expected_calibration_error(x[judge_part], y[judge_part], bins)
    calibrated = trial.transform(x[judge_part])
    calibrated_error = expected_calibration_error(calibrated, y[judge_part], bins)
    if calibrated_error >= raw_error - 1.0 / np.sqrt(len(calibrated)):
        return None
    return IsotonicCalibrator().fit(x, y)
