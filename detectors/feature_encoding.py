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
from itertools import repeat

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
        numbers = np.full((table.n_rows, len(self._scales)), np.nan)
        for position, name in enumerate(self._scales):
            if name in table.columns:
                numbers[:, position] = table.numerical(name)
        location = np.array([mean for mean, _ in self._scales.values()], dtype=np.float64)
        scale = np.array([spread for _, spread in self._scales.values()], dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            standardized = np.clip((numbers - location) / scale, -MAX_SCORE, MAX_SCORE)
        standardized[np.isnan(standardized)] = 0.0
        blocks = [standardized]
        for name, categories in self._categories.items():
            texts = {text: index for index, text in enumerate(dict.fromkeys(categories))}
            codes = _text_codes(table.columns.get(name), texts, table.n_rows)
            columns = np.array([texts[category] for category in categories], dtype=np.intp)
            blocks.append((codes[:, None] == columns[None, :]).astype(np.float64))
        return np.hstack(blocks)


def _text_codes(
    column: npt.NDArray[np.generic] | None, texts: dict[str, int], rows: int
) -> npt.NDArray[np.intp]:
    """Per row, the code in ``texts`` of ``str(value)`` (-1: another text, or missing).

    ``str`` is called once per distinct value, not per row: values are told apart by type and
    value, since ``1``, ``1.0`` and ``True`` are equal keys but different texts.
    """
    if column is None:
        return np.full(rows, -1, dtype=np.intp)
    values = column.tolist()
    if set(map(type, values)) <= {str, type(None)}:  # the usual column: a value is its own text
        code_of = {value: texts.get(value, -1) for value in set(values) if value is not None}
        return np.fromiter(map(code_of.get, values, repeat(-1)), dtype=np.intp, count=len(values))
    keys = list(zip(map(type, values), values, strict=True))
    typed_code_of = {key: texts.get(str(key[1]), -1) for key in set(keys) if key[1] is not None}
    return np.fromiter(map(typed_code_of.get, keys, repeat(-1)), dtype=np.intp, count=len(keys))


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
