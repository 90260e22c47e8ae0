"""Direct loss estimation (DLE): a regressor's expected errors per window, before labels come.

NannyML's construction: on the labelled reference, two gradient-boosted tree
models learn each event's absolute error and squared error from its features
and the model's prediction (scikit-learn's ``HistGradientBoostingRegressor``,
on one OpenMP thread, where NannyML uses LightGBM). On a window without
labels, the mean of the predicted absolute errors is the estimated MAE, the
mean of the predicted squared errors the estimated MSE and its square root the
estimated RMSE. Like CBPE this follows covariate shift (traffic moving to
inputs where the model is less accurate) as long as the error given the inputs
stays the one the reference showed; a gap between estimated and realized
errors is concept drift. The per-event expected absolute errors are what the
regression concept-drift test can compare the realized errors with.

Features are encoded as for the multivariate tests (:mod:`detectors.feature_encoding`).

>>> import numpy as np
>>> from detectors.base import FeatureTable
>>> def table(x):
...     return FeatureTable({"x": "numerical"}, {"x": x}, len(x))
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=4000)
>>> y = x + rng.normal(size=4000) * (0.2 + np.abs(x))  # errors grow with |x|
>>> dle = DirectLossEstimator()
>>> dle.fit(table(x), x, y)
>>> wide = rng.normal(scale=2.0, size=2000)
>>> realized = float(np.mean(np.abs(wide + rng.normal(size=2000) * (0.2 + np.abs(wide)) - wide)))
>>> abs(dle.estimate(table(wide), wide).metrics["mae"] / realized - 1) < 0.15
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.ensemble import HistGradientBoostingRegressor

from detectors.base import FeatureTable
from detectors.feature_encoding import FeatureEncoder
from detectors.threads import one_openmp_thread

FloatArray = npt.NDArray[np.float64]
DLE_METRICS = ("mae", "mse", "rmse")


@dataclass(frozen=True)
class DLEResult:
    """Estimated regression errors of one window: ``driftline_performance{source="estimated"}``."""

    n: int
    metrics: Mapping[str, float]
    """mae, mse and rmse."""


def expected_metrics(absolute: FloatArray, squared: FloatArray) -> dict[str, float]:
    """Estimated MAE, MSE and RMSE from per-event expected absolute and squared errors."""
    scores = expected_error_scores(absolute[None], squared[None])
    return {name: float(values[0]) for name, values in scores.items()}


def expected_error_scores(absolute: FloatArray, squared: FloatArray) -> dict[str, FloatArray]:
    """:func:`expected_metrics` of each row (one window or resample a row)."""
    mse = np.mean(squared, axis=1)
    return {"mae": np.mean(absolute, axis=1), "mse": mse, "rmse": np.sqrt(mse)}


class DirectLossEstimator:
    """Expected absolute and squared errors of a regressor from its inputs and predictions.

    Parameters
    ----------
    max_iter
        Boosting iterations of each loss model.
    learning_rate
        Shrinkage of each iteration.
    max_leaf_nodes
        Leaves per tree.
    seed
        Seeds the loss models.
    """

    def __init__(
        self, max_iter: int = 100, learning_rate: float = 0.1, max_leaf_nodes: int = 31, seed: int = 0
    ) -> None:
        if max_iter < 1:
            raise ValueError(f"max_iter must be >= 1, got {max_iter!r}")
        if not 0.0 < learning_rate <= 1.0:
            raise ValueError(f"learning_rate must be in (0, 1], got {learning_rate!r}")
        if max_leaf_nodes < 2:
            raise ValueError(f"max_leaf_nodes must be >= 2, got {max_leaf_nodes!r}")
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.seed = seed
        self.reset()

    def __repr__(self) -> str:
        return (
            f"DirectLossEstimator(max_iter={self.max_iter}, learning_rate={self.learning_rate}, "
            f"max_leaf_nodes={self.max_leaf_nodes}, seed={self.seed})"
        )

    def reset(self) -> None:
        self._encoder = FeatureEncoder()
        self._absolute: HistGradientBoostingRegressor | None = None
        self._squared: HistGradientBoostingRegressor | None = None

    def fit(self, reference: FeatureTable, predictions: npt.ArrayLike, actual: npt.ArrayLike) -> None:
        """Learn the absolute and squared errors of the reference's predictions."""
        self.reset()
        y_hat = np.asarray(predictions, dtype=np.float64)
        y = np.asarray(actual, dtype=np.float64)
        if y_hat.shape != (reference.n_rows,) or y.shape != (reference.n_rows,):
            raise ValueError(
                f"need one prediction and one label per reference row ({reference.n_rows}), "
                f"got {y_hat.shape} and {y.shape}"
            )
        known = np.isfinite(y_hat) & np.isfinite(y)
        if int(np.sum(known)) < 20:
            raise ValueError(f"need at least 20 labelled reference rows, got {int(np.sum(known))}")
        x = self._inputs(self._encoder.fit(reference).transform(reference), y_hat)[known]
        error = y[known] - y_hat[known]
        with one_openmp_thread():
            self._absolute = self._model().fit(x, np.abs(error))
            self._squared = self._model().fit(x, error**2)

    def expected_errors(
        self, window: FeatureTable, predictions: npt.ArrayLike
    ) -> tuple[FloatArray, FloatArray]:
        """Per-event expected absolute and squared errors (never below 0)."""
        if self._absolute is None or self._squared is None:
            raise RuntimeError("DirectLossEstimator used before fit")
        y_hat = np.asarray(predictions, dtype=np.float64)
        if y_hat.shape != (window.n_rows,):
            raise ValueError(f"need one prediction per window row ({window.n_rows}), got {y_hat.shape}")
        x = self._inputs(self._encoder.transform(window), y_hat)
        with one_openmp_thread():
            absolute = np.clip(self._absolute.predict(x), 0.0, None)
            squared = np.clip(self._squared.predict(x), 0.0, None)
        return absolute, squared

    def estimate(self, window: FeatureTable, predictions: npt.ArrayLike) -> DLEResult:
        """Estimated MAE, MSE and RMSE of one window."""
        if window.n_rows == 0:
            raise ValueError("cannot estimate an empty window")
        return DLEResult(window.n_rows, expected_metrics(*self.expected_errors(window, predictions)))

    def _model(self) -> HistGradientBoostingRegressor:
        return HistGradientBoostingRegressor(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            early_stopping=False,
            random_state=self.seed,
        )

    @staticmethod
    def _inputs(encoded: FloatArray, predictions: FloatArray) -> FloatArray:
        return np.column_stack([encoded, np.where(np.isfinite(predictions), predictions, 0.0)])
