"""The model-health detectors keep river's shape: parameters under their own names, reset(),
frozen results, a runnable example in the module docstring."""

from __future__ import annotations

import doctest
import importlib
import inspect
from collections.abc import Callable
from typing import Any

import pytest

from collector.label_join import LabelJoinStore
from detectors.cbpe import CBPE
from detectors.concept_drift import ConceptDriftDetector
from detectors.fairness import FairnessEvaluator
from detectors.performance import PerformanceEvaluator
from detectors.proxy_metrics import ProxyMetrics

FACTORIES: dict[str, Callable[[], Any]] = {
    "label_join": lambda: LabelJoinStore(max_entries=7, max_age_seconds=9.0, max_tombstones=3),
    "performance": lambda: PerformanceEvaluator("regression", "yes"),
    "concept_drift": lambda: ConceptDriftDetector("ddm", 0.05, 0.02, 50, {"warm_start": 40}),
    "proxy_metrics": lambda: ProxyMetrics(0.7),
    "cbpe": lambda: CBPE(0.4, "none"),
    "fairness": lambda: FairnessEvaluator(["region"], 5, 10),
}

MODULES = (
    "collector.label_join",
    "detectors.performance",
    "detectors.concept_drift",
    "detectors.proxy_metrics",
    "detectors.cbpe",
    "detectors.calibration",
    "detectors.fairness",
)


@pytest.mark.parametrize("name", FACTORIES)
def test_constructor_parameters_are_stored_under_their_own_names(name: str) -> None:
    detector = FACTORIES[name]()
    for parameter in inspect.signature(type(detector).__init__).parameters.values():
        if parameter.name == "self":
            continue
        assert hasattr(detector, parameter.name), parameter.name
        assert repr(getattr(detector, parameter.name))[:20] in repr(detector), parameter.name


@pytest.mark.parametrize("name", FACTORIES)
def test_reset_exists_and_returns_nothing(name: str) -> None:
    detector = FACTORIES[name]()
    assert detector.reset() is None


@pytest.mark.parametrize("module_name", MODULES)
def test_the_module_example_runs(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert module.__doc__ is not None and ">>>" in module.__doc__
    failures, tried = doctest.testmod(module, verbose=False)
    assert tried > 0 and failures == 0
