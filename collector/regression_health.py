"""Estimated errors of a regressor per prediction window: direct loss estimation (DLE).

For a model configured with ``task: regression``, a
:class:`~detectors.dle.DirectLossEstimator` is fitted on the reference's
predictions and labels: those of a registered reference file (a ``label``
column), or, for an automatic reference, the labels joined later to its
predictions (by ``Reference.event_ids``) once ``reference_labels`` of them have
arrived. :class:`~collector.model_health.ModelHealth` then asks it for each
window's per-event expected absolute and squared errors: their means are the
estimated ``mae``, ``mse`` and ``rmse``, and the expected absolute errors wait
for the labels to feed regression concept drift. Events whose prediction is
not a finite number get no expected error. Any other model costs nothing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from collector.references import Reference
from detectors.base import BatchStatistic, FeatureTable
from detectors.dle import DirectLossEstimator, DLEResult, expected_error_scores, expected_metrics

log = logging.getLogger(__name__)
FloatArray = npt.NDArray[np.float64]


def as_number(value: object) -> float:
    """A label or prediction as a float; NaN when it is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return math.nan
    try:
        number = float(value)
    except ValueError:
        return math.nan
    return number if math.isfinite(number) else math.nan


class RegressionEstimator:
    """DLE of one model version: fitted on a labelled reference, expected errors per event."""

    def __init__(self, labels: Mapping[str, str]) -> None:
        self.labels = dict(labels)
        self.dle: DirectLossEstimator | None = None
        self._reference_errors: tuple[FloatArray, FloatArray] | None = None

    def fit(self, reference: Reference, actual: Sequence[object]) -> bool:
        """Fit on the reference rows whose label (one per row, None where unknown) is a number.

        False, with DLE off, when the reference has no predictions or too few labelled rows.
        """
        self.dle = None
        self._reference_errors = None
        predictions = reference.outputs.columns.get("prediction")
        if predictions is None:
            return False
        y_hat = _numbers(list(predictions))
        dle = DirectLossEstimator()
        try:
            dle.fit(reference.features, y_hat, _numbers(actual))
        except Exception as error:  # an unusable reference turns DLE off, never the model version
            log.warning("direct loss estimation disabled for %s: %s", self.labels, error)
            return False
        self.dle = dle
        absolute, squared = self.expected_errors(reference.features, y_hat)
        finite = np.isfinite(absolute)
        self._reference_errors = (absolute[finite], squared[finite])
        return True

    @staticmethod
    def joined_labels(reference: Reference, labels: Mapping[str, object]) -> list[object]:
        """One label per row of an automatic reference from labels by event id (None where none)."""
        return [labels.get(event_id) for event_id in reference.event_ids or ()]

    def expected_errors(
        self, features: FeatureTable, predictions: Sequence[object] | FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """Per-event expected absolute and squared errors; NaN where the prediction is no number."""
        assert self.dle is not None, "expected_errors before a successful fit"
        y_hat = predictions if isinstance(predictions, np.ndarray) else _numbers(predictions)
        absolute = np.full(len(y_hat), np.nan)
        squared = np.full(len(y_hat), np.nan)
        finite = np.isfinite(y_hat)
        if finite.all():  # the usual window: no copy of its columns
            return self.dle.expected_errors(features, y_hat)
        rows = np.flatnonzero(finite)
        if len(rows) == 0:
            return absolute, squared
        window = FeatureTable(
            features.kinds, {name: column[rows] for name, column in features.columns.items()}, len(rows)
        )
        absolute[rows], squared[rows] = self.dle.expected_errors(window, y_hat[rows])
        return absolute, squared

    @staticmethod
    def estimate(absolute: FloatArray, squared: FloatArray) -> DLEResult | None:
        """Estimated MAE, MSE and RMSE of the events with expected errors (None if there are none)."""
        finite = np.isfinite(absolute)
        if not finite.any():
            return None
        return DLEResult(int(finite.sum()), expected_metrics(absolute[finite], squared[finite]))

    def reference_statistic(self) -> tuple[BatchStatistic, int] | None:
        """The estimate over resamples of reference rows and the row count: what estimated
        thresholds resample."""
        if self._reference_errors is None or len(self._reference_errors[0]) == 0:
            return None
        absolute, squared = self._reference_errors
        return lambda rows: expected_error_scores(absolute[rows], squared[rows]), len(absolute)


def _numbers(values: Sequence[object]) -> FloatArray:
    return np.array([as_number(v) for v in values], dtype=np.float64)
