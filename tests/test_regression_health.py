"""DLE for a regressor without a registered reference: fitted on the labels joined to its automatic
reference, per-event expected errors feeding concept drift, and kept across a restart."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from driftline.schema import Label, Prediction, encode

from collector.auto_references import AutomaticReferences
from collector.checkpoints import Checkpointer
from collector.config import parse_config
from collector.dlq import MemoryDeadLetterSink
from collector.model_state import WindowListener
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from collector.state_store import LocalStateStore
from collector.window_history import WindowHistory
from detectors.concept_drift import ConceptDriftDetector
from exporters.html_report import HtmlReportWriter
from exporters.store import MetricStore
from tests.streams import regression_predictions, regression_rows

MV = {"model": "m", "model_version": "1"}
CONFIG = {"models": {"m": {"task": "regression", "reference_labels": 5000}}}
T0 = 1_700_000_000.0


def _predictions(rows: pd.DataFrame, start: int) -> list[Prediction | Label]:
    return list(regression_predictions(rows, start))


def _labels(rows: pd.DataFrame, start: int) -> list[Prediction | Label]:
    return [
        Label(event_id=f"e{start + i}", model="m", label=float(row.label), timestamp=T0 + 100.0 + i * 0.01)
        for i, row in enumerate(rows.itertuples())
    ]


def _reference_events(rng: np.random.Generator) -> list[Prediction | Label]:
    """5,000 predictions (the automatic reference), each followed by its label."""
    rows = regression_rows(rng, 5000, 1.0)
    pairs = zip(_predictions(rows, 0), _labels(rows, 0), strict=True)
    return [event for pair in pairs for event in pair]


def _messages(events: list[Prediction | Label], first: int = 0) -> list[RawMessage]:
    topics = {"prediction": "p", "label": "l"}
    return [RawMessage(encode(e), topics[e.type], 0, first + i, 0.0) for i, e in enumerate(events)]


def _pipeline(state: Path | None = None, listeners: tuple[WindowListener, ...] = ()) -> Pipeline:
    return Pipeline(
        parse_config(CONFIG),
        MetricStore(),
        MemoryDeadLetterSink(),
        event_time=True,
        listeners=listeners,
        automatic_references=None if state is None else AutomaticReferences(LocalStateStore(state), "g/"),
    )


def _estimated(pipeline: Pipeline, metric: str) -> float:
    value = pipeline.store.get("driftline_performance", {**MV, "metric": metric, "source": "estimated"})
    assert isinstance(value, float), metric
    return value


def test_dle_fitted_on_labels_joined_to_the_automatic_reference_estimates_the_window_mae() -> None:
    rng = np.random.default_rng(61)
    writer, history = HtmlReportWriter(), WindowHistory(keep=5)
    pipeline = _pipeline(listeners=(writer, history))
    window = regression_rows(rng, 1000, 1.6)  # covariate shift to inputs with larger errors; no labels yet
    pipeline.process(_messages(_reference_events(rng) + _predictions(window, 5000)))
    assert pipeline.states[("m", "1")].health.status()["dle_fitted"] is True
    error = window["label"] - window["prediction"]
    realized_mae = float(np.mean(np.abs(error)))
    large = regression_rows(np.random.default_rng(0), 100_000, 1.0)
    reference_mae = float(np.mean(np.abs(large["label"] - large["prediction"])))
    assert realized_mae > 1.3 * reference_mae  # the shift matters: a constant estimate would be far off
    assert _estimated(pipeline, "mae") == pytest.approx(realized_mae, rel=0.08)
    assert _estimated(pipeline, "rmse") == pytest.approx(float(np.sqrt(np.mean(error**2))), rel=0.12)
    thresholds = {
        metric: pipeline.store.get(
            "driftline_performance_threshold",
            {**MV, "metric": metric, "source": "estimated", "bound": "upper"},
        )
        for metric in ("mae", "mse", "rmse")
    }
    assert all(isinstance(v, float) for v in thresholds.values()), thresholds
    assert thresholds["mae"] == pytest.approx(reference_mae, rel=0.15)  # above the reference MAE, near it
    assert thresholds["mae"] > reference_mae  # type: ignore[operator]
    assert _estimated(pipeline, "mae") > thresholds["mae"]  # type: ignore[operator]
    status = json.loads(json.dumps(pipeline.status()))[0]["model_health"]  # as /api/v1/models serves it
    assert status["performance"]["estimated"] == pytest.approx(
        {metric: _estimated(pipeline, metric) for metric in ("mae", "mse", "rmse")}
    )
    page = writer.render("m", "1")
    assert page is not None
    section = page[page.index('<section id="driftline-estimated-performance"') :]
    section = section[: section.index("</section>")]
    assert "Direct loss estimation (DLE)" in section
    mae, threshold = _estimated(pipeline, "mae"), thresholds["mae"]
    assert f"<tr><td>mae</td><td>{mae:.4f}</td><td>above {threshold:.4f}</td><td>yes</td></tr>" in section
    rows = history.rows("m", "1") or []
    top = [r for r in rows if r["kind"] == "window" and not r["feature"] and not r["output"]]
    assert top[-1]["mse"] == _estimated(pipeline, "mse") and top[-1]["mse_threshold"] == thresholds["mse"]


def test_a_regressor_without_reference_labels_gets_no_estimate() -> None:
    rng = np.random.default_rng(62)
    pipeline = _pipeline()
    reference, window = regression_rows(rng, 5000, 1.0), regression_rows(rng, 1000, 1.0)
    pipeline.process(_messages(_predictions(reference, 0) + _predictions(window, 5000)))
    assert pipeline.states[("m", "1")].health.status()["dle_fitted"] is False
    assert pipeline.store.get("driftline_performance", {**MV, "metric": "mae", "source": "estimated"}) is None


def _concept_run(noise: float, seed: int = 63) -> tuple[Pipeline, pd.DataFrame]:
    """Reference with labels; a window of inputs where the model errs little; its labels with
    ``noise`` times the reference's noise (2: the concept changed)."""
    rng = np.random.default_rng(seed)
    pipeline = _pipeline()
    window = regression_rows(rng, 1000, 0.3, noise)
    pipeline.process(_messages(_reference_events(rng) + _predictions(window, 5000) + _labels(window, 5000)))
    return pipeline, window


def _constant_mae_gap_test(pipeline: Pipeline, window: pd.DataFrame) -> bool:
    """What the test says when the expected error is the reference MAE for every event (before DLE)."""
    reference = pipeline.states[("m", "1")].health.reference_performance
    assert reference is not None
    scale = reference.metrics["mae"]
    assert scale is not None
    errors = np.abs(window["label"] - window["prediction"]).to_numpy() / scale
    return ConceptDriftDetector("adwin").update(errors, 1.0).significant


def test_a_concept_shift_is_flagged_with_per_event_expected_errors_where_a_constant_mae_misses_it() -> None:
    pipeline, window = _concept_run(noise=2.0)
    assert pipeline.store.get("driftline_concept_drift_detected", {**MV, "detector": "gap_test"}) == 1.0
    assert not _constant_mae_gap_test(pipeline, window)  # realized MAE is still under the reference's
    assert len(pipeline.states[("m", "1")].health.expected_errors) == 0  # every label took its own


def test_a_covariate_shift_alone_is_no_concept_drift_with_per_event_expected_errors() -> None:
    pipeline, _ = _concept_run(noise=1.0, seed=64)
    assert pipeline.store.get("driftline_concept_drift_detected", {**MV, "detector": "gap_test"}) == 0.0
    assert pipeline.store.get("driftline_concept_drift_detected", {**MV, "detector": "adwin"}) == 0.0


def test_a_restart_between_a_window_and_its_labels_keeps_the_expected_errors(tmp_path: Path) -> None:
    rng = np.random.default_rng(65)
    window = regression_rows(rng, 1000, 0.3, 2.0)
    before = _reference_events(rng) + _predictions(window, 5000)
    after = _labels(window, 5000)

    uninterrupted = _pipeline(tmp_path / "a")
    uninterrupted.process(_messages(before + after))

    first = _pipeline(tmp_path / "b")
    first.process(_messages(before))
    store = LocalStateStore(tmp_path / "b")
    checkpointer = Checkpointer(first, store, first.store, prefix="g/t/", interval_seconds=1e9)
    partitions = [("p", 0), ("l", 0)]
    assert checkpointer.restore(partitions) == {}
    assert checkpointer.save({"p": {0: len(before)}, "l": {0: len(before)}})
    second = _pipeline(tmp_path / "b")
    restored = Checkpointer(second, store, second.store, prefix="g/t/", interval_seconds=1e9)
    assert restored.restore(partitions) == {("p", 0): len(before), ("l", 0): len(before)}
    assert len(second.states[("m", "1")].health.expected_errors) == 1000
    second.process(_messages(after, len(before)))

    def residuals(pipeline: Pipeline) -> list[float]:
        return list(pipeline.states[("m", "1")].health.concept.state()["residuals"])

    assert residuals(second) == residuals(uninterrupted)
    assert second.store.get("driftline_concept_drift_detected", {**MV, "detector": "gap_test"}) == 1.0


def test_an_old_snapshot_without_expected_errors_restores_and_falls_back_to_the_reference_mae(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(66)
    window = regression_rows(rng, 1000, 0.3, 2.0)
    first = _pipeline(tmp_path)
    first.process(_messages(_reference_events(rng) + _predictions(window, 5000)))
    snapshot = first.snapshot_partition(0)
    del snapshot["m"]["versions"]["1"]["health"]["expected_errors"]
    second = _pipeline(tmp_path)
    second.restore_partition(0, snapshot)
    health = second.states[("m", "1")].health
    assert len(health.expected_errors) == 0
    second.process(_messages(_labels(window, 5000)))
    assert health.label_windows_evaluated == 1
    assert second.store.get("driftline_concept_drift_detected", {**MV, "detector": "gap_test"}) == 0.0


def test_dle_is_fitted_once_reference_labels_of_the_reference_rows_have_joined() -> None:
    """3,000 of the 5,000 reference predictions get labels: DLE waits for the 3,000th, then
    fits on those rows alone (the others have none) and estimates as well."""
    config = parse_config({"models": {"m": {"task": "regression", "reference_labels": 3000}}})
    pipeline = Pipeline(config, MetricStore(), MemoryDeadLetterSink(), event_time=True)
    rng = np.random.default_rng(67)
    rows = regression_rows(rng, 5000, 1.0)
    labelled = np.sort(rng.choice(5000, size=3000, replace=False))
    labels = _labels(rows, 0)
    pipeline.process(_messages(_predictions(rows, 0) + [labels[i] for i in labelled[:2999]]))
    health = pipeline.states[("m", "1")].health
    assert health.status()["dle_fitted"] is False
    pipeline.process(_messages([labels[labelled[2999]]], 7999))
    assert health.status()["dle_fitted"] is True
    window = regression_rows(rng, 1000, 1.6)
    pipeline.process(_messages(_predictions(window, 5000), 8000))
    realized_mae = float(np.mean(np.abs(window["label"] - window["prediction"])))
    assert _estimated(pipeline, "mae") == pytest.approx(realized_mae, rel=0.1)
