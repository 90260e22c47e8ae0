"""Direct loss estimation through the pipeline: a regressor with a labelled reference file gets
estimated MAE/MSE/RMSE per window, which follow its realized errors under covariate shift."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from driftline.schema import Prediction, encode

from collector.config import parse_config
from collector.dlq import MemoryDeadLetterSink
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from exporters.store import MetricStore

MV = {"model": "m", "model_version": "1"}


def _rows(rng: np.random.Generator, n: int, spread: float) -> pd.DataFrame:
    """The model predicts the mean of y exactly; the noise grows with |x0|."""
    x0, x1 = rng.normal(0.0, spread, n), rng.normal(0.0, 1.0, n)
    prediction = 2.0 * x0 - x1
    label = prediction + rng.normal(size=n) * (0.3 + np.abs(x0))
    return pd.DataFrame({"x0": x0, "x1": x1, "prediction": prediction, "label": label})


def _store(tmp_path: Path, task: str | None) -> tuple[MetricStore, pd.DataFrame]:
    rng = np.random.default_rng(60)
    path = tmp_path / "reference.parquet"
    _rows(rng, 5000, 1.0).to_parquet(path)
    window = _rows(rng, 1000, 1.6)
    model: dict[str, object] = {"references": {"1": {"path": str(path)}}}
    if task is not None:
        model["task"] = task
    config = parse_config({"models": {"m": model}})
    store = MetricStore()
    pipeline = Pipeline(config, store, MemoryDeadLetterSink(), event_time=True)
    events = [
        Prediction(
            event_id=f"e{i}",
            model="m",
            model_version="1",
            features={"x0": float(row.x0), "x1": float(row.x1)},
            prediction=float(row.prediction),
            timestamp=1_700_000_000.0 + i * 0.01,
        )
        for i, row in enumerate(window.itertuples())
    ]
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
