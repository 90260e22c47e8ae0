"""Multiclass CBPE through the pipeline: estimated metrics before labels, realized ones after,
calibration from the labels joined to the reference period."""

from __future__ import annotations

import numpy as np
import pytest
from driftline.schema import Label, Prediction, encode
from sklearn.metrics import f1_score, roc_auc_score

from collector.config import parse_config
from collector.dlq import MemoryDeadLetterSink
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from collector.window_history import WindowHistory
from exporters.html_report import HtmlReportWriter
from exporters.store import MetricStore

MV = {"model": "m", "model_version": "1"}
CLASSES = ("a", "b", "c")
WEIGHTS = np.array([[2.0, -1.0], [-1.0, 2.0], [-1.0, -1.0]])


def _events(
    rng: np.random.Generator, n: int, start: int, scale: float
) -> tuple[list, np.ndarray, np.ndarray]:
    """A softmax model over two features; its probabilities are the truth's logits times ``scale``."""
    x = rng.normal([1.0, 0.0], 1.0, size=(n, 2))
    logits = x @ WEIGHTS.T
    truth = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    model = np.exp(scale * logits) / np.exp(scale * logits).sum(axis=1, keepdims=True)
    labels = np.array(CLASSES)[(rng.random(n)[:, None] > np.cumsum(truth, axis=1)).sum(axis=1)]
    events: list[Prediction | Label] = []
    for i in range(n):
        event_id, t = f"e{start + i}", 1_700_000_000.0 + (start + i) * 0.01
        events.append(
            Prediction(
                event_id=event_id,
                model="m",
                model_version="1",
                features={"x0": float(x[i, 0]), "x1": float(x[i, 1])},
                prediction=CLASSES[int(model[i].argmax())],
                probabilities=dict(zip(CLASSES, map(float, model[i]), strict=True)),
                timestamp=t,
            )
        )
        events.append(Label(event_id=event_id, model="m", label=str(labels[i]), timestamp=t))
    return events, model, labels


def test_overconfident_multiclass_model_is_calibrated_on_joined_reference_labels() -> None:
    config = parse_config({"models": {"m": {"task": "multiclass_classification", "reference_labels": 3000}}})
    store = MetricStore()
    pipeline = Pipeline(config, store, MemoryDeadLetterSink(), event_time=True)
    rng = np.random.default_rng(8)
    reference, _, _ = _events(rng, 5000, 0, 3.0)
    window, p, y = _events(rng, 1000, 5000, 3.0)
    events = reference + window
    pipeline.process([RawMessage(encode(e), "t", 0, i, 0.0) for i, e in enumerate(events)])
    health = pipeline.states[("m", "1")].health
    assert health.status()["cbpe_calibrated_classes"] == list(CLASSES)
    predicted = np.array(CLASSES)[p.argmax(axis=1)]
    realized_f1 = f1_score(y, predicted, average="macro")

    def performance(metric: str, source: str) -> float:
        value = store.get("driftline_performance", {**MV, "metric": metric, "source": source})
        assert isinstance(value, float), (metric, source)
        return value

    assert performance("f1_macro", "realized") == pytest.approx(realized_f1, abs=1e-9)
    assert performance("roc_auc_ovr", "realized") == pytest.approx(
        roc_auc_score(y, p, multi_class="ovr"), abs=1e-9
    )
    assert abs(performance("f1_macro", "estimated") - realized_f1) < 0.03
    assert abs(performance("accuracy", "estimated") - float(np.mean(predicted == y))) < 0.03
    assert store.get("driftline_concept_drift_detected", {**MV, "detector": "gap_test"}) == 0.0


def test_multiclass_estimates_get_thresholds_from_the_calibrated_reference() -> None:
    """Before labels, thresholds of the raw estimate; once calibrated, of the calibrated one, which a
    window like the reference stays within; the window's report shows both side by side."""
    config = parse_config({"models": {"m": {"task": "multiclass_classification", "reference_labels": 3000}}})
    store, writer, history = MetricStore(), HtmlReportWriter(), WindowHistory(keep=5)
    pipeline = Pipeline(config, store, MemoryDeadLetterSink(), event_time=True, listeners=(writer, history))
    rng = np.random.default_rng(9)
    reference, _, _ = _events(rng, 5000, 0, 3.0)
    key = {**MV, "metric": "f1_macro", "source": "estimated", "bound": "lower"}
    predictions, labels = reference[0::2], reference[1::2]
    pipeline.process([RawMessage(encode(e), "t", 0, i, 0.0) for i, e in enumerate(predictions)])
    raw = store.get("driftline_performance_threshold", key)  # the reference is complete, labels not yet
    pipeline.process([RawMessage(encode(e), "t", 0, i, 0.0) for i, e in enumerate(labels, 5000)])
    calibrated = store.get("driftline_performance_threshold", key)
    assert isinstance(raw, float) and isinstance(calibrated, float)
    assert raw > calibrated + 0.02  # the overconfident raw probabilities promise more than the model does
    same, _, _ = _events(rng, 1000, 5000, 3.0)
    pipeline.process([RawMessage(encode(e), "t", 0, i, 0.0) for i, e in enumerate(same, 10_000)])
    estimated = store.get("driftline_performance", {**MV, "metric": "f1_macro", "source": "estimated"})
    assert isinstance(estimated, float) and estimated > calibrated
    for metric in ("accuracy", "recall_weighted", "roc_auc_ovr"):
        assert isinstance(store.get("driftline_performance_threshold", {**key, "metric": metric}), float)
    page = writer.render("m", "1")
    assert page is not None
    section = page[page.index('<section id="driftline-estimated-performance"') :]
    section = section[: section.index("</section>")]
    assert "Multiclass CBPE" in section
    row = f"<tr><td>f1_macro</td><td>{estimated:.4f}</td><td>below {calibrated:.4f}</td><td>no</td></tr>"
    assert row in section
    rows = history.rows("m", "1") or []
    top = [r for r in rows if r["kind"] == "window" and not (r["feature"] or r["output"] or r["segment"])]
    assert top[-1]["f1_macro"] == estimated and top[-1]["f1_macro_threshold"] == calibrated  # windows table
