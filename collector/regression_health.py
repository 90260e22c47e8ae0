"""Estimated errors of a regressor per prediction window: direct loss estimation (DLE).

For a model configured with ``task: regression`` whose registered reference
file carries labels (a ``label`` column) and predictions, a
:class:`~detectors.dle.DirectLossEstimator` is fitted on the reference; each
evaluated window then exports its estimated ``mae``, ``mse`` and ``rmse`` as
``driftline_performance{source="estimated"}``. Events whose prediction is not
a finite number are left out of the estimate. Any other model costs nothing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from driftline.schema import Prediction

from collector.references import Reference
from detectors.base import FeatureTable
from detectors.dle import DirectLossEstimator, DLEResult
from exporters.store import MetricStore

log = logging.getLogger(__name__)


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
    """Fits DLE on a labelled reference and exports each window's estimated errors."""

    def __init__(self, store: MetricStore, labels: dict[str, str]) -> None:
        self.store = store
        self.labels = labels
        self.dle: DirectLossEstimator | None = None

    def fit(self, reference: Reference) -> None:
        """Fit on the reference's labels and predictions; without them DLE stays off."""
        self.dle = None
        predictions = reference.outputs.columns.get("prediction")
        if reference.labels is None or predictions is None:
            return
        dle = DirectLossEstimator()
        try:
            dle.fit(
                reference.features,
                _numbers(list(predictions)),
                _numbers(list(reference.labels)),
            )
        except Exception as error:  # an unusable reference turns DLE off, never the model version
            log.warning("direct loss estimation disabled for %s: %s", self.labels, error)
            return
        self.dle = dle

    def evaluate(self, features: FeatureTable, predictions: Sequence[Prediction]) -> DLEResult | None:
        """Estimate and export the window's errors (``None`` when DLE is off or nothing is numeric)."""
        if self.dle is None:
            return None
        y_hat = _numbers([p.prediction for p in predictions])
        rows = np.flatnonzero(np.isfinite(y_hat))
        if len(rows) == 0:
            return None
        window = FeatureTable(
            features.kinds, {name: column[rows] for name, column in features.columns.items()}, len(rows)
        )
        result = self.dle.estimate(window, y_hat[rows])
        for metric, value in result.metrics.items():
            self.store.set(
                "driftline_performance", {**self.labels, "metric": metric, "source": "estimated"}, value
            )
        return result


def _numbers(values: Sequence[object]) -> npt.NDArray[np.float64]:
    return np.array([as_number(v) for v in values], dtype=np.float64)
