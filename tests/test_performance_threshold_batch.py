"""The vectorised bootstrap gives the thresholds of the per-resample loop, for every statistic the
collector fits: binary realized metrics, CBPE's estimate, multiclass realized and estimated metrics,
regression errors and DLE's estimate, on seeded data, windows where a metric is undefined included."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import pytest

import detectors.performance as performance
import detectors.performance_threshold as performance_threshold
from detectors.base import BatchStatistic
from detectors.cbpe import CBPE, expected_roc_auc
from detectors.dle import expected_error_scores, expected_metrics
from detectors.multiclass_cbpe import MulticlassCBPE
from detectors.performance import PerformanceEvaluator, Scalar, Task, class_key, class_keys
from detectors.performance_threshold import (
    PerformanceThreshold,
    PerformanceThresholds,
    Statistic,
    per_resample,
)

Rows = npt.NDArray[np.intp]
FITTER = PerformanceThresholds(alpha=0.01, resamples=400, seed=7)


def _assert_same(
    batch: BatchStatistic, one: Statistic, n_rows: int, window: int
) -> dict[str, PerformanceThreshold]:
    """Both statistics give the same values (to 1e-9, undefined in the same resamples) and both
    fits the same metrics and thresholds; returns the batch fit's."""
    rows = np.random.default_rng(0).integers(0, n_rows, (60, window))
    many, looped = batch(rows), per_resample(one)(rows)
    for metric, values in many.items():
        expected = looped.get(metric, np.full(len(rows), np.nan))
        np.testing.assert_allclose(values, expected, rtol=0, atol=1e-9, equal_nan=True, err_msg=metric)
    assert set(looped) <= set(many)
    fast = FITTER.fit(batch, n_rows, window)
    slow = FITTER.fit(per_resample(one), n_rows, window)
    assert set(fast) == set(slow)
    for metric, threshold in slow.items():
        assert fast[metric].bound == threshold.bound
        assert fast[metric].value == pytest.approx(threshold.value, abs=1e-9), metric
    return fast


def _evaluated(
    task: Task, labels: list[Scalar], predicted: list[Scalar], p: npt.NDArray[np.float64] | None
) -> Statistic:
    def one(rows: Rows) -> Mapping[str, float | None]:
        chosen = None if p is None else p[rows]
        picked = [labels[i] for i in rows], [predicted[i] for i in rows]
        return PerformanceEvaluator(task).evaluate(*picked, chosen).metrics

    return one


def _binary(n: int, seed: int) -> tuple[list[Scalar], list[Scalar], npt.NDArray[np.float64]]:
    rng = np.random.default_rng(seed)
    p = np.round(1 / (1 + np.exp(-2 * rng.normal(0.0, 2.0, n))), 3)  # ties among the probabilities
    labels: list[Scalar] = [int(v) for v in rng.random(n) < p]
    predicted: list[Scalar] = [int(v) for v in p >= 0.5]
    return labels, predicted, p


def test_resamples_are_drawn_as_one_call_per_resample_would_draw_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(performance_threshold, "CHUNK_BYTES", 8 * 37 * 3)  # 3 resamples a chunk
    seen: list[Rows] = []

    def record(rows: Rows) -> dict[str, npt.NDArray[np.float64]]:
        seen.append(rows)
        return {"accuracy": np.ones(len(rows))}

    PerformanceThresholds(alpha=0.01, resamples=200, seed=3).fit(record, 1000, 37)
    rng = np.random.default_rng(3)
    expected = np.stack([rng.integers(0, 1000, 37) for _ in range(200)])
    assert [len(rows) for rows in seen] == [3] * 66 + [2]
    np.testing.assert_array_equal(np.concatenate(seen), expected)


@pytest.mark.parametrize("probabilities", ["tied", "distinct", "none", "some_missing"])
@pytest.mark.parametrize("max_tie_cells", [0, 2_000_000], ids=["second_sort", "per_rank"])
def test_binary_realized_thresholds_equal_the_per_resample_loop(
    probabilities: str, max_tie_cells: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(performance, "MAX_TIE_CELLS", max_tie_cells)
    labels, predicted, p = _binary(3000, 1)
    proba: npt.NDArray[np.float64] | None = p.copy()
    if probabilities == "distinct":  # a few ties hold both labels: counted per tied rank
        proba = np.round(1 / (1 + np.exp(-2 * np.random.default_rng(2).normal(0.0, 2.0, 3000))), 5)
    elif probabilities == "none":
        proba = None
    elif probabilities == "some_missing":
        assert proba is not None
        proba[::50] = np.nan  # 2% missing: most windows of 200 hold one, so no ROC AUC nor log loss
    batch = PerformanceEvaluator("binary_classification").on_resamples(labels, predicted, proba)
    fitted = _assert_same(batch, _evaluated("binary_classification", labels, predicted, proba), 3000, 200)
    assert {"precision", "recall", "f1"} <= set(fitted)
    assert ("roc_auc" in fitted) == (probabilities in ("tied", "distinct"))


def test_roc_auc_undefined_in_most_windows_gets_no_threshold_either_way() -> None:
    labels, predicted, p = _binary(5000, 2)
    labels = [0] * 5000
    labels[::1000] = [1] * 5  # a window of 100 holds no positive nine times in ten
    batch = PerformanceEvaluator("binary_classification").on_resamples(labels, predicted, p)
    fitted = _assert_same(batch, _evaluated("binary_classification", labels, predicted, p), 5000, 100)
    assert "roc_auc" not in fitted and "precision" in fitted


@pytest.mark.parametrize("calibrated", [True, False])
def test_cbpe_estimated_thresholds_equal_the_per_resample_loop(calibrated: bool) -> None:
    labels, predicted, p = _binary(4000, 3)
    cbpe = CBPE(calibration="isotonic" if calibrated else "none")
    cbpe.fit(p, np.array(labels, dtype=np.float64))
    positive = np.array(predicted) == 1

    def one(rows: Rows) -> Mapping[str, float | None]:
        return cbpe.estimate(p[rows], positive[rows]).metrics

    fitted = _assert_same(cbpe.on_resamples(p, positive), one, 4000, 250)
    assert set(fitted) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    decided = _assert_same(cbpe.on_resamples(p), lambda rows: cbpe.estimate(p[rows]).metrics, 4000, 250)
    assert "roc_auc" in decided


def test_cbpe_roc_auc_undefined_in_most_windows_gets_no_threshold() -> None:
    p = np.zeros(2000)
    p[::400] = 0.7  # a window of 50 has no expected positive nine times in ten
    cbpe = CBPE()

    def one(rows: Rows) -> Mapping[str, float | None]:
        return cbpe.estimate(p[rows]).metrics

    assert "roc_auc" not in _assert_same(cbpe.on_resamples(p), one, 2000, 50)


def test_multiclass_realized_thresholds_equal_the_per_resample_loop() -> None:
    rng = np.random.default_rng(4)
    classes = np.array(["a", "b", "c", "rare"])
    labels: list[Scalar] = list(rng.choice(classes, 3000, p=[0.5, 0.3, 0.19, 0.01]))
    predicted: list[Scalar] = [y if rng.random() < 0.8 else str(rng.choice(classes)) for y in labels]
    batch = PerformanceEvaluator("multiclass_classification").on_resamples(labels, predicted)
    one = _evaluated("multiclass_classification", labels, predicted, None)
    fitted = _assert_same(batch, one, 3000, 150)  # "rare" is seen in some resamples only
    assert {"f1_macro", "recall_weighted", "accuracy"} <= set(fitted)


@pytest.mark.parametrize("with_predictions", [True, False])
def test_multiclass_estimated_thresholds_equal_the_per_resample_loop(with_predictions: bool) -> None:
    rng = np.random.default_rng(5)
    raw = rng.dirichlet([2.0, 1.0, 0.5], size=3000)
    raw[::10] = np.round(raw[::10], 1)  # tied scores
    actual = np.array([rng.choice(3, p=row / row.sum()) for row in raw]).astype(str)
    cbpe = MulticlassCBPE(calibration="isotonic")
    cbpe.fit(raw, ("0", "1", "2"), actual)
    predicted = [str(v) for v in rng.integers(0, 3, 3000)] if with_predictions else None

    def one(rows: Rows) -> Mapping[str, float | None]:
        return cbpe.estimate(raw[rows], None if predicted is None else [predicted[i] for i in rows]).metrics

    fitted = _assert_same(cbpe.on_resamples(raw, predicted), one, 3000, 200)
    assert {"roc_auc_ovr", "f1_weighted", "accuracy"} <= set(fitted)


def test_regression_realized_and_dle_thresholds_equal_the_per_resample_loop() -> None:
    rng = np.random.default_rng(6)
    y = rng.normal(0.0, 3.0, 3000)
    y_hat = y + rng.normal(0.0, 1.0, 3000) * (0.2 + np.abs(y) / 3)
    labels: list[Scalar] = [float(v) for v in y]
    predictions: list[Scalar] = [float(v) for v in y_hat]
    batch = PerformanceEvaluator("regression").on_resamples(labels, predictions)
    fitted = _assert_same(batch, _evaluated("regression", labels, predictions, None), 3000, 120)
    assert {"mae", "mse", "rmse"} <= set(fitted) and fitted["mae"].bound == "upper"
    absolute, squared = np.abs(y - y_hat), (y - y_hat) ** 2

    def one(rows: Rows) -> Mapping[str, float | None]:
        return expected_metrics(absolute[rows], squared[rows])

    def many(rows: Rows) -> Mapping[str, npt.NDArray[np.float64]]:
        return expected_error_scores(absolute[rows], squared[rows])

    assert set(_assert_same(many, one, 3000, 120)) == {"mae", "mse", "rmse"}


def test_thresholds_do_not_depend_on_the_chunk_size(monkeypatch: pytest.MonkeyPatch) -> None:
    labels, predicted, p = _binary(2000, 8)
    batch = PerformanceEvaluator("binary_classification").on_resamples(labels, predicted, p)
    whole = FITTER.fit(batch, 2000, 100)
    monkeypatch.setattr(performance_threshold, "CHUNK_BYTES", 8 * 100 * 7)
    chunked = FITTER.fit(batch, 2000, 100)
    assert whole == chunked


def test_a_statistic_of_one_value_per_call_is_refused() -> None:
    correct = np.random.default_rng(9).random(500) < 0.9

    def wrong(rows: Rows) -> Mapping[str, npt.NDArray[np.float64]]:
        return {"accuracy": np.asarray(correct[rows].mean())}  # one value for all resamples

    with pytest.raises(ValueError, match="accuracy of shape"):
        FITTER.fit(wrong, 500, 50)


def _trapezoids(p: npt.NDArray[np.float64], score: npt.NDArray[np.float64]) -> float | None:
    """The expected ROC AUC as first written: one trapezoid per run of tied scores."""
    positives, negatives = float(np.sum(p)), float(np.sum(1.0 - p))
    if positives <= 0.0 or negatives <= 0.0:
        return None
    order = np.argsort(-score, kind="stable")
    tp, fp = np.cumsum(p[order]), np.cumsum(1.0 - p[order])
    last_of_tie = np.r_[score[order][1:] != score[order][:-1], True]
    tpr = np.r_[0.0, tp[last_of_tie] / positives]
    fpr = np.r_[0.0, fp[last_of_tie] / negatives]
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


@pytest.mark.parametrize("scored", ["by_p", "by_other_score"])
def test_expected_roc_auc_equals_one_trapezoid_per_tie(scored: str) -> None:
    rng = np.random.default_rng(10)
    for n in (1, 2, 7, 300):
        p = np.round(rng.random(n), 1)  # many ties
        score = p if scored == "by_p" else np.round(rng.random(n), 1)
        expected = _trapezoids(p, score)
        got = expected_roc_auc(p, None if scored == "by_p" else score)
        assert (got is None) == (expected is None)
        if expected is not None:
            assert got == pytest.approx(expected, abs=1e-12)
    assert expected_roc_auc(np.zeros(5)) is None and expected_roc_auc(np.ones(5)) is None


def test_class_keys_convert_each_distinct_value_once_to_the_same_keys() -> None:
    big = 10**20
    values: list[Scalar] = [1, True, 1.0, "1", 0, False, -0.0, 2.5, "a", float("nan"), big, 1e20, 2**53 + 1]
    expected = ["1", "1", "1", "1", "0", "0", "0", "2.5", "a", "nan", str(big), str(big), "9007199254740993"]
    assert list(class_keys(values)) == [class_key(v) for v in values] == expected
