"""Performance thresholds from the data: how low a metric falls by chance in a window of this size.

A window of ``window_size`` events drawn from the reference's distribution
gives a metric that varies from window to window. :class:`PerformanceThresholds`
estimates that spread by bootstrap (``resamples`` seeded resamples of
``window_size`` reference rows, with replacement) and puts the threshold at the
``alpha`` quantile on the metric's worse side: the lower bound for accuracy,
precision, recall, F1 and ROC AUC (binary, and multiclass macro, weighted and one-vs-rest), the
upper bound for MAE, MSE and RMSE. The
reference is itself a sample, so its value is off the truth by a spread
``window_size / n_rows`` times the window's variance; the distance from the
bootstrap mean to the quantile is widened by ``sqrt(1 + window_size / n_rows)``
to cover it. The quantile is itself estimated from ``resamples`` draws, and a
threshold that scatters around the true quantile crosses more often than
``alpha`` on average (the tail is convex); so, as for the drift thresholds
(:func:`detectors.drift_calibration.upper_quantile`), the order statistic is
taken one standard deviation of its count to the safe side. So on windows
without drift each metric crosses its threshold in about ``alpha`` of the
windows (one-sided; per metric, per window): a 1% false-alarm rate by default;
measured with a 5,000-row reference and windows of 1,000, 0.65-1.35% per
metric, each within one standard error (0.2-0.4%) of 1%
(bench/performance_false_alarms.py; 1.2-2.1% with 500 draws and the plain
interpolated quantile).
The statistic is any function of row indices, so the same thresholds serve
the realized metrics (labels) and CBPE's estimate (probabilities only).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> correct = rng.random(5000) < 0.944
>>> thresholds = PerformanceThresholds(alpha=0.01, resamples=1000, seed=0)
>>> fitted = thresholds.fit(lambda rows: {"accuracy": float(correct[rows].mean())}, 5000, 1000)
>>> fitted["accuracy"].bound, round(fitted["accuracy"].value, 3)
('lower', 0.921)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from detectors.drift_calibration import upper_quantile
from detectors.multiclass_cbpe import MULTICLASS_ESTIMATED_METRICS

Bound = Literal["lower", "upper"]
LOWER_IS_WORSE = ("precision", "recall", "f1", "roc_auc", *MULTICLASS_ESTIMATED_METRICS)
"""Binary and multiclass metrics: the alarm is below the threshold."""
HIGHER_IS_WORSE = ("mae", "mse", "rmse")
"""Regression errors: the alarm is above the threshold."""
Statistic = Callable[[npt.NDArray[np.intp]], Mapping[str, float | None]]


@dataclass(frozen=True)
class PerformanceThreshold:
    """Where one metric's alarm starts: below ``value`` (``lower``) or above it (``upper``)."""

    metric: str
    bound: Bound
    value: float
    alpha: float
    """The chance of crossing it in one window without drift (one-sided)."""
    window_size: int

    def crossed(self, value: float) -> bool:
        return value < self.value if self.bound == "lower" else value > self.value


class PerformanceThresholds:
    """Bootstrap thresholds of performance metrics at a window size.

    Parameters
    ----------
    alpha
        False-alarm rate per metric and window, in (0, 0.5).
    resamples
        Bootstrap resamples (at least ``2 / alpha`` so the quantile rests on data;
        the default 2,000 puts 20 draws beyond the 1% quantile).
    seed
        Seed of the resampling: the same reference gives the same thresholds.
    """

    def __init__(self, alpha: float = 0.01, resamples: int = 2000, seed: int = 0) -> None:
        if not 0 < alpha < 0.5:
            raise ValueError(f"alpha must be in (0, 0.5), got {alpha!r}")
        if resamples < 2 / alpha:
            raise ValueError(f"resamples must be at least 2 / alpha = {2 / alpha:g}, got {resamples!r}")
        self.alpha = alpha
        self.resamples = resamples
        self.seed = seed

    def __repr__(self) -> str:
        return f"PerformanceThresholds(alpha={self.alpha}, resamples={self.resamples}, seed={self.seed})"

    def reset(self) -> None:
        """Stateless: every :meth:`fit` starts from ``seed``."""

    def fit(self, statistic: Statistic, n_rows: int, window_size: int) -> dict[str, PerformanceThreshold]:
        """Thresholds of the metrics ``statistic(rows)`` returns that have a worse side."""
        if n_rows < 1 or window_size < 1:
            raise ValueError(f"need rows and a window size >= 1, got {n_rows} and {window_size}")
        rng = np.random.default_rng(self.seed)
        samples: dict[str, list[float]] = {}
        for _ in range(self.resamples):
            rows = rng.integers(0, n_rows, window_size)
            for metric, value in statistic(rows).items():
                if value is not None and np.isfinite(value):
                    samples.setdefault(metric, []).append(float(value))
        thresholds = {}
        for metric, values in samples.items():
            bound: Bound | None = (
                "lower" if metric in LOWER_IS_WORSE else "upper" if metric in HIGHER_IS_WORSE else None
            )
            if bound is None or len(values) < self.resamples // 2:
                continue  # no worse side, or undefined in most windows (e.g. ROC AUC of one class)
            center = float(np.mean(values))
            quantile = self._worse_quantile(np.array(values), bound)
            value = center + (quantile - center) * math.sqrt(1.0 + window_size / n_rows)
            thresholds[metric] = PerformanceThreshold(metric, bound, value, self.alpha, window_size)
        return thresholds

    def _worse_quantile(self, values: npt.NDArray[np.float64], bound: Bound) -> float:
        """The ``alpha`` quantile on the worse side, one standard error of its count to the safe side."""
        if bound == "upper":
            return upper_quantile(values, self.alpha)
        return -upper_quantile(-values, self.alpha)
