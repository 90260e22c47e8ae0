"""One numeric matrix from a feature table, for the multivariate drift detectors.

Numerical features are standardized with the reference's mean and standard
deviation (a missing value becomes 0, the reference mean; a constant feature
keeps scale 1; where those overflow, the median and the interquartile
spread), and clipped to +-``MAX_SCORE``. Categorical features are one-hot encoded over the reference's
``max_categories`` most frequent categories; any other category, and a missing
value, is a row of zeros. The reference fixes the columns, so every window is
encoded the same way whatever it contains.

>>> import numpy as np
>>> from detectors.base import FeatureTable
>>> table = FeatureTable(
...     {"x": "numerical", "c": "categorical"},
...     {"x": np.array([1.0, 3.0, np.nan]), "c": np.array(["a", "b", None], dtype=object)},
...     3,
... )
>>> FeatureEncoder().fit(table).transform(table).round(3).tolist()
[[-1.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import numpy.typing as npt

from detectors.base import FeatureTable

FloatArray = npt.NDArray[np.float64]
MAX_SCORE = 1000.0
"""Standardized values are clipped to +-this, so no input can overflow the squares downstream."""


class FeatureEncoder:
    """Standardized numerical columns and one-hot categorical columns, fitted on a reference.

    Parameters
    ----------
    max_categories
        The most frequent reference categories of a feature that get a column each.
    """

    def __init__(self, max_categories: int = 20) -> None:
        if max_categories < 1:
            raise ValueError(f"max_categories must be >= 1, got {max_categories!r}")
        self.max_categories = max_categories
        self.reset()

    def __repr__(self) -> str:
        return f"FeatureEncoder(max_categories={self.max_categories})"

    def reset(self) -> None:
        self._scales: dict[str, tuple[float, float]] = {}
        self._categories: dict[str, tuple[str, ...]] = {}

    @property
    def numerical_features(self) -> tuple[str, ...]:
        return tuple(self._scales)

    @property
    def width(self) -> int:
        """Columns of the encoded matrix."""
        return len(self._scales) + sum(len(c) for c in self._categories.values())

    def fit(self, reference: FeatureTable) -> FeatureEncoder:
        """Learn the scales and the category columns from the reference."""
        self.reset()
        for name in sorted(reference.kinds):
            present = reference.present(name)
            if reference.kinds[name] == "numerical":
                values = present.astype(np.float64)
                self._scales[name] = _location_scale(values[np.isfinite(values)])
            else:
                common = Counter(present.tolist()).most_common(self.max_categories)
                self._categories[name] = tuple(sorted(str(category) for category, _ in common))
        return self

    def transform(self, table: FeatureTable) -> FloatArray:
        """The (rows x ``width``) matrix of a table; a feature it lacks is all missing."""
        blocks = [np.zeros((table.n_rows, 0))]
        for name, (mean, scale) in self._scales.items():
            column = table.numerical(name) if name in table.columns else np.full(table.n_rows, np.nan)
            with np.errstate(over="ignore", invalid="ignore"):
                standardized = np.clip((column - mean) / scale, -MAX_SCORE, MAX_SCORE)
            blocks.append(np.where(np.isnan(standardized), 0.0, standardized)[:, None])
        for name, categories in self._categories.items():
            column = table.columns.get(name, np.full(table.n_rows, None, dtype=object))
            names = np.array([str(v) if v is not None else None for v in column], dtype=object)
            blocks.append((names[:, None] == np.array(categories, dtype=object)[None, :]).astype(np.float64))
        return np.hstack(blocks)


def _location_scale(values: FloatArray) -> tuple[float, float]:
    """Mean and standard deviation, or median and IQR-based spread when those overflow; scale 1
    for a constant (or empty) feature."""
    with np.errstate(over="ignore", invalid="ignore"):
        mean = float(np.mean(values)) if len(values) else 0.0
        std = float(np.std(values)) if len(values) else 0.0
    if not (np.isfinite(mean) and np.isfinite(std)):
        low, mean, high = (float(q) for q in np.quantile(values, [0.25, 0.5, 0.75]))
        std = (high - low) / 1.349 if np.isfinite(high - low) else 0.0
    return mean, std if std > 0 else 1.0
