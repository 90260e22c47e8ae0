"""Per-batch metric writes: the store holds after a flush what per-event writes would have left."""

from __future__ import annotations

import random

import pytest
from driftline.schema import Prediction, encode

from collector.batch_metrics import BatchMetrics, Family
from collector.config import Config
from collector.dlq import MemoryDeadLetterSink
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from exporters.store import MetricStore

LATENCY = Family("driftline_prediction_latency_seconds", ("model", "model_version"))
LABELS = Family("driftline_labels_total", ("model", "outcome"))
EARLY = Family("driftline_labels_early", ("model",))


def test_a_flush_leaves_what_writing_each_event_would() -> None:
    rng = random.Random(7)
    writes = [(rng.choice(["a", "b"]), rng.choice(["1", "2"]), rng.uniform(0, 3)) for _ in range(500)]
    direct, batched = MetricStore(), MetricStore()
    batch = BatchMetrics(batched)
    for model, version, seconds in writes:
        direct.observe(LATENCY.name, {"model": model, "model_version": version}, seconds)
        direct.inc(LABELS.name, {"model": model, "outcome": "joined"})
        direct.set(EARLY.name, {"model": model}, seconds)
        batch.observe(LATENCY, (model, version), seconds)
        batch.inc(LABELS, (model, "joined"))
        batch.set(EARLY, (model,), seconds)
    batch.flush()
    assert batched.snapshot() == direct.snapshot()
    batch.flush()  # nothing held twice
    assert batched.snapshot() == direct.snapshot()


def test_a_family_that_does_not_match_the_catalog_fails_on_flush() -> None:
    batch = BatchMetrics(MetricStore())
    batch.inc(Family("driftline_labels_total", ("model", "result")), ("m", "joined"))
    with pytest.raises(ValueError, match="takes labels"):
        batch.flush()


def test_the_pipeline_writes_its_counts_by_the_end_of_each_batch() -> None:
    store = MetricStore()
    pipeline = Pipeline(Config(), store, MemoryDeadLetterSink(), event_time=True)
    events = [
        Prediction(f"e{i}", "credit-risk", "1", {"x": float(i)}, 1, timestamp=1000.0 + i, latency_ms=2.0 * i)
        for i in range(30)
    ]
    messages = [RawMessage(encode(event), "p", 0, i, 0.0) for i, event in enumerate(events)]
    pipeline.process(messages[:10])
    labels = {"model": "credit-risk", "model_version": "1", "type": "prediction"}
    assert store.get("driftline_events_total", labels) == 10.0
    pipeline.process(messages[10:])
    assert store.get("driftline_events_total", labels) == 30.0
    version = {"model": "credit-risk", "model_version": "1"}
    latency = store.get("driftline_prediction_latency_seconds", version)
    assert latency is not None and not isinstance(latency, float)
    assert latency.count == 30 and latency.sum == pytest.approx(sum(2.0 * i for i in range(30)) / 1000)


def test_label_values_in_another_order_than_the_catalogs_land_in_the_same_series() -> None:
    reordered = Family("driftline_labels_total", ("outcome", "model"))
    direct, batched = MetricStore(), MetricStore()
    batch = BatchMetrics(batched)
    for model, outcome in [("a", "joined"), ("b", "late"), ("a", "joined")]:
        direct.inc(LABELS.name, {"model": model, "outcome": outcome})
        batch.inc(reordered, (outcome, model))
    batch.flush()
    assert batched.snapshot() == direct.snapshot()
    assert batched.get(LABELS.name, {"model": "a", "outcome": "joined"}) == 2.0


def test_a_value_utf8_cannot_encode_is_written_as_escapes_as_a_single_write_does() -> None:
    direct, batched = MetricStore(), MetricStore()
    batch = BatchMetrics(batched)
    for model in ["caf\u00e9", "bad\ud800", "plain"]:
        direct.inc(LABELS.name, {"model": model, "outcome": "joined"})
        direct.set(EARLY.name, {"model": model}, 3.0)
        direct.observe(LATENCY.name, {"model": model, "model_version": "1"}, 0.5)
        batch.inc(LABELS, (model, "joined"))
        batch.set(EARLY, (model,), 3.0)
        batch.observe(LATENCY, (model, "1"), 0.5)
    batch.flush()
    assert batched.snapshot() == direct.snapshot()
    samples = {m.metric.name: m.samples for m in batched.snapshot()}
    assert ("bad\\ud800", "joined") in samples[LABELS.name]
    assert ("caf\u00e9", "joined") in samples[LABELS.name]


def test_the_store_refuses_a_batch_of_the_wrong_kind_or_going_down() -> None:
    store = MetricStore()
    with pytest.raises(TypeError, match="is a counter, not a gauge"):
        store.set_many(LABELS.name, LABELS.labels, {("m", "joined"): 1.0})
    with pytest.raises(ValueError, match="cannot go down"):
        store.inc_many(LABELS.name, LABELS.labels, {("m", "joined"): -1.0})
    with pytest.raises(KeyError, match="not in the metric catalog"):
        store.inc_many("driftline_nope_total", ("model",), {("m",): 1.0})
