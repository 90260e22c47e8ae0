"""Parity with Evidently 0.7.23: every method's value to 1e-9, the automatic choice, the preset.

Evidently is the oracle: its stat tests are called on pandas Series exactly as
its ``DataDriftPreset`` calls them, and the preset itself is run to check the
method choice and the per-column scores end to end.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from detectors import drift_methods
from detectors.base import FeatureKind, FeatureTable
from detectors.data_drift import DataDriftDetector
from detectors.drift_methods import CategoricalReference, NumericReference
from exporters.evidently_preset import run_data_drift_preset, value_drift_metrics

evidently = pytest.importorskip("evidently")
from evidently.legacy.calculations.stattests import (  # noqa: E402
    chi_stat_test,
    jensenshannon_stat_test,
    ks_stat_test,
    psi_stat_test,
    wasserstein_stat_test,
    z_stat_test,
)
from evidently.legacy.core import ColumnType  # noqa: E402

ORACLES = {
    "ks": ks_stat_test,
    "wasserstein": wasserstein_stat_test,
    "psi": psi_stat_test,
    "jensenshannon": jensenshannon_stat_test,
    "chisquare": chi_stat_test,
    "ztest": z_stat_test,
}
DISPLAY_NAMES = {
    "K-S p_value": "ks",
    "Wasserstein distance (normed)": "wasserstein",
    "PSI": "psi",
    "Jensen-Shannon distance": "jensenshannon",
    "chi-square p_value": "chisquare",
    "Z-test p_value": "ztest",
}

Sampler = Callable[[np.random.Generator, int, bool], np.ndarray]


def _normal(rng: np.random.Generator, n: int, shifted: bool) -> np.ndarray:
    return rng.normal(0.3 if shifted else 0.0, 1.0, n)


def _far_from_zero(rng: np.random.Generator, n: int, shifted: bool) -> np.ndarray:
    return rng.normal(1e6 + (0.5 if shifted else 0.0), 2.0, n)


def _lognormal_with_outlier(rng: np.random.Generator, n: int, shifted: bool) -> np.ndarray:
    values = rng.lognormal(0.2 if shifted else 0.0, 1.0, n)
    values[0] = 1e5
    return values


def _rounded(rng: np.random.Generator, n: int, shifted: bool) -> np.ndarray:
    return np.round(rng.normal(1.0 if shifted else 0.0, 3.0, n))


def _twelve_values(rng: np.random.Generator, n: int, shifted: bool) -> np.ndarray:
    return rng.integers(0, 13 if shifted else 12, n).astype(np.float64)


def _four_values(rng: np.random.Generator, n: int, shifted: bool) -> np.ndarray:
    return rng.choice([0.0, 1.5, 2.0, 7.0], n, p=[0.1, 0.2, 0.3, 0.4] if shifted else [0.25] * 4)


def _binary_numbers(rng: np.random.Generator, n: int, shifted: bool) -> np.ndarray:
    return (rng.random(n) < (0.4 if shifted else 0.3)).astype(np.float64)


def _colours(rng: np.random.Generator, n: int, shifted: bool) -> np.ndarray:
    names = ["red", "green", "blue", "amber", "violet"] if shifted else ["red", "green", "blue", "amber"]
    return rng.choice(np.array(names, dtype=object), n)


def _yes_no(rng: np.random.Generator, n: int, shifted: bool) -> np.ndarray:
    return rng.choice(np.array(["yes", "no"], dtype=object), n, p=[0.6, 0.4] if shifted else [0.5, 0.5])


NUMERIC_SAMPLERS: list[Sampler] = [_normal, _far_from_zero, _lognormal_with_outlier, _rounded, _twelve_values]
FEW_VALUE_SAMPLERS: list[Sampler] = [_four_values, _binary_numbers]
CATEGORY_SAMPLERS: list[Sampler] = [_colours, _yes_no]
SIZES = [(300, 200), (1000, 1000), (5000, 700), (20000, 3000)]


def _close(ours: float, theirs: float) -> bool:
    if math.isnan(theirs) or math.isnan(ours):
        return math.isnan(theirs) and math.isnan(ours)
    return math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-9)


def _oracle(method: str, ref: np.ndarray, cur: np.ndarray, column_type: ColumnType) -> float:
    with np.errstate(all="ignore"):
        result = ORACLES[method](pd.Series(ref), pd.Series(cur), column_type, None)
    return float(result.drift_score)


def _cases(samplers: list[Sampler], methods: list[str]) -> list[tuple[str, Sampler, int, int, bool]]:
    return [
        (method, sampler, n, m, shifted)
        for method in methods
        for sampler in samplers
        for n, m in SIZES
        for shifted in (False, True)
    ]


@pytest.mark.parametrize(
    ("method", "sampler", "n", "m", "shifted"),
    _cases(NUMERIC_SAMPLERS + FEW_VALUE_SAMPLERS, ["ks", "wasserstein", "psi", "jensenshannon"])
    + _cases(FEW_VALUE_SAMPLERS, ["chisquare", "ztest"]),
)
def test_numerical_methods_equal_evidently(
    method: str, sampler: Sampler, n: int, m: int, shifted: bool
) -> None:
    rng = np.random.default_rng([n, m, int(shifted)])
    ref, cur = sampler(rng, n, False), sampler(rng, m, shifted)
    ours = drift_methods.evaluate(method, NumericReference.from_values(ref), cur)
    theirs = _oracle(method, ref, cur, ColumnType.Numerical)
    assert _close(ours, theirs), (ours, theirs)


@pytest.mark.parametrize(
    ("method", "sampler", "n", "m", "shifted"),
    _cases(CATEGORY_SAMPLERS, ["psi", "jensenshannon", "chisquare", "ztest"]),
)
def test_categorical_methods_equal_evidently(
    method: str, sampler: Sampler, n: int, m: int, shifted: bool
) -> None:
    rng = np.random.default_rng([n, m, int(shifted), 7])
    ref, cur = sampler(rng, n, False), sampler(rng, m, shifted)
    ours = drift_methods.evaluate(method, CategoricalReference.from_values(ref), cur)
    theirs = _oracle(method, ref, cur, ColumnType.Categorical)
    assert _close(ours, theirs), (ours, theirs)


def test_numeric_psi_bins_follow_the_window() -> None:
    """A window far outside the reference widens Evidently's Sturges bins; ours follow."""
    rng = np.random.default_rng(3)
    ref, cur = rng.normal(size=4000), rng.normal(50.0, 1.0, 400)
    prepared = NumericReference.from_values(ref)
    for method in ("psi", "jensenshannon"):
        ours = drift_methods.evaluate(method, prepared, cur)
        assert _close(ours, _oracle(method, ref, cur, ColumnType.Numerical))


def _preset_columns(rng: np.random.Generator, n: int) -> tuple[dict[str, FeatureKind], pd.DataFrame]:
    kinds: dict[str, FeatureKind] = {
        "num_many": "numerical",
        "num_four": "numerical",
        "num_two": "numerical",
        "cat_two": "categorical",
        "cat_four": "categorical",
    }
    frame = pd.DataFrame(
        {
            "num_many": rng.normal(size=n),
            "num_four": rng.choice([0.0, 1.0, 2.0, 3.0], n),
            "num_two": rng.choice([0.0, 1.0], n),
            "cat_two": rng.choice(np.array(["a", "b"], dtype=object), n),
            "cat_four": rng.choice(np.array(["w", "x", "y", "z"], dtype=object), n),
        }
    )
    return kinds, frame


def _table(kinds: dict[str, FeatureKind], frame: pd.DataFrame) -> FeatureTable:
    columns = {
        name: frame[name].to_numpy(dtype=np.float64 if kind == "numerical" else object)
        for name, kind in kinds.items()
    }
    return FeatureTable(kinds, columns, len(frame))


def _run_preset(
    kinds: dict[str, FeatureKind], ref: pd.DataFrame, cur: pd.DataFrame
) -> dict[str, tuple[str, float]]:
    snapshot = run_data_drift_preset(kinds, ref, cur)
    return {
        m["config"]["column"]: (DISPLAY_NAMES[m["config"]["method"]], float(m["value"]))
        for m in value_drift_metrics(snapshot)
    }


@pytest.mark.parametrize("n_reference", [800, 3000])
def test_automatic_choice_and_scores_equal_the_preset(n_reference: int) -> None:
    rng = np.random.default_rng(n_reference)
    kinds, ref = _preset_columns(rng, n_reference)
    _, cur = _preset_columns(rng, 600)
    cur["num_many"] += 0.2
    preset = _run_preset(kinds, ref, cur)
    detector = DataDriftDetector(mode="evidently")
    detector.fit(_table(kinds, ref))
    result = detector.evaluate(_table(kinds, cur))
    assert {d.feature: d.method for d in result.features} == {k: v[0] for k, v in preset.items()}
    for drift in result.features:
        assert _close(drift.score, preset[drift.feature][1]), (drift, preset[drift.feature])
    expected = {
        800: {
            "num_many": "ks",
            "num_four": "chisquare",
            "num_two": "ztest",
            "cat_two": "ztest",
            "cat_four": "chisquare",
        },
        3000: {
            "num_many": "wasserstein",
            "num_four": "jensenshannon",
            "num_two": "jensenshannon",
            "cat_two": "jensenshannon",
            "cat_four": "jensenshannon",
        },
    }[n_reference]
    assert {d.feature: d.method for d in result.features} == expected


def test_choice_departs_from_evidently_only_when_the_window_brings_new_values() -> None:
    """Evidently counts distinct values over reference and window; Driftline over the reference."""
    rng = np.random.default_rng(11)
    kinds: dict[str, FeatureKind] = {"level": "numerical"}
    ref = pd.DataFrame({"level": rng.choice([1.0, 2.0, 3.0, 4.0], 3000)})
    cur = pd.DataFrame({"level": rng.choice([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 500)})
    preset = _run_preset(kinds, ref, cur)
    detector = DataDriftDetector(mode="evidently")
    detector.fit(_table(kinds, ref))
    ours = detector.evaluate(_table(kinds, cur)).features[0]
    assert preset["level"][0] == "wasserstein"
    assert ours.method == "jensenshannon"
    assert _close(
        ours.score,
        _oracle("jensenshannon", ref["level"].to_numpy(), cur["level"].to_numpy(), ColumnType.Numerical),
    )


def test_categorical_scores_do_not_depend_on_the_process_string_hash_seed() -> None:
    """A restarted collector must score a window exactly as before (string hashing changes per process)."""
    import subprocess
    import sys

    program = (
        "import numpy as np\n"
        "from detectors import drift_methods\n"
        "from detectors.drift_methods import CategoricalReference\n"
        "rng = np.random.default_rng(0)\n"
        "cats = [f'cat{i}' for i in range(6)]\n"
        "p = [0.3, 0.2, 0.2, 0.1, 0.1, 0.1]\n"
        "ref = CategoricalReference.from_values(rng.choice(cats, size=1000, p=p).astype(object))\n"
        "cur = rng.choice(cats, size=500).astype(object)\n"
        "print([drift_methods.evaluate(m, ref, cur) for m in ('chisquare', 'jensenshannon', 'psi')])\n"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", program],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            check=True,
            text=True,
        ).stdout
        for seed in range(6)
    }
    assert len(outputs) == 1, outputs


def test_ks_equals_scipys_ks_2samp_exactly_with_ties_sizes_and_an_empty_window() -> None:
    """``ks`` calls scipy's test under its NaN-policy wrapper: the same p-value, bit for bit."""
    rng = np.random.default_rng(11)
    for _ in range(200):
        n, m = int(rng.integers(1, 6000)), int(rng.integers(1, 1500))
        reference = rng.normal(size=n).round(int(rng.integers(0, 3)))
        window = rng.normal(loc=float(rng.normal(scale=0.2)), size=m).round(1)
        expected = scipy_stats.ks_2samp(reference, window).pvalue
        assert drift_methods.ks(NumericReference.from_values(reference), window) == expected
    with pytest.warns(RuntimeWarning, match="too small"):  # scipy's word on an empty sample
        empty = drift_methods.ks(NumericReference.from_values(np.arange(10.0)), np.array([]))
    assert np.isnan(empty)


def test_chisquare_equals_scipys_chisquare_exactly() -> None:
    """``chisquare`` calls scipy's test under its NaN-policy wrapper: the same p-value, bit for bit
    (the counts aligned as the method aligns them, so the sums run in the same order)."""
    rng = np.random.default_rng(12)
    for _ in range(200):
        categories = [f"c{i}" for i in range(int(rng.integers(2, 12)))]
        reference = rng.choice(categories, size=int(rng.integers(50, 5000)))
        seen = categories[: int(rng.integers(1, len(categories) + 1))]
        window = rng.choice(seen, size=int(rng.integers(1, 800)))
        prepared = CategoricalReference.from_values(reference)
        window_counts = drift_methods._counter(window)
        ref_counts, cur_counts = drift_methods._aligned_counts(prepared.counts, window_counts)
        with np.errstate(divide="ignore", invalid="ignore"):
            scaled = ref_counts * (len(window) / len(reference))
            expected = scipy_stats.chisquare(cur_counts, scaled).pvalue
        assert drift_methods.chisquare(prepared, window) == pytest.approx(expected, rel=0, abs=0, nan_ok=True)
