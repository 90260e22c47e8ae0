"""Multivariate drift: a correlation that flips sign, which no single column shows."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from detectors.base import FeatureTable
from detectors.data_drift import DataDriftDetector
from detectors.domain_classifier import DomainClassifierDrift
from detectors.feature_encoding import FeatureEncoder
from detectors.multivariate_drift import PCAReconstructionDrift

NUMERICAL = 6
WINDOW = 1000


def _table(rng: np.random.Generator, n: int, rho: float) -> FeatureTable:
    """x0 and x1 standard normal with correlation ``rho``; x2..x5 independent; one category."""
    cov = np.eye(NUMERICAL)
    cov[0, 1] = cov[1, 0] = rho
    x = rng.multivariate_normal(np.zeros(NUMERICAL), cov, size=n)
    columns: dict[str, np.ndarray] = {f"x{i}": x[:, i] for i in range(NUMERICAL)}
    columns["colour"] = rng.choice(
        np.array(["red", "green", "blue"], dtype=object), size=n, p=[0.5, 0.3, 0.2]
    )
    kinds = {name: ("categorical" if name == "colour" else "numerical") for name in columns}
    return FeatureTable(kinds, columns, n)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def reference() -> FeatureTable:
    return _table(np.random.default_rng(100), 5000, 0.7)


def test_a_correlation_flip_is_flagged_by_both_methods_and_not_by_univariate_drift(
    reference: FeatureTable,
) -> None:
    univariate = DataDriftDetector(seed=0)
    univariate.fit(reference)
    pca = PCAReconstructionDrift(alpha=0.01)
    pca.fit(reference)
    classifier = DomainClassifierDrift(alpha=0.01, every_windows=1, max_rows=WINDOW)
    classifier.fit(reference)
    rng = np.random.default_rng(101)
    before = _table(rng, WINDOW, 0.7)
    assert not pca.evaluate(before).detected
    for _ in range(3):
        flipped = _table(rng, WINDOW, -0.7)
        marginal = univariate.evaluate(flipped)
        assert not marginal.detected and not any(f.detected for f in marginal.features)
        result = pca.evaluate(flipped)
        assert result.detected and result.upper_threshold is not None
        assert result.score > result.upper_threshold
        found = classifier.evaluate(flipped)
        assert found is not None and found.detected and found.score > 0.6, found


def test_pca_false_alarm_rate_on_no_drift_windows_is_within_alpha(reference: FeatureTable) -> None:
    alpha, windows = 0.05, 300
    pca = PCAReconstructionDrift(alpha=alpha, seed=3)
    pca.fit(reference)
    rng = np.random.default_rng(102)
    alarms = sum(pca.evaluate(_table(rng, WINDOW, 0.7)).detected for _ in range(windows))
    # Measured: see docs/drift.md. At most the 99% quantile of Binomial(300, alpha).
    assert alarms <= stats.binom.ppf(0.99, windows, alpha), alarms


def test_domain_classifier_false_alarm_rate_on_no_drift_windows_is_within_alpha(
    reference: FeatureTable,
) -> None:
    alpha, windows = 0.1, 60
    classifier = DomainClassifierDrift(alpha=alpha, every_windows=1, max_rows=300, folds=3, seed=4)
    classifier.fit(reference)
    assert classifier.inflation > 1.1  # the folds widen the null beyond Mann-Whitney's
    rng = np.random.default_rng(103)
    results = [classifier.evaluate(_table(rng, 300, 0.7)) for _ in range(windows)]
    assert all(r is not None for r in results)
    alarms = sum(r.detected for r in results if r is not None)
    assert alarms <= stats.binom.ppf(0.99, windows, alpha), alarms
    assert abs(float(np.mean([r.score for r in results if r is not None])) - 0.5) < 0.03


def test_pca_threshold_comes_from_rows_it_was_not_fitted_on(reference: FeatureTable) -> None:
    pca = PCAReconstructionDrift()
    pca.fit(reference)
    encoded = FeatureEncoder().fit(reference).transform(reference)
    fitted_rows, held_out = pca.errors(encoded[0::2]), pca.errors(encoded[1::2])
    lower, upper = pca.thresholds(WINDOW)
    assert lower < float(np.mean(held_out)) < upper
    assert float(np.mean(fitted_rows)) < float(np.mean(held_out))  # in-sample errors are biased low
    assert 0 < pca.n_components < encoded.shape[1]


@pytest.mark.parametrize("variance_share", [0.1, 0.65, 0.95])
@pytest.mark.parametrize("columns", [8, 60])
def test_errors_are_the_lengths_of_the_rows_less_their_reconstruction(
    variance_share: float, columns: int
) -> None:
    """Whichever product computes them (the discarded vectors when more than a third of the
    columns are kept, the kept ones otherwise), the errors are the residuals' lengths."""
    rng = np.random.default_rng(106)
    mixing = rng.normal(size=(columns, columns)) * (rng.random(columns) < 0.3)  # some correlated
    x = rng.normal(size=(3000, columns)) @ (np.eye(columns) + mixing)
    names = [f"x{i}" for i in range(columns)]
    table = FeatureTable(dict.fromkeys(names, "numerical"), {n: x[:, i] for i, n in enumerate(names)}, 3000)
    pca = PCAReconstructionDrift(variance_share=variance_share)
    pca.fit(table)
    encoded = FeatureEncoder().fit(table).transform(table)
    centred = encoded - encoded[0::2].mean(axis=0)
    kept = pca._components
    assert kept is not None
    residual = centred - centred @ kept @ kept.T
    assert np.allclose(pca.errors(encoded), np.linalg.norm(residual, axis=1), rtol=1e-9, atol=1e-12)
    assert 0 < pca.n_components < columns


def test_domain_classifier_runs_every_k_windows(reference: FeatureTable) -> None:
    classifier = DomainClassifierDrift(every_windows=3, max_rows=100, folds=2)
    classifier.fit(reference)
    rng = np.random.default_rng(104)
    ran = [classifier.evaluate(_table(rng, 100, 0.7)) is not None for _ in range(7)]
    assert ran == [True, False, False, True, False, False, True]


def test_invalid_settings_and_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="alpha"):
        PCAReconstructionDrift(alpha=0.0)
    with pytest.raises(ValueError, match="variance_share"):
        PCAReconstructionDrift(variance_share=1.0)
    with pytest.raises(ValueError, match="every_windows"):
        DomainClassifierDrift(every_windows=0)
    with pytest.raises(RuntimeError, match="before fit"):
        PCAReconstructionDrift().errors(np.zeros((1, 2)))
    one_column = FeatureTable({"x": "numerical"}, {"x": np.arange(100.0)}, 100)
    with pytest.raises(ValueError, match="at least 2 encoded columns"):
        PCAReconstructionDrift().fit(one_column)


def test_extreme_values_never_overflow_and_missing_ones_count_as_the_mean() -> None:
    rng = np.random.default_rng(105)
    x = rng.normal(size=(500, 2))
    x[::50, 0] = 1e308  # hostile but finite: the mean and the squares would overflow
    table = FeatureTable({"a": "numerical", "b": "numerical"}, {"a": x[:, 0], "b": x[:, 1]}, 500)
    encoded = FeatureEncoder().fit(table).transform(table)
    assert np.all(np.isfinite(encoded)) and np.max(np.abs(encoded)) <= 1000.0
    pca = PCAReconstructionDrift()
    pca.fit(table)
    window = FeatureTable(
        {"a": "numerical", "b": "numerical"}, {"a": np.full(100, np.nan), "b": x[:100, 1]}, 100
    )
    result = pca.evaluate(window)
    assert np.isfinite(result.score) and result.lower_threshold is not None


def _encoded_value_by_value(encoder: FeatureEncoder, table: FeatureTable) -> np.ndarray:
    """The encoding spelled out one value at a time (the oracle of the vectorized one)."""
    rows = []
    for row in range(table.n_rows):
        encoded = []
        for name, (mean, scale) in encoder._scales.items():
            value = float(table.columns[name][row]) if name in table.columns else np.nan
            with np.errstate(over="ignore", invalid="ignore"):
                score = float(np.clip((np.float64(value) - mean) / scale, -1000.0, 1000.0))
            encoded.append(0.0 if np.isnan(score) else score)
        for name, categories in encoder._categories.items():
            value = table.columns[name][row] if name in table.columns else None
            text = None if value is None else str(value)
            encoded.extend(1.0 if text == category else 0.0 for category in categories)
        rows.append(encoded)
    return np.array(rows).reshape(table.n_rows, encoder.width)


@pytest.mark.parametrize("categories", ["strings", "mixed_types"])
def test_the_encoding_equals_one_value_at_a_time(categories: str) -> None:
    """Standardized numbers (missing, huge and absent features included) and one-hot categories;
    a category given as 1, 1.0 or True is its text ("1", "1.0", "True"), a missing one no column."""
    rng = np.random.default_rng(106)
    labels: list[object] = ["a", "b", "c", None]
    if categories == "mixed_types":
        labels += [1, 1.0, True, "1", "True"]

    def table(n: int, with_b: bool = True) -> FeatureTable:
        a = rng.normal(size=n)
        a[::7] = np.nan
        a[::13] = 1e308
        picks = rng.integers(0, len(labels), size=n)
        columns: dict[str, np.ndarray] = {"a": a, "c": np.array([labels[i] for i in picks], dtype=object)}
        kinds = {"a": "numerical", "c": "categorical"}
        if with_b:
            columns["b"], kinds["b"] = rng.gamma(2.0, size=n), "numerical"
        return FeatureTable(kinds, columns, n)  # type: ignore[arg-type]

    encoder = FeatureEncoder(max_categories=6).fit(table(800))
    for window in (table(300), table(50, with_b=False)):
        assert np.array_equal(encoder.transform(window), _encoded_value_by_value(encoder, window))
