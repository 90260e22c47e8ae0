"""Calibrated mode: simulated null, family-wise false alarms, robustness, persistence, golden stream."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from detectors import drift_methods
from detectors.base import FeatureKind, FeatureTable
from detectors.data_drift import DataDriftDetector
from detectors.drift_calibration import (
    SCALE_WEIGHT,
    Calibrator,
    CountCells,
    RankCells,
    null_statistics,
    size_bucket,
)


def _mixed_table(
    rng: np.random.Generator,
    n: int,
    shifted: tuple[str, ...] = (),
    n_numeric: int = 8,
    n_categorical: int = 4,
) -> FeatureTable:
    kinds: dict[str, FeatureKind] = {}
    columns: dict[str, np.ndarray] = {}
    for i in range(n_numeric):
        name = f"num{i}"
        shift = 0.5 if name in shifted else 0.0
        values = rng.normal(shift, 1.0, n) if i % 2 == 0 else rng.gamma(2.0, 1.0, n) + 2 * shift
        kinds[name], columns[name] = "numerical", values
    for j in range(n_categorical):
        name = f"cat{j}"
        probabilities = np.array([0.5, 0.3, 0.15, 0.05])
        if name in shifted:
            probabilities = probabilities[[1, 0, 2, 3]]
        labels = np.array(["a", "b", "c", "d"], dtype=object)
        kinds[name], columns[name] = "categorical", rng.choice(labels, n, p=probabilities)
    return FeatureTable(kinds, columns, n)


def test_simulated_null_matches_real_reference_and_window_draws() -> None:
    """The Dirichlet-multinomial null equals fresh reference + window draws (continuous data)."""
    rng = np.random.default_rng(0)
    n, m = 1000, 400
    cells = RankCells.from_sorted(np.sort(rng.normal(size=n)))
    simulated = null_statistics(cells, m, 40_000, np.random.default_rng(1))
    real = []
    for _ in range(6000):
        fresh = RankCells.from_sorted(np.sort(rng.lognormal(size=n)))
        assert fresh.key == cells.key
        real.append(float(fresh.statistic(fresh.window_counts(rng.lognormal(size=m)), m)))
    for level in (0.5, 0.9, 0.99):
        assert np.quantile(real, level) == pytest.approx(np.quantile(simulated, level), rel=0.05)


def test_family_wise_false_alarm_rate_is_at_most_alpha() -> None:
    """12 features, each tested on the window and (from the 4th window) on 4 pooled windows,
    at alpha / 24 per test: any-feature false alarms stay near alpha.

    Without the multiple-testing correction 12 features at 0.05 each would flag
    about 46% of windows.
    """
    rng = np.random.default_rng(42)
    flagged = windows = 0
    for _ in range(8):
        detector = DataDriftDetector(alpha=0.05, seed=1)
        detector.fit(_mixed_table(rng, 2000))
        for _ in range(40):
            result = detector.evaluate(_mixed_table(rng, 500))
            flagged += any(d.drifted for d in result.features)
            windows += 1
    assert windows == 320
    assert flagged / windows <= 0.09


@pytest.mark.parametrize("kind", ["numerical", "categorical"])
def test_flag_threshold_accounts_for_the_number_of_features(kind: str) -> None:
    cells: RankCells | CountCells
    if kind == "numerical":
        cells = RankCells.from_sorted(np.sort(np.random.default_rng(0).normal(size=3000)))
    else:
        cells = CountCells.from_counter(Counter({"a": 1500, "b": 1000, "c": 500}))
    one = Calibrator(alpha=0.01, n_features=1).threshold(cells, 800)
    twenty = Calibrator(alpha=0.01, n_features=20).threshold(cells, 800)
    assert twenty > one * 1.1


def _heavy_tailed(rng: np.random.Generator, n: int) -> np.ndarray:
    """Normal body with 0.05% extreme values (scale 10,000)."""
    values = rng.normal(size=n)
    extreme = rng.random(n) < 0.0005
    values[extreme] = rng.normal(0.0, 10_000.0, int(extreme.sum()))
    return values


def test_two_extreme_values_do_not_change_the_calibrated_verdict() -> None:
    rng = np.random.default_rng(7)
    kinds: dict[str, FeatureKind] = {"heavy": "numerical"}
    reference = FeatureTable(kinds, {"heavy": _heavy_tailed(rng, 5000)}, 5000)
    calibrated, evidently = DataDriftDetector(seed=3), DataDriftDetector(mode="evidently")
    calibrated.fit(reference)
    evidently.fit(reference)
    prepared = drift_methods.NumericReference.from_values(reference.numerical("heavy"))
    evidently_flips = 0
    for _ in range(30):
        clean = _heavy_tailed(rng, 1000)
        dirty = clean.copy()
        dirty[:2] = [2.5e6, -1.8e6]
        before = calibrated.evaluate(FeatureTable(kinds, {"heavy": clean}, 1000)).features[0]
        after = calibrated.evaluate(FeatureTable(kinds, {"heavy": dirty}, 1000)).features[0]
        assert after.drifted == before.drifted
        assert abs(after.flag_value - before.flag_value) < 0.2
        assert after.score == drift_methods.wasserstein(prepared, dirty)
        assert after.method == "wasserstein"
        evidently_flips += evidently.evaluate(FeatureTable(kinds, {"heavy": dirty}, 1000)).features[0].drifted
    assert evidently_flips == 30


def test_thresholds_are_cached_per_window_size_bucket() -> None:
    rng = np.random.default_rng(5)
    detector = DataDriftDetector()
    detector.fit(_mixed_table(rng, 3000, n_numeric=2, n_categorical=1))
    assert detector.thresholds()["num0"]["thresholds_by_size"] == {}
    for size in (1000, 1010, 1050, 600):
        detector.evaluate(_mixed_table(rng, size, n_numeric=2, n_categorical=1))
    by_size = detector.thresholds()["num0"]["thresholds_by_size"]
    pooled = 1000 + 1010 + 1050 + 600
    assert sorted(by_size) == [size_bucket(600), size_bucket(1000), size_bucket(pooled)]
    assert size_bucket(1010) == size_bucket(1050) == size_bucket(1000) != size_bucket(980)
    assert detector.thresholds()["cat0"]["flag_statistic"] == "chi_square"
    assert detector.thresholds()["num0"]["level"] == pytest.approx(0.01 / (3 * 2))
    assert detector.thresholds()["num0"]["pooled_windows"] == 4


def test_size_bucket_rejects_empty_windows() -> None:
    with pytest.raises(ValueError, match="0"):
        size_bucket(0)


def test_evidently_mode_reports_fixed_thresholds() -> None:
    rng = np.random.default_rng(5)
    detector = DataDriftDetector(mode="evidently")
    detector.fit(_mixed_table(rng, 3000, n_numeric=1, n_categorical=1))
    assert detector.thresholds() == {
        "num0": {"kind": "numerical", "method": "wasserstein", "mode": "evidently", "threshold": 0.1},
        "cat0": {"kind": "categorical", "method": "jensenshannon", "mode": "evidently", "threshold": 0.1},
    }


def test_persistence_declares_drift_after_k_consecutive_windows() -> None:
    rng = np.random.default_rng(9)
    detector = DataDriftDetector(persistence=2, drift_share=0.1)
    detector.fit(_mixed_table(rng, 3000, n_numeric=2, n_categorical=0))
    states = []
    for shifted in (True, True, False, True):
        window = _mixed_table(rng, 1000, ("num0",) if shifted else (), n_numeric=2, n_categorical=0)
        result = detector.evaluate(window)
        num0 = next(d for d in result.features if d.feature == "num0")
        states.append((num0.drifted, num0.detected, result.detected))
    assert states == [(True, False, False), (True, True, True), (False, False, False), (True, False, False)]


def test_golden_stream_flags_exactly_the_shifted_features() -> None:
    """Reference 5,000 rows, windows of 1,000, 12 mixed features, 3 shifted in one window."""
    rng = np.random.default_rng(2026)
    detector = DataDriftDetector()
    detector.fit(_mixed_table(rng, 5000))
    for _ in range(6):
        result = detector.evaluate(_mixed_table(rng, 1000))
        assert [d.feature for d in result.features if d.drifted] == []
        assert not result.detected
    shifted = ("num1", "num4", "cat2")
    result = detector.evaluate(_mixed_table(rng, 1000, shifted))
    assert [d.feature for d in result.features if d.drifted] == list(shifted)
    assert result.share == pytest.approx(3 / 12)
    assert not result.detected


def test_a_change_of_spread_is_flagged() -> None:
    rng = np.random.default_rng(12)
    kinds: dict[str, FeatureKind] = {"x": "numerical"}
    detector = DataDriftDetector()
    detector.fit(FeatureTable(kinds, {"x": rng.normal(size=5000)}, 5000))
    same = detector.evaluate(FeatureTable(kinds, {"x": rng.normal(size=1000)}, 1000)).features[0]
    wider = detector.evaluate(FeatureTable(kinds, {"x": rng.normal(0.0, 1.4, 1000)}, 1000)).features[0]
    assert not same.drifted
    assert wider.drifted and wider.flag_value > wider.threshold


def test_new_categories_flag_only_in_bulk() -> None:
    rng = np.random.default_rng(13)
    kinds: dict[str, FeatureKind] = {"colour": "categorical"}
    labels = np.array(["red", "green", "blue"], dtype=object)
    detector = DataDriftDetector()
    detector.fit(FeatureTable(kinds, {"colour": rng.choice(labels, 5000)}, 5000))
    window = rng.choice(labels, 1000)
    clean = detector.evaluate(FeatureTable(kinds, {"colour": window}, 1000)).features[0]
    window[:2] = "violet"
    few = detector.evaluate(FeatureTable(kinds, {"colour": window}, 1000)).features[0]
    window[:300] = "violet"
    flood = detector.evaluate(FeatureTable(kinds, {"colour": window}, 1000)).features[0]
    assert not clean.drifted and not few.drifted
    assert abs(few.flag_value - clean.flag_value) < 1.0
    assert flood.drifted


def test_calibrated_mode_reports_the_same_scores_as_evidently_mode() -> None:
    rng = np.random.default_rng(14)
    reference, window = _mixed_table(rng, 3000), _mixed_table(rng, 800, ("num0",))
    scores = []
    for mode in ("calibrated", "evidently"):
        detector = DataDriftDetector(mode=mode)
        detector.fit(reference)
        scores.append([(d.feature, d.method, d.score) for d in detector.evaluate(window).features])
    assert scores[0] == scores[1]


def _one_feature(rng: np.random.Generator, n: int, shift: float = 0.0) -> FeatureTable:
    kinds: dict[str, FeatureKind] = {"x": "numerical", "y": "numerical"}
    return FeatureTable(kinds, {"x": rng.normal(shift, 1.0, n), "y": rng.gamma(2.0, 1.0, n)}, n)


def _flags(detector: DataDriftDetector, rng: np.random.Generator, shifts: list[float]) -> list[bool]:
    results = [detector.evaluate(_one_feature(rng, 1000, shift)) for shift in shifts]
    return [next(d for d in r.features if d.feature == "x").drifted for r in results]


def test_pooled_windows_catch_a_small_persistent_shift_one_window_misses() -> None:
    """0.08 sd in windows of 1,000 against 20,000 rows: one window sees it about a third of the
    time at alpha 0.01 over 2 features; four pooled windows (z about 4.5) nearly always."""
    flag_rates = {}
    for pooled_windows in (1, 4):
        rng = np.random.default_rng(31)
        detector = DataDriftDetector(pooled_windows=pooled_windows, seed=2)
        detector.fit(_one_feature(rng, 20_000))
        flags = _flags(detector, rng, [0.08] * 40)
        flag_rates[pooled_windows] = sum(flags[3:]) / len(flags[3:])
    assert flag_rates[1] < 0.6
    assert flag_rates[4] >= 0.9


def test_pooled_test_starts_after_k_windows_and_forgets_an_ended_drift() -> None:
    """A 1 sd drift in windows 5-6 keeps the pooled flag up for at most k - 1 = 3 windows after."""
    rng = np.random.default_rng(33)
    detector = DataDriftDetector(pooled_windows=4, seed=2)
    detector.fit(_one_feature(rng, 20_000))
    results = [detector.evaluate(_one_feature(rng, 1000, s)) for s in [0.0] * 4 + [1.0] * 2 + [0.0] * 6]
    x = [next(d for d in r.features if d.feature == "x") for r in results]
    assert [d.pooled_size for d in x[:4]] == [0, 0, 0, 4000]
    assert all(np.isnan(d.pooled_flag_value) for d in x[:3])
    assert [d.drifted for d in x] == [False] * 4 + [True] * 5 + [False] * 3
    assert [d.flag_value > d.threshold for d in x[4:9]] == [True, True, False, False, False]
    assert all(d.pooled_flag_value > d.pooled_threshold for d in x[6:9])
    detector.fit(_one_feature(rng, 20_000))
    again = detector.evaluate(_one_feature(rng, 1000)).features[0]
    assert again.pooled_size == 0


def test_pooled_and_single_tests_share_alpha() -> None:
    rng = np.random.default_rng(35)
    reference = _one_feature(rng, 5000)
    levels = {}
    for pooled_windows in (1, 4):
        detector = DataDriftDetector(alpha=0.02, pooled_windows=pooled_windows)
        detector.fit(reference)
        levels[pooled_windows] = detector.thresholds()["x"]["level"]
    assert levels == {1: pytest.approx(0.01), 4: pytest.approx(0.005)}


@pytest.mark.parametrize("draw", ["continuous", "ties", "edge_values", "one_cell"])
def test_sorted_window_counts_equal_the_per_value_cells(draw: str) -> None:
    """Counting sorted values with one search per edge gives every cell the same count as
    placing each value (ties and values equal to an edge included)."""
    rng = np.random.default_rng(7)
    reference = np.sort(rng.normal(size=2000))
    if draw == "ties":
        reference = np.sort(np.round(rng.normal(size=2000), 1))
    if draw == "one_cell":  # every cut at the maximum: no edge is left
        reference = np.sort(np.concatenate((np.full(1990, 3.0), np.linspace(0.0, 1.0, 25))))
    cells = RankCells.from_sorted(reference)
    for _ in range(20):
        window = rng.normal(0.3, 1.2, size=int(rng.integers(1, 1500)))
        if draw in ("ties", "edge_values"):
            on_edges = rng.choice(cells.edges, 50) if len(cells.edges) else []
            window = np.concatenate((np.round(window, 1), on_edges))
        ordered = np.sort(window)
        expected = cells.window_counts(window)
        assert np.array_equal(cells.window_counts(ordered, ordered=True), expected)
        assert cells.window_counts(ordered, ordered=True).sum() == len(window)
    assert (len(cells.edges) == 0) == (draw == "one_cell")


def test_one_window_statistic_is_the_array_arithmetic_bit_for_bit() -> None:
    """The scalar path of :meth:`RankCells.statistic` (one window) computes what the array
    expression does for one window, to the last bit (thresholds cached on disk stay valid)."""
    rng = np.random.default_rng(3)
    cells = RankCells.from_sorted(np.sort(rng.gamma(2.0, 1.0, size=3000)))
    inflation = 1.0 / 700 + 1.0 / 3000
    for _ in range(50):
        counts = cells.window_counts(rng.gamma(2.0, 1.1, size=700))
        location = np.abs(counts @ cells.location / 700) / math.sqrt(cells.location_var * inflation)
        scale = SCALE_WEIGHT * np.abs(counts @ cells.scale / 700) / math.sqrt(cells.scale_var * inflation)
        assert float(cells.statistic(counts, 700)) == float(np.maximum(location, scale))


def test_wasserstein_of_sorted_values_equals_the_unsorted_call() -> None:
    rng = np.random.default_rng(5)
    reference = drift_methods.NumericReference.from_values(rng.normal(size=3000))
    for size in (1, 2, 999, 3000, 4500):
        window = np.round(rng.normal(0.2, 1.0, size=size), 2)
        expected = drift_methods.wasserstein(reference, window)
        assert drift_methods.wasserstein(reference, np.sort(window), ordered=True) == expected


def test_wasserstein_with_the_crossings_kept_per_window_size_equals_a_fresh_reference() -> None:
    """A reference keeps its level crossings for the last few window sizes: windows of more
    sizes than it keeps, coming back in turn, score what a freshly prepared reference gives,
    and the kept arrays cannot be changed by a caller."""
    rng = np.random.default_rng(8)
    values = np.round(rng.normal(size=2000), 1)
    reused = drift_methods.NumericReference.from_values(values)
    sizes = [1000, 999, 7, 1000, 2500, 31, 64, 999, 1000, 7]
    assert len(set(sizes)) > drift_methods._CROSSING_SIZES
    for size in sizes:
        window = np.sort(np.round(rng.normal(0.1, 1.2, size=size), 1))
        fresh = drift_methods.NumericReference.from_values(values)
        assert drift_methods.wasserstein(reused, window, ordered=True) == drift_methods.wasserstein(
            fresh, window, ordered=True
        )
    crossing, level, _ = reused.crossings(1000)
    assert level[-1] == 1.0 and crossing[0] == -np.inf
    with pytest.raises(ValueError):
        crossing[1] = 0.0
