"""Direct loss estimation through the pipeline: a regressor with a labelled reference file gets
estimated MAE/MSE/RMSE per window, which follow its realized errors under covariate shift."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from driftline.schema import encode

from collector.config import parse_config
from collector.dlq import MemoryDeadLetterSink
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from exporters.store import MetricStore
from tests.streams import regression_predictions, regression_rows

MV = {"model": "m", "model_version": "1"}


def _store(tmp_path: Path, task: str | None) -> tuple[MetricStore, pd.DataFrame]:
    rng = np.random.default_rng(60)
    path = tmp_path / "reference.parquet"
    regression_rows(rng, 5000, 1.0).to_parquet(path)
    window = regression_rows(rng, 1000, 1.6)
    model: dict[str, object] = {"references": {"1": {"path": str(path)}}}
    if task is not None:
        model["task"] = task
    config = parse_config({"models": {"m": model}})
    store = MetricStore()
    pipeline = Pipeline(config, store, MemoryDeadLetterSink(), event_time=True)
    events = regression_predictions(window)
    pipeline.process([RawMessage(encode(e), "t", 0, i, 0.0) for i, e in enumerate(events)])
    return store, window


def test_a_regressor_with_a_labelled_reference_gets_estimated_errors(tmp_path: Path) -> None:
    store, window = _store(tmp_path, "regression")
    error = window["label"] - window["prediction"]
    estimated = {
        metric: store.get("driftline_performance", {**MV, "metric": metric, "source": "estimated"})
        for metric in ("mae", "mse", "rmse")
    }
    assert estimated["mae"] == pytest.approx(float(np.mean(np.abs(error))), rel=0.08)
    assert estimated["rmse"] == pytest.approx(float(np.sqrt(np.mean(error**2))), rel=0.12)
    assert estimated["mse"] == pytest.approx(estimated["rmse"] ** 2)  # type: ignore[operator]


def test_a_model_not_configured_as_a_regressor_gets_no_estimate(tmp_path: Path) -> None:
    store, _ = _store(tmp_path, None)
    assert store.get("driftline_performance", {**MV, "metric": "mae", "source": "estimated"}) is None
