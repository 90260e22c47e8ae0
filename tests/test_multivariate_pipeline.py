"""Multivariate drift through the pipeline: which tests run, and the metrics they export."""

from __future__ import annotations

import pytest
from driftline.schema import encode

from collector.config import parse_config
from collector.dlq import MemoryDeadLetterSink
from collector.errors import ConfigError
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from exporters.store import MetricStore
from tests.streams import predictions

PCA = {"model": "m", "model_version": "1", "method": "pca_reconstruction"}
CLASSIFIER = {**PCA, "method": "domain_classifier"}


def _run(raw_config: dict[str, object], shifted_windows: int) -> tuple[Pipeline, MetricStore]:
    store = MetricStore()
    pipeline = Pipeline(parse_config(raw_config), store, MemoryDeadLetterSink(), event_time=True)
    events = list(predictions(5000 + 2000, seed=31))
    events += list(predictions(1000 * shifted_windows, seed=32, start=7000, shifted=("n1", "n5")))
    pipeline.process([RawMessage(encode(e), "test", 0, i, 0.0) for i, e in enumerate(events)])
    return pipeline, store


def test_pca_runs_by_default_and_flags_only_the_shifted_windows() -> None:
    pipeline, store = _run({}, shifted_windows=2)
    assert pipeline.states[("m", "1")].windows_evaluated == 4
    assert store.get("driftline_multivariate_drift_windows_total", PCA) == 2.0
    assert store.get("driftline_multivariate_drift_detected", PCA) == 1.0
    score = store.get("driftline_multivariate_drift_score", PCA)
    assert isinstance(score, float) and score > 0.0
    assert store.get("driftline_multivariate_drift_score", CLASSIFIER) is None  # off by default
    status = pipeline.states[("m", "1")].status()["multivariate_drift"]
    assert list(status) == ["pca_reconstruction"]  # type: ignore[call-overload]
    assert status["pca_reconstruction"]["score"] == score  # type: ignore[index]
    assert status["pca_reconstruction"]["detected"] is True  # type: ignore[index]


def test_the_domain_classifier_runs_when_enabled_every_k_windows() -> None:
    config = {
        "defaults": {
            "drift": {
                "multivariate": {
                    "pca": False,
                    "domain_classifier": True,
                    "classifier_every_windows": 2,
                    "classifier_max_rows": 300,
                }
            }
        }
    }
    _, store = _run(config, shifted_windows=1)
    # Windows 1 and 3 are tested: window 3 is the shifted one.
    assert store.get("driftline_multivariate_drift_windows_total", CLASSIFIER) == 1.0
    score = store.get("driftline_multivariate_drift_score", CLASSIFIER)
    assert isinstance(score, float) and score > 0.6
    assert store.get("driftline_multivariate_drift_score", PCA) is None


def test_bad_multivariate_settings_fail_at_load_with_the_key() -> None:
    with pytest.raises(ConfigError, match=r"defaults\.drift\.multivariate\.variance_share"):
        parse_config({"defaults": {"drift": {"multivariate": {"variance_share": 1.5}}}})
