"""Data quality ratios per feature per window."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detectors.base import FeatureKind, FeatureTable
from detectors.data_quality import DataQualityDetector

KINDS: dict[str, FeatureKind] = {"age": "numerical", "region": "categorical"}


def _reference() -> FeatureTable:
    rng = np.random.default_rng(0)
    return FeatureTable(
        KINDS,
        {
            "age": rng.uniform(18.0, 90.0, 1000),
            "region": rng.choice(np.array(["north", "south", "east"], dtype=object), 1000),
        },
        1000,
    )


def _window() -> FeatureTable:
    age = np.array([20.0, 30.0, np.nan, np.nan, 150.0, 10.0, 40.0, 50.0, np.nan, 60.0])
    region = np.array(
        ["north", None, "west", "west", "south", "east", None, "north", "north", "moon"], dtype=object
    )
    return FeatureTable(KINDS, {"age": age, "region": region}, 10, type_errors={"age": 1, "region": 1})


def test_ratios_against_the_reference() -> None:
    detector = DataQualityDetector()
    detector.fit(_reference())
    age, region = detector.evaluate(_window()).features
    assert (age.feature, region.feature) == ("age", "region")
    assert age.missing_ratio == pytest.approx(2 / 10)
    assert age.type_error_ratio == pytest.approx(1 / 10)
    assert age.out_of_range_ratio == pytest.approx(2 / 7)
    assert math.isnan(age.new_category_ratio)
    assert region.missing_ratio == pytest.approx(1 / 10)
    assert region.type_error_ratio == pytest.approx(1 / 10)
    assert region.new_category_ratio == pytest.approx(3 / 8)
    assert math.isnan(region.out_of_range_ratio)


def test_configured_bounds_replace_the_reference_range() -> None:
    detector = DataQualityDetector(bounds={"age": (0.0, 120.0)})
    detector.fit(_reference())
    assert detector.evaluate(_window()).features[0].out_of_range_ratio == pytest.approx(1 / 7)


def test_a_feature_absent_from_the_window_is_all_missing() -> None:
    detector = DataQualityDetector()
    detector.fit(_reference())
    window = FeatureTable({"age": "numerical"}, {"age": np.array([20.0, 30.0])}, 2)
    age, region = detector.evaluate(window).features
    assert age.missing_ratio == 0.0 and age.out_of_range_ratio == 0.0
    assert region.missing_ratio == 1.0


@pytest.mark.parametrize("bound", [(5.0, 1.0), (0.0, math.inf), (math.nan, 1.0)])
def test_bad_bounds_are_rejected_by_value(bound: tuple[float, float]) -> None:
    with pytest.raises(ValueError, match="age"):
        DataQualityDetector(bounds={"age": bound})


def test_evaluate_before_fit_fails() -> None:
    with pytest.raises(RuntimeError, match="before fit"):
        DataQualityDetector().evaluate(_window())
