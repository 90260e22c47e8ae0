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
the realized metrics (labels) and CBPE's estimate (probabilities only). It
scores many resamples at once (a :data:`detectors.base.BatchStatistic`: a matrix of row
indices, one resample a row, in; one value per resample and metric out, NaN
where the metric is undefined), in chunks of at most ``CHUNK_BYTES`` of
indices: a Python call per resample made the fit the slowest step of the
batch that completes a reference (0.3-0.8 s per source). :func:`per_resample`
turns a statistic of one resample into a batch one (the loop the batch
statistics are tested against). The resamples are drawn as one
``rng.integers(0, n_rows, window_size)`` each would draw them, in order.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> correct = rng.random(5000) < 0.944
>>> thresholds = PerformanceThresholds(alpha=0.01, resamples=1000, seed=0)
>>> fitted = thresholds.fit(lambda rows: {"accuracy": correct[rows].mean(axis=1)}, 5000, 1000)
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

from detectors.base import BatchStatistic
from detectors.drift_calibration import upper_quantile
from detectors.multiclass_cbpe import MULTICLASS_ESTIMATED_METRICS

Bound = Literal["lower", "upper"]
LOWER_IS_WORSE = ("precision", "recall", "f1", "roc_auc", *MULTICLASS_ESTIMATED_METRICS)
"""Binary and multiclass metrics: the alarm is below the threshold."""
HIGHER_IS_WORSE = ("mae", "mse", "rmse")
"""Regression errors: the alarm is above the threshold."""
FloatArray = npt.NDArray[np.float64]
Statistic = Callable[[npt.NDArray[np.intp]], Mapping[str, float | None]]
"""The metrics of one resample (its row indices); ``None`` where undefined."""
CHUNK_BYTES = 2 * 2**20
"""Row indices (int64) scored per call of a batch statistic: 262 resamples of windows of 1,000.
Its temporaries are a handful of arrays of this size (gathered values, a sorted copy; multiclass
works one class at a time), under about 16 MB a chunk; measured, 2 MiB chunks fit a reference's
thresholds 25% faster than 8 MiB ones (they stay in cache) and 256 KiB ones no faster."""


def per_resample(statistic: Statistic) -> BatchStatistic:
    """A batch statistic that calls ``statistic`` on each resample (row) in turn."""

    def batch(rows: npt.NDArray[np.intp]) -> dict[str, FloatArray]:
        out: dict[str, FloatArray] = {}
        for index, sample in enumerate(rows):
            for metric, value in statistic(sample).items():
                column = out.setdefault(metric, np.full(len(rows), np.nan))
                column[index] = np.nan if value is None else value
        return out

    return batch


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

    def fit(
        self, statistic: BatchStatistic, n_rows: int, window_size: int
    ) -> dict[str, PerformanceThreshold]:
        """Thresholds of the metrics ``statistic(rows)`` returns that have a worse side."""
        if n_rows < 1 or window_size < 1:
            raise ValueError(f"need rows and a window size >= 1, got {n_rows} and {window_size}")
        samples = self._samples(statistic, n_rows, window_size)
        thresholds = {}
        for metric, values in samples.items():
            bound: Bound | None = (
                "lower" if metric in LOWER_IS_WORSE else "upper" if metric in HIGHER_IS_WORSE else None
            )
            if bound is None or len(values) < self.resamples // 2:
                continue  # no worse side, or undefined in most windows (e.g. ROC AUC of one class)
            center = float(np.mean(values))
            quantile = self._worse_quantile(values, bound)
            value = center + (quantile - center) * math.sqrt(1.0 + window_size / n_rows)
            thresholds[metric] = PerformanceThreshold(metric, bound, value, self.alpha, window_size)
        return thresholds

    def _samples(self, statistic: BatchStatistic, n_rows: int, window_size: int) -> dict[str, FloatArray]:
        """Each metric's finite values over the resamples, in resample order (none: left out)."""
        rng = np.random.default_rng(self.seed)
        chunk = max(1, CHUNK_BYTES // (8 * window_size))
        parts: dict[str, list[FloatArray]] = {}
        for start in range(0, self.resamples, chunk):
            size = min(chunk, self.resamples - start)
            rows = rng.integers(0, n_rows, (size, window_size))  # the stream of `size` draws of one row
            for metric, values in statistic(rows).items():
                values = np.asarray(values, dtype=np.float64)
                if values.shape != (size,):
                    raise ValueError(f"statistic gave {metric} of shape {values.shape} for {size} resamples")
                parts.setdefault(metric, []).append(values[np.isfinite(values)])
        samples = {metric: np.concatenate(values) for metric, values in parts.items()}
        return {metric: values for metric, values in samples.items() if len(values)}

    def _worse_quantile(self, values: npt.NDArray[np.float64], bound: Bound) -> float:
        """The ``alpha`` quantile on the worse side, one standard error of its count to the safe side."""
        if bound == "upper":
            return upper_quantile(values, self.alpha)
        return -upper_quantile(-values, self.alpha)
