"""Multivariate drift by PCA reconstruction error: changes no single column shows.

The reference is encoded (:mod:`detectors.feature_encoding`) and split in two
interleaved halves. PCA is fitted on the first half, keeping the fewest
components that explain ``variance_share`` of its variance (always at least
one fewer than the columns, so something is left to reconstruct). A row's
reconstruction error is the Euclidean distance between its encoded values and
their projection back from the components; a window's score is its mean
error. A correlation that flips sign puts the rows off the plane the
components span, so the error grows while every marginal stays the same.

The threshold comes from the held-out half, never the rows PCA was fitted on
(their errors are biased low): pseudo-windows of the window's size are drawn
from the held-out errors with replacement, shifted by the held-out mean's own
sampling error (normal, with the held-out standard error), and the window is
flagged when its score is outside the ``alpha/2`` and ``1 - alpha/2``
quantiles of those pseudo-windows (taken to the safe side, as for the
univariate tests). Thresholds are cached per window-size bucket.

>>> import numpy as np
>>> from detectors.base import FeatureTable
>>> def table(rho, n, rng):
...     x = rng.multivariate_normal([0, 0, 0], [[1, rho, 0], [rho, 1, 0], [0, 0, 1]], size=n)
...     return FeatureTable({f"x{i}": "numerical" for i in range(3)},
...                         {f"x{i}": x[:, i] for i in range(3)}, n)
>>> rng = np.random.default_rng(0)
>>> detector = PCAReconstructionDrift(alpha=0.01)
>>> detector.fit(table(0.8, 4000, rng))
>>> detector.evaluate(table(0.8, 1000, rng)).detected, detector.evaluate(table(-0.8, 1000, rng)).detected
(False, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from detectors.base import FeatureTable
from detectors.drift_calibration import size_bucket, upper_quantile
from detectors.feature_encoding import FeatureEncoder

FloatArray = npt.NDArray[np.float64]
PCA_RECONSTRUCTION = "pca_reconstruction"
DOMAIN_CLASSIFIER = "domain_classifier"
MULTIVARIATE_METHODS = (PCA_RECONSTRUCTION, DOMAIN_CLASSIFIER)
"""Values of ``method`` in ``driftline_multivariate_drift_*``."""


@dataclass(frozen=True)
class MultivariateDriftResult:
    """One multivariate test of one window: ``driftline_multivariate_drift_*{method}``."""

    method: str
    score: float
    """Mean reconstruction error, or the domain classifier's cross-validated ROC AUC."""
    lower_threshold: float | None
    """Flagged below this (PCA only: the structure tightened); ``None`` when one-sided."""
    upper_threshold: float
    detected: bool
    n: int


class PCAReconstructionDrift:
    """Mean PCA reconstruction error of a window against its null from the held-out reference.

    Parameters
    ----------
    alpha
        False-alarm probability per window (two-sided).
    variance_share
        Share of the reference's variance the kept components explain.
    seed
        Seeds the pseudo-windows of the null distribution.
    """

    def __init__(self, alpha: float = 0.01, variance_share: float = 0.65, seed: int = 0) -> None:
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
        if not 0.0 < variance_share < 1.0:
            raise ValueError(f"variance_share must be in (0, 1), got {variance_share!r}")
        self.alpha = alpha
        self.variance_share = variance_share
        self.seed = seed
        self.reset()

    def __repr__(self) -> str:
        return (
            f"PCAReconstructionDrift(alpha={self.alpha}, variance_share={self.variance_share}, "
            f"seed={self.seed})"
        )

    def reset(self) -> None:
        self._encoder = FeatureEncoder()
        self._centre: FloatArray | None = None
        self._components: FloatArray | None = None
        self._discarded: FloatArray | None = None
        """The other eigenvectors: the residual's norm is a row's norm along them."""
        self._held_out: FloatArray = np.zeros(0)
        self._thresholds: dict[int, tuple[float, float]] = {}

    @property
    def n_components(self) -> int:
        return 0 if self._components is None else int(self._components.shape[1])

    def fit(self, reference: FeatureTable) -> None:
        """Fit PCA on half of the reference and keep the other half's errors for the null."""
        self.reset()
        matrix = self._encoder.fit(reference).transform(reference)
        if matrix.shape[1] < 2 or len(matrix) < 20:
            raise ValueError(
                f"PCA drift needs at least 2 encoded columns and 20 rows, got {matrix.shape}"
            )
        fit_part, held_out = matrix[0::2], matrix[1::2]
        self._centre = fit_part.mean(axis=0)
        centred = fit_part - self._centre
        # The eigenvectors of the small (columns x columns) scatter matrix are PCA's components;
        # an SVD of the tall data matrix gives the same but took a second on a loaded host.
        variances, vectors = np.linalg.eigh(centred.T @ centred)
        order = np.argsort(variances)[::-1]
        variances = np.clip(variances[order], 0.0, None)
        explained = np.cumsum(variances) / max(float(np.sum(variances)), 1e-300)
        keep = min(int(np.searchsorted(explained, self.variance_share) + 1), matrix.shape[1] - 1)
        self._components = vectors[:, order[:keep]]
        self._discarded = vectors[:, order[keep:]]
        self._held_out = self.errors(held_out)

    def errors(self, matrix: FloatArray) -> FloatArray:
        """Per-row reconstruction errors of an encoded matrix.

        The eigenvectors are orthonormal, so a row's residual (the row less its
        projection on the kept components) is its projection on the discarded
        ones, and its length is that of the row's coordinates along them: one
        product with the discarded vectors instead of two with the kept ones,
        the cheaper whenever more than a third of the columns are kept (500
        uncorrelated features keep two thirds).
        """
        if self._centre is None or self._components is None or self._discarded is None:
            raise RuntimeError("PCAReconstructionDrift used before fit")
        centred = matrix - self._centre
        kept, discarded = self._components, self._discarded
        if discarded.shape[1] < 2 * kept.shape[1]:
            return np.sqrt(np.sum((centred @ discarded) ** 2, axis=1))
        residual = centred - (centred @ kept) @ kept.T
        return np.sqrt(np.sum(residual**2, axis=1))

    def evaluate(self, window: FeatureTable) -> MultivariateDriftResult:
        """Score one window against the thresholds for its size."""
        if window.n_rows == 0:
            raise ValueError("cannot evaluate an empty window")
        score = float(np.mean(self.errors(self._encoder.transform(window))))
        lower, upper = self.thresholds(window.n_rows)
        detected = not lower <= score <= upper
        return MultivariateDriftResult(PCA_RECONSTRUCTION, score, lower, upper, detected, window.n_rows)

    def thresholds(self, size: int) -> tuple[float, float]:
        """The no-drift range of a window's mean error at ``size`` rows (cached per size bucket)."""
        bucket = size_bucket(size)
        if bucket not in self._thresholds:
            null = self._null_means(bucket, np.random.default_rng([self.seed, bucket]))
            level = self.alpha / 2.0
            self._thresholds[bucket] = (-upper_quantile(-null, level), upper_quantile(null, level))
        return self._thresholds[bucket]

    def _null_means(self, size: int, rng: np.random.Generator) -> FloatArray:
        """Mean errors of pseudo-windows of ``size`` drawn from the held-out half."""
        errors = self._held_out
        n_sims = int(min(100_000, max(4_000, math.ceil(100 / self.alpha))))
        per_chunk = max(1, 2_000_000 // size)
        means = [
            errors[rng.integers(len(errors), size=(min(per_chunk, n_sims - start), size))].mean(axis=1)
            for start in range(0, n_sims, per_chunk)
        ]
        reference_error = rng.normal(0.0, float(np.std(errors)) / math.sqrt(len(errors)), n_sims)
        return np.concatenate(means) + reference_error
