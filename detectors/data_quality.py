"""Data quality per feature per window: missing, type errors, out of range, new categories.

Ratios are over the window's rows, except the out-of-range and new-category
ratios, which are over the feature's present values (what share of the values
the model actually received were unusual). A ratio that does not apply to a
feature's kind is NaN -- out of range for a categorical feature, new category
for a numerical one -- and is not meant to be exported.

Missing and type errors are told apart: :class:`FeatureTable` stores a value of
the wrong type as missing and counts it in ``type_errors``, so the missing
ratio is the missing values minus the type errors.

Out of range is against ``bounds[feature]`` when configured (inclusive), otherwise
against the reference's minimum and maximum.

>>> import numpy as np
>>> ref = FeatureTable({"x": "numerical"}, {"x": np.array([0.0, 1.0, 2.0])}, 3)
>>> cur = FeatureTable({"x": "numerical"}, {"x": np.array([1.0, 5.0, np.nan, 2.0])}, 4)
>>> detector = DataQualityDetector()
>>> detector.fit(ref)
>>> quality = detector.evaluate(cur).features[0]
>>> quality.missing_ratio, quality.out_of_range_ratio
(0.25, 0.3333333333333333)
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from detectors.base import FeatureKind, FeatureTable


@dataclass(frozen=True)
class FeatureQuality:
    """One feature's data quality in one window."""

    feature: str
    missing_ratio: float
    type_error_ratio: float
    out_of_range_ratio: float
    """Share of present values outside the bounds (numerical; NaN for categorical)."""
    new_category_ratio: float
    """Share of present values never seen in the reference (categorical; NaN for numerical)."""


@dataclass(frozen=True)
class DataQualityResult:
    """Every reference feature's data quality in one window."""

    features: tuple[FeatureQuality, ...]


@dataclass(frozen=True)
class _FittedFeature:
    kind: FeatureKind
    low: float
    high: float
    categories: frozenset[Hashable]


class DataQualityDetector:
    """Missing, type-error, out-of-range and new-category ratios against a fitted reference."""

    def __init__(self, bounds: Mapping[str, tuple[float, float]] = MappingProxyType({})) -> None:
        for feature, bound in bounds.items():
            if len(bound) != 2 or not all(math.isfinite(b) for b in bound) or bound[0] > bound[1]:
                raise ValueError(f"bounds for {feature!r} must be finite (low, high), low <= high: {bound!r}")
        self.bounds = dict(bounds)
        self.reset()

    def __repr__(self) -> str:
        return f"DataQualityDetector(bounds={self.bounds!r})"

    def reset(self) -> None:
        """Forget the reference."""
        self._fitted = False
        self._features: dict[str, _FittedFeature] = {}

    def fit(self, reference: FeatureTable) -> None:
        """Record the reference's range per numerical feature and categories per categorical one."""
        self.reset()
        for name, kind in reference.kinds.items():
            present = reference.present(name)
            if kind == "numerical":
                low, high = self.bounds.get(name, _range(present.astype(np.float64)))
                self._features[name] = _FittedFeature(kind, low, high, frozenset())
            else:
                self._features[name] = _FittedFeature(kind, math.nan, math.nan, frozenset(present.tolist()))
        self._fitted = True

    def evaluate(self, window: FeatureTable) -> DataQualityResult:
        """The ratios for every reference feature (none for a reference without features)."""
        if not self._fitted:
            raise RuntimeError("DataQualityDetector.evaluate called before fit")
        return DataQualityResult(
            tuple(self._evaluate_feature(name, fitted, window) for name, fitted in self._features.items())
        )

    def _evaluate_feature(self, name: str, fitted: _FittedFeature, window: FeatureTable) -> FeatureQuality:
        rows = window.n_rows
        if rows == 0:
            return FeatureQuality(name, 0.0, 0.0, math.nan, math.nan)
        if name not in window.columns:
            return FeatureQuality(name, 1.0, 0.0, math.nan, math.nan)
        present = window.present(name)
        type_errors = min(int(window.type_errors.get(name, 0)), rows - len(present))
        missing = (rows - len(present) - type_errors) / rows
        numerical = fitted.kind == "numerical"
        out_of_range, new_category = (0.0, math.nan) if numerical else (math.nan, 0.0)
        if len(present) and numerical:
            values = present.astype(np.float64)
            outside = (values < fitted.low) | (values > fitted.high)
            out_of_range = float(np.count_nonzero(outside)) / len(values)
        elif len(present):
            unseen = sum(1 for value in present.tolist() if value not in fitted.categories)
            new_category = unseen / len(present)
        return FeatureQuality(name, missing, type_errors / rows, out_of_range, new_category)


def _range(values: npt.NDArray[np.float64]) -> tuple[float, float]:
    if len(values) == 0:
        return (math.inf, -math.inf)
    return (float(values.min()), float(values.max()))
