"""Multivariate drift by a domain classifier: can a model tell window rows from reference rows?

Rows of the reference and of the window (each subsampled to at most
``max_rows``, seeded) are encoded (:mod:`detectors.feature_encoding`) and
labelled 0 and 1; a gradient-boosted tree classifier (scikit-learn's
``HistGradientBoostingClassifier``, depth 3, so it sees interactions such as a
correlation that flips, which a linear classifier cannot) scores every row out
of fold in a stratified ``folds``-fold cross-validation. The score is the ROC
AUC of those out-of-fold scores: 0.5 when the two sets are alike.

Null distribution: a row's out-of-fold score comes from a model that never saw
it, so without drift the AUC is centred on 0.5; its spread is the
Mann-Whitney null's, ``sqrt((n0 + n1 + 1) / (12 n0 n1))``, times an inflation
the fold models add (measured at 1.35 on a seeded stream: each fold's model
shifts its rows' scores together). :meth:`DomainClassifierDrift.fit` measures
that inflation on the reference itself: ``null_runs`` times it tells two
disjoint random halves of the reference apart, and takes the root mean square
of ``AUC - 0.5`` over the Mann-Whitney spread, raised to its one-sided 95%
chi-square confidence bound (never below 1). A window is flagged when its AUC
exceeds ``0.5 + z(1 - alpha) * inflation * spread``.

Each evaluation fits ``folds`` models (on one OpenMP thread: four times faster
than letting them spin over cores the collector shares), so the detector runs
on the first window and then every ``every_windows`` windows (``evaluate``
returns ``None`` for the others).

>>> import numpy as np
>>> from detectors.base import FeatureTable
>>> def table(rho, n, rng):
...     x = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=n)
...     return FeatureTable({"a": "numerical", "b": "numerical"}, {"a": x[:, 0], "b": x[:, 1]}, n)
>>> rng = np.random.default_rng(0)
>>> detector = DomainClassifierDrift(alpha=0.01, max_rows=500)
>>> detector.fit(table(0.8, 2000, rng))
>>> detector.evaluate(table(-0.8, 500, rng)).detected
True
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import stats
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold

from detectors.base import FeatureTable
from detectors.feature_encoding import FeatureEncoder
from detectors.multivariate_drift import DOMAIN_CLASSIFIER, MultivariateDriftResult
from detectors.performance import roc_auc
from detectors.threads import one_openmp_thread

FloatArray = npt.NDArray[np.float64]


class DomainClassifierDrift:
    """Cross-validated ROC AUC of a tree classifier separating window rows from reference rows.

    Parameters
    ----------
    alpha
        False-alarm probability per evaluated window.
    every_windows
        Evaluate the first window and then one in this many.
    max_rows
        Rows drawn (without replacement) from each side for one evaluation.
    folds
        Cross-validation folds.
    null_runs
        Reference-against-reference runs at :meth:`fit` that measure the null's spread.
    seed
        Seeds the subsamples, the folds and the classifier.
    """

    def __init__(
        self,
        alpha: float = 0.01,
        every_windows: int = 10,
        max_rows: int = 1000,
        folds: int = 5,
        null_runs: int = 20,
        seed: int = 0,
    ) -> None:
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
        if every_windows < 1:
            raise ValueError(f"every_windows must be >= 1, got {every_windows!r}")
        if max_rows < 20:
            raise ValueError(f"max_rows must be >= 20, got {max_rows!r}")
        if folds < 2:
            raise ValueError(f"folds must be >= 2, got {folds!r}")
        if null_runs < 2:
            raise ValueError(f"null_runs must be >= 2, got {null_runs!r}")
        self.alpha = alpha
        self.every_windows = every_windows
        self.max_rows = max_rows
        self.folds = folds
        self.null_runs = null_runs
        self.seed = seed
        self.reset()

    def __repr__(self) -> str:
        return (
            f"DomainClassifierDrift(alpha={self.alpha}, every_windows={self.every_windows}, "
            f"max_rows={self.max_rows}, folds={self.folds}, null_runs={self.null_runs}, seed={self.seed})"
        )

    def reset(self) -> None:
        self._encoder = FeatureEncoder()
        self._reference: FloatArray | None = None
        self._windows_seen = 0
        self.inflation = 1.0
        """How much wider than the Mann-Whitney null the cross-validated AUC spreads."""

    def fit(self, reference: FeatureTable) -> None:
        """Keep the encoded reference and measure the null's inflation on it."""
        self.reset()
        encoded = self._encoder.fit(reference).transform(reference)
        half = min(self.max_rows, len(encoded) // 2)
        if half < self.folds:
            raise ValueError(f"the reference needs at least {2 * self.folds} rows, got {len(encoded)}")
        deviations = []
        for run in range(self.null_runs):
            order = np.random.default_rng([self.seed, 0, run]).permutation(len(encoded))
            auc = self._cross_validated_auc(encoded[order[:half]], encoded[order[half : 2 * half]])
            deviations.append((auc - 0.5) / _null_spread(half, half))
        mean_square = float(np.mean(np.square(deviations)))
        bound = mean_square * self.null_runs / float(stats.chi2.ppf(0.05, self.null_runs))
        self.inflation = max(1.0, float(np.sqrt(bound)))
        self._reference = encoded

    def evaluate(self, window: FeatureTable) -> MultivariateDriftResult | None:
        """Test one window, or ``None`` when this window is not one of every ``every_windows``."""
        if self._reference is None:
            raise RuntimeError("DomainClassifierDrift used before fit")
        self._windows_seen += 1
        if (self._windows_seen - 1) % self.every_windows != 0:
            return None
        rng = np.random.default_rng([self.seed, self._windows_seen])
        reference = _subsample(self._reference, self.max_rows, rng)
        current = _subsample(self._encoder.transform(window), self.max_rows, rng)
        if len(current) < self.folds or len(reference) < self.folds:
            return None
        auc = self._cross_validated_auc(reference, current)
        spread = self.inflation * _null_spread(len(reference), len(current))
        threshold = 0.5 + float(stats.norm.ppf(1.0 - self.alpha)) * spread
        return MultivariateDriftResult(
            DOMAIN_CLASSIFIER, auc, None, threshold, bool(auc > threshold), len(current)
        )

    def _cross_validated_auc(self, reference: FloatArray, current: FloatArray) -> float:
        x = np.vstack([reference, current])
        y = np.r_[np.zeros(len(reference)), np.ones(len(current))]
        scores = np.zeros(len(y))
        folds = StratifiedKFold(self.folds, shuffle=True, random_state=self.seed)
        with one_openmp_thread():  # the collector's other work shares the cores
            for train, test in folds.split(x, y):
                model = HistGradientBoostingClassifier(
                    max_iter=50, max_depth=3, early_stopping=False, random_state=self.seed
                )
                model.fit(x[train], y[train])
                scores[test] = model.predict_proba(x[test])[:, 1]
        auc = roc_auc(y == 1.0, scores)
        return 0.5 if auc is None else auc


def _null_spread(n0: int, n1: int) -> float:
    """The standard deviation of the Mann-Whitney AUC of n0 against n1 scores under no drift."""
    return float(np.sqrt((n0 + n1 + 1) / (12.0 * n0 * n1)))


def _subsample(matrix: FloatArray, rows: int, rng: np.random.Generator) -> FloatArray:
    if len(matrix) <= rows:
        return matrix
    return matrix[np.sort(rng.choice(len(matrix), size=rows, replace=False))]
