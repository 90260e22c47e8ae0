"""One conformance test for every detector in ``detectors/`` (river's detector shape).

Each detector is described once in ``CASES`` below -- the only list to extend
when a detector is added: how to build it with valid parameters, which
parameter values are invalid, and how to drive it with seeded data to a
result. Every case must satisfy the same rules:

* ``repr`` is ``ClassName(param=value, ...)`` and names every constructor parameter;
* parameters are stored under their own names;
* an invalid parameter raises ``ValueError`` whose message names the bad value;
* after ``reset()`` the detector behaves exactly like a new one;
* the same seed gives the same result (compared by ``repr``, so NaN equals NaN).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from detectors.base import FeatureKind, FeatureTable
from detectors.cbpe import CBPE
from detectors.concept_drift import ConceptDriftDetector
from detectors.data_drift import DataDriftDetector
from detectors.data_quality import DataQualityDetector
from detectors.dle import DirectLossEstimator
from detectors.domain_classifier import DomainClassifierDrift
from detectors.embedding_drift import EmbeddingDrift
from detectors.feature_encoding import FeatureEncoder
from detectors.multiclass_cbpe import MulticlassCBPE
from detectors.multivariate_drift import PCAReconstructionDrift
from detectors.performance import PerformanceEvaluator
from detectors.performance_threshold import PerformanceThresholds
from detectors.proxy_metrics import ProxyMetrics

Drive = Callable[[Any, np.random.Generator], object]


def bad(name: str, value: object, shown: object = None) -> tuple[str, object, str]:
    """An invalid parameter; the message must contain ``repr(shown)`` (default: the value's)."""
    return (name, value, repr(value if shown is None else shown))


@dataclass(frozen=True)
class ConformanceCase:
    """How to build, break and drive one detector class."""

    id: str
    make: Callable[..., Any]
    params: Mapping[str, object]
    bad_params: tuple[tuple[str, object, str], ...]
    """(parameter, invalid value, how the error message shows it)."""
    drive: Drive


def _table(rng: np.random.Generator, n: int, shift: float = 0.0) -> FeatureTable:
    kinds: dict[str, FeatureKind] = {"x": "numerical", "y": "numerical", "colour": "categorical"}
    x = rng.normal(shift, 1.0, n)
    x[rng.random(n) < 0.05] = np.nan
    columns = {
        "x": x,
        "y": rng.gamma(2.0, 1.0, n),
        "colour": rng.choice(np.array(["red", "green", "blue", None], dtype=object), n),
    }
    return FeatureTable(kinds, columns, n, type_errors={"x": 3})


def _drive_table_detector(detector: Any, rng: np.random.Generator) -> object:
    detector.fit(_table(rng, 3000))
    return [
        detector.evaluate(_table(rng, size, shift)) for size, shift in ((500, 0.0), (700, 0.4), (500, 0.4))
    ]


def _drive_performance(detector: PerformanceEvaluator, rng: np.random.Generator) -> object:
    results = []
    for _ in range(2):
        p = rng.random(200)
        labels = [str(int(v)) for v in rng.random(200) < p]
        predictions = [str(int(v)) for v in p > 0.5]
        results.append(detector.evaluate(labels, predictions, p))
    return results


def _drive_thresholds(detector: PerformanceThresholds, rng: np.random.Generator) -> object:
    correct = rng.random(3000) < 0.9
    error = rng.normal(0.0, 1.0, 3000)
    return detector.fit(
        lambda rows: {
            "accuracy": correct[rows].mean(axis=1),
            "rmse": np.sqrt(np.mean(error[rows] ** 2, axis=1)),
        },
        3000,
        500,
    )


def _drive_cbpe(detector: CBPE, rng: np.random.Generator) -> object:
    p = rng.random(2000)
    detector.fit(p, (rng.random(2000) < p).astype(float))
    return [detector.estimate(rng.random(300)) for _ in range(2)]


def _drive_multiclass_cbpe(detector: MulticlassCBPE, rng: np.random.Generator) -> object:
    p = rng.dirichlet([1.0, 1.0, 1.0], 2000)
    labels = np.array(["a", "b", "c"])[(rng.random(2000)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)]
    detector.fit(p, ("a", "b", "c"), labels)
    return [detector.estimate(rng.dirichlet([1.0, 2.0, 3.0], 300)) for _ in range(2)]


def _drive_dle(detector: DirectLossEstimator, rng: np.random.Generator) -> object:
    reference = _table(rng, 500)
    y_hat = np.nan_to_num(reference.numerical("x"))
    detector.fit(reference, y_hat, y_hat + rng.normal(size=500) * reference.numerical("y"))
    window = _table(rng, 100, 0.4)
    return detector.estimate(window, np.nan_to_num(window.numerical("x")))


def _drive_embedding(detector: EmbeddingDrift, rng: np.random.Generator) -> object:
    detector.fit(rng.normal(size=(300, 40)))
    return [detector.evaluate(rng.normal(shift, 1.0, size=(100, 40))) for shift in (0.0, 0.3)]


def _drive_encoder(detector: FeatureEncoder, rng: np.random.Generator) -> object:
    return detector.fit(_table(rng, 300)).transform(_table(rng, 50, 0.4)).round(12).tolist()


def _drive_proxy(detector: ProxyMetrics, rng: np.random.Generator) -> object:
    matrix = rng.dirichlet([1.0, 1.0, 1.0], 200)
    return detector.evaluate(matrix, ["a", "b", "c"])


def _drive_concept(detector: ConceptDriftDetector, rng: np.random.Generator) -> object:
    results = []
    for rate in (0.1, 0.1, 0.4):
        results.append(detector.update((rng.random(300) < rate).astype(float), 0.1))
    return results


CASES: tuple[ConformanceCase, ...] = (
    ConformanceCase(
        "data_drift_calibrated",
        DataDriftDetector,
        {
            "mode": "calibrated",
            "alpha": 0.05,
            "persistence": 2,
            "drift_share": 0.5,
            "methods": {"y": "psi"},
            "seed": 4,
            "pooled_windows": 2,
        },
        (
            bad("mode", "strict"),
            bad("alpha", 1.5),
            bad("persistence", 0),
            bad("drift_share", 0.0),
            bad("methods", {"x": "tvd"}, "tvd"),
            bad("pooled_windows", 0),
        ),
        _drive_table_detector,
    ),
    ConformanceCase(
        "data_drift_evidently",
        DataDriftDetector,
        {"mode": "evidently", "alpha": 0.01, "persistence": 1, "drift_share": 0.3, "methods": {}, "seed": 0},
        (bad("alpha", 0.0), bad("persistence", 1.5), bad("drift_share", 1.2)),
        _drive_table_detector,
    ),
    ConformanceCase(
        "data_quality",
        DataQualityDetector,
        {"bounds": {"x": (-3.0, 3.0)}},
        (bad("bounds", {"x": (2.0, -2.0)}, (2.0, -2.0)),),
        _drive_table_detector,
    ),
    ConformanceCase(
        "performance",
        PerformanceEvaluator,
        {"task": "binary_classification", "positive_class": "1"},
        (bad("task", "ranking"), bad("positive_class", "")),
        _drive_performance,
    ),
    ConformanceCase(
        "cbpe",
        CBPE,
        {"threshold": 0.5, "calibration": "isotonic"},
        (bad("threshold", 1.0), bad("calibration", "platt")),
        _drive_cbpe,
    ),
    ConformanceCase(
        "performance_thresholds",
        PerformanceThresholds,
        {"alpha": 0.05, "resamples": 100, "seed": 3},
        (bad("alpha", 0.5), bad("resamples", 10)),
        _drive_thresholds,
    ),
    ConformanceCase(
        "multiclass_cbpe",
        MulticlassCBPE,
        {"calibration": "auto"},
        (bad("calibration", "platt"),),
        _drive_multiclass_cbpe,
    ),
    ConformanceCase(
        "pca_reconstruction",
        PCAReconstructionDrift,
        {"alpha": 0.05, "variance_share": 0.7, "seed": 2},
        (bad("alpha", 1.0), bad("variance_share", 0.0)),
        _drive_table_detector,
    ),
    ConformanceCase(
        "domain_classifier",
        DomainClassifierDrift,
        {"alpha": 0.05, "every_windows": 1, "max_rows": 200, "folds": 2, "null_runs": 2, "seed": 1},
        (
            bad("alpha", 0.0),
            bad("every_windows", 0),
            bad("max_rows", 10),
            bad("folds", 1),
            bad("null_runs", 1),
        ),
        _drive_table_detector,
    ),
    ConformanceCase(
        "dle",
        DirectLossEstimator,
        {"max_iter": 20, "learning_rate": 0.2, "max_leaf_nodes": 8, "seed": 3},
        (bad("max_iter", 0), bad("learning_rate", 1.5), bad("max_leaf_nodes", 1)),
        _drive_dle,
    ),
    ConformanceCase(
        "embedding_drift",
        EmbeddingDrift,
        {"alpha": 0.05, "max_reference": 200, "max_rows": 50, "max_dims": 16, "permutations": 40, "seed": 2},
        (
            bad("alpha", 1.0),
            bad("max_reference", 5),
            bad("max_rows", 5),
            bad("max_dims", 0),
            bad("permutations", 10),
        ),
        _drive_embedding,
    ),
    ConformanceCase(
        "feature_encoder",
        FeatureEncoder,
        {"max_categories": 2},
        (bad("max_categories", 0),),
        _drive_encoder,
    ),
    ConformanceCase(
        "proxy_metrics",
        ProxyMetrics,
        {"confidence_threshold": 0.7},
        (bad("confidence_threshold", 0.0),),
        _drive_proxy,
    ),
    ConformanceCase(
        "concept_drift",
        ConceptDriftDetector,
        {"detector": "adwin", "alpha": 0.001, "tolerance": 0.01, "min_events": 30, "detector_params": {}},
        (bad("detector", "kswin"), bad("alpha", 2.0), bad("tolerance", -1.0), bad("min_events", 1)),
        _drive_concept,
    ),
)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_repr_names_the_class_and_every_parameter(case: ConformanceCase) -> None:
    detector = case.make(**case.params)
    text = repr(detector)
    assert text.startswith(f"{type(detector).__name__}(") and text.endswith(")")
    for name, value in case.params.items():
        assert f"{name}={value!r}" in text or f"{name}={value}" in text, (name, text)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_parameters_are_stored_under_their_own_names(case: ConformanceCase) -> None:
    detector = case.make(**case.params)
    for name, value in case.params.items():
        assert getattr(detector, name) == value


@pytest.mark.parametrize(
    ("case", "name", "value", "shown"),
    [(case, *bad_param) for case in CASES for bad_param in case.bad_params],
    ids=[f"{case.id}-{bad_param[0]}" for case in CASES for bad_param in case.bad_params],
)
def test_bad_parameter_raises_value_error_naming_the_value(
    case: ConformanceCase, name: str, value: object, shown: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(shown)):
        case.make(**{**case.params, name: value})


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_reset_returns_to_a_new_detectors_behaviour(case: ConformanceCase) -> None:
    detector = case.make(**case.params)
    first = repr(case.drive(detector, np.random.default_rng(1)))
    case.drive(detector, np.random.default_rng(2))
    detector.reset()
    assert repr(case.drive(detector, np.random.default_rng(1))) == first
    assert repr(case.drive(case.make(**case.params), np.random.default_rng(1))) == first


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_same_seed_same_result(case: ConformanceCase) -> None:
    one = repr(case.drive(case.make(**case.params), np.random.default_rng(3)))
    two = repr(case.drive(case.make(**case.params), np.random.default_rng(3)))
    other = repr(case.drive(case.make(**case.params), np.random.default_rng(4)))
    assert one == two
    assert one != other
