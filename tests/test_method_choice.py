"""Evidently's automatic method choice, decided once from the reference, and per-feature overrides."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.base import FeatureKind, FeatureTable
from detectors.data_drift import DataDriftDetector
from detectors.method_choice import check_override, choose_method


@pytest.mark.parametrize(
    ("kind", "reference_size", "n_unique", "expected"),
    [
        ("numerical", 1000, 6, "ks"),
        ("numerical", 1000, 5, "chisquare"),
        ("numerical", 1000, 3, "chisquare"),
        ("numerical", 1000, 2, "ztest"),
        ("numerical", 1000, 1, "ztest"),
        ("numerical", 1001, 6, "wasserstein"),
        ("numerical", 1001, 5, "jensenshannon"),
        ("numerical", 50_000, 2, "jensenshannon"),
        ("categorical", 200, 3, "chisquare"),
        ("categorical", 200, 2, "ztest"),
        ("categorical", 1001, 2, "jensenshannon"),
        ("categorical", 1001, 40, "jensenshannon"),
    ],
)
def test_choice_follows_evidentlys_rules(
    kind: FeatureKind, reference_size: int, n_unique: int, expected: str
) -> None:
    assert choose_method(kind, reference_size=reference_size, n_unique=n_unique) == expected


def test_unknown_kind_is_rejected_by_name() -> None:
    with pytest.raises(ValueError, match="'text'"):
        choose_method("text", reference_size=10, n_unique=2)  # type: ignore[arg-type]


def test_overrides_are_validated() -> None:
    assert check_override("age", "numerical", "psi") == "psi"
    with pytest.raises(ValueError, match="'kolmogorov'"):
        check_override("age", "numerical", "kolmogorov")
    with pytest.raises(ValueError, match=r"'ks'.*'region'"):
        check_override("region", "categorical", "ks")


def _table(values: dict[str, np.ndarray], kinds: dict[str, FeatureKind]) -> FeatureTable:
    return FeatureTable(kinds, values, len(next(iter(values.values()))))


def test_method_is_fixed_from_the_reference_even_when_a_window_brings_new_values() -> None:
    rng = np.random.default_rng(1)
    kinds: dict[str, FeatureKind] = {"level": "numerical", "colour": "categorical"}
    reference = _table(
        {
            "level": rng.choice([1.0, 2.0, 3.0], 3000),
            "colour": rng.choice(np.array(["red", "blue"], dtype=object), 3000),
        },
        kinds,
    )
    window = _table(
        {
            "level": rng.choice([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], 500),
            "colour": rng.choice(np.array(["red", "blue", "green"], dtype=object), 500),
        },
        kinds,
    )
    detector = DataDriftDetector(mode="evidently")
    detector.fit(reference)
    first = {d.feature: d.method for d in detector.evaluate(window).features}
    assert first == {"level": "jensenshannon", "colour": "jensenshannon"}
    assert {d.feature: d.method for d in detector.evaluate(reference).features} == first


def test_missing_values_do_not_count_towards_the_reference_size() -> None:
    """1,200 rows of which 300 missing: 900 present values, so a small-reference test (ks)."""
    values = np.random.default_rng(2).normal(size=1200)
    values[:300] = np.nan
    detector = DataDriftDetector(mode="evidently")
    detector.fit(_table({"x": values}, {"x": "numerical"}))
    assert detector.thresholds()["x"]["method"] == "ks"


def test_configured_method_overrides_the_choice() -> None:
    rng = np.random.default_rng(3)
    kinds: dict[str, FeatureKind] = {"x": "numerical", "y": "numerical"}
    reference = _table({"x": rng.normal(size=2000), "y": rng.normal(size=2000)}, kinds)
    detector = DataDriftDetector(mode="evidently", methods={"x": "psi"})
    detector.fit(reference)
    methods = {d.feature: (d.method, d.p_value) for d in detector.evaluate(reference).features}
    assert methods == {"x": ("psi", False), "y": ("wasserstein", False)}


def test_override_with_an_inapplicable_method_fails_at_fit() -> None:
    kinds: dict[str, FeatureKind] = {"colour": "categorical"}
    detector = DataDriftDetector(methods={"colour": "wasserstein"})
    with pytest.raises(ValueError, match="'wasserstein'"):
        detector.fit(_table({"colour": np.array(["a", "b"] * 50, dtype=object)}, kinds))
