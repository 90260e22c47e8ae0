"""The pipeline on seeded streams: counting rules, drift in exactly the shifted features, guards."""

from __future__ import annotations

import gc
import json
import math
import random

import numpy as np
import pytest
from driftline.schema import Heartbeat, Label, Prediction, RejectReason, encode

from collector import pipeline as pipeline_module
from collector.config import parse_config
from collector.dlq import MemoryDeadLetterSink
from collector.errors import ConfigError
from collector.label_join import LabelJoinStore
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from collector.windows import Window
from exporters.store import MetricStore
from tests.streams import predictions

MV = {"model": "m", "model_version": "1"}


def _messages(payloads: list[bytes]) -> list[RawMessage]:
    return [RawMessage(p, "test", 0, i, 0.0) for i, p in enumerate(payloads)]


Built = tuple[Pipeline, MetricStore, MemoryDeadLetterSink]


def _pipeline(raw_config: dict[str, object] | None = None) -> Built:
    store, dlq = MetricStore(), MemoryDeadLetterSink()
    return Pipeline(parse_config(raw_config or {}), store, dlq, event_time=True), store, dlq


def _run(pipeline: Pipeline, events: list[Prediction | Label | Heartbeat]) -> None:
    pipeline.process(_messages([encode(e) for e in events]))


def test_reference_then_windows_of_1000_and_trailing_partial_window() -> None:
    pipeline, store, _ = _pipeline()
    _run(pipeline, list(predictions(5000 + 2500, seed=1)))
    state = pipeline.states[("m", "1")]
    assert state.reference is not None and state.reference.automatic
    assert state.reference.n_rows == 5000
    assert state.windows_evaluated == 2
    assert store.get("driftline_windows_total", MV) == 2.0
    assert pipeline.finish() == {("m", "1"): 500}
    assert store.get("driftline_events_total", {**MV, "type": "prediction"}) == 7500.0


def test_a_window_closed_by_its_count_is_not_kept_until_its_age_deadline() -> None:
    """In event time each window's age deadline waits in a heap; a window closed by count
    before its deadline was kept alive by that entry, so a replay held up to an hour's windows."""
    pipeline, _, _ = _pipeline({"defaults": {"reference": {"auto_events": 200}, "window": {"events": 100}}})
    _run(pipeline, list(predictions(200 + 10 * 100 + 50, seed=3)))
    state = pipeline.states[("m", "1")]
    assert state.windows_evaluated == 10
    gc.collect()
    alive = [obj for obj in gc.get_objects() if isinstance(obj, Window)]
    assert alive == [state.window]


def test_labels_and_heartbeats_do_not_count_towards_windows() -> None:
    pipeline, _, _ = _pipeline()
    events: list[Prediction | Label | Heartbeat] = list(predictions(5999, seed=2))
    events += [Label(event_id=f"x{i}", model="m", label=1, timestamp=1_700_000_100.0) for i in range(50)]
    events += [Heartbeat(model="m", model_version="1", instance="i1", timestamp=1_700_000_100.0)]
    _run(pipeline, events)
    assert pipeline.states[("m", "1")].windows_evaluated == 0
    assert pipeline.states[("m", "1")].pending_events() == 999
    assert pipeline.counts.accepted == {"prediction": 5999, "label": 50, "heartbeat": 1}


def test_drift_detected_in_exactly_the_shifted_features() -> None:
    pipeline, store, _ = _pipeline()
    shifted = ("n1", "n5", "c2")
    events = list(predictions(5000 + 3000, seed=3))
    events += list(predictions(2000, seed=4, start=8000, shifted=shifted))
    _run(pipeline, events)
    state = pipeline.states[("m", "1")]
    assert state.windows_evaluated == 5
    assert store.get("driftline_dataset_drift_windows_total", MV) == 0.0
    flagged = {
        name
        for name in ("n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "c0", "c1", "c2", "c3")
        if store.get("driftline_feature_drift_windows_total", {**MV, "feature": name})
    }
    assert flagged == set(shifted)
    for name in shifted:
        assert store.get("driftline_feature_drift_windows_total", {**MV, "feature": name}) == 2.0
        assert store.get("driftline_feature_drift_detected", {**MV, "feature": name}) == 1.0
    assert store.get("driftline_feature_drift_detected", {**MV, "feature": "n0"}) == 0.0
    assert store.get("driftline_dataset_drift_share", MV) == 3 / 12


def test_window_closed_by_age_on_event_time_and_min_events() -> None:
    pipeline, _, _ = _pipeline({"defaults": {"window": {"events": 1000, "max_seconds": 60}}})
    # 5000 reference events 0.01 s apart, then 150 events in the next 10 s, then a 2-minute gap.
    events = list(predictions(5150, seed=5))
    events += list(predictions(50, seed=6, start=5150, t0=1_700_000_000.0 + 200))
    events += list(predictions(200, seed=7, start=5200, t0=1_700_000_000.0 + 400))
    _run(pipeline, events)
    state = pipeline.states[("m", "1")]
    # 150 events closed by age (>= min_events 100): evaluated; 50 events closed by age: skipped.
    assert state.windows_evaluated == 1
    assert state.windows_skipped == 1
    assert state.last_report is not None and state.last_report.n_events == 150
    assert pipeline.finish() == {("m", "1"): 200}


def test_rejections_are_counted_and_dead_lettered_and_good_events_around_them_processed() -> None:
    pipeline, store, dlq = _pipeline()
    good = [encode(e) for e in predictions(10, seed=8)]
    bad = [
        b"not json",
        b'{"type":"prediction","schema_version":2}',
        b'{"type":"x","schema_version":1}',
        b"[1]",
    ]
    payloads = [good[0], bad[0], *good[1:5], bad[1], bad[2], *good[5:], bad[3]]
    pipeline.process(_messages(payloads))
    assert pipeline.counts.accepted["prediction"] == 10
    assert pipeline.counts.rejected == {"invalid_json": 2, "unsupported_schema_version": 1, "unknown_type": 1}
    assert [m.value for m, _ in dlq.rejected] == [bad[0], bad[1], bad[2], bad[3]]
    assert store.get("driftline_events_rejected_total", {"reason": "invalid_json"}) == 2.0
    assert store.get("driftline_events_rejected_total", {"reason": "non_finite"}) == 0.0


def test_model_info_follows_the_data_version_one_series_per_version() -> None:
    pipeline, store, _ = _pipeline()
    _run(pipeline, list(predictions(10, seed=9, data_version="d1")))
    _run(pipeline, list(predictions(10, seed=9, start=10, data_version="d2")))
    series = next(s for s in store.snapshot() if s.metric.name == "driftline_model_info").samples
    assert list(series) == [("m", "1", "d2", "collecting", "champion")]


def test_limits_on_models_features_and_segment_values() -> None:
    config = {"limits": {"max_models": 3, "max_features": 5, "max_segment_values": 1}}
    pipeline, store, dlq = _pipeline(config)
    events = []
    for i in range(10):
        features = {f"f{j}": float(j) for j in range(8)}
        events.append(
            Prediction(
                event_id=f"e{i}",
                model=f"model{i % 5}",
                model_version="1",
                features=features,
                prediction=1,
                timestamp=1.0 + i,
                segments={"region": f"r{i}"},
            )
        )
    _run(pipeline, events)
    assert len(pipeline.states) == 3
    assert pipeline.counts.rejected == {"limit": 4}
    assert {e.reason for _, e in dlq.rejected} == {RejectReason.LIMIT}
    assert store.get("driftline_limit_exceeded_total", {"kind": "model"}) == 4.0
    assert store.get("driftline_limit_exceeded_total", {"kind": "feature"}) == 6.0
    window = pipeline.states[("model0", "1")]._reference_buffer
    assert window is not None and sorted(window.features.columns) == ["f0", "f1", "f2", "f3", "f4"]
    values = next(s for s in store.snapshot() if s.metric.name == "driftline_segment_events_total").samples
    assert sorted({key[3] for key in values}) == ["__other__", "r0", "r1", "r2"]
    assert store.get("driftline_limit_exceeded_total", {"kind": "segment_value"}) == 3.0


def test_api_status_is_json_ready() -> None:
    pipeline, _, _ = _pipeline()
    _run(pipeline, list(predictions(6000, seed=10)))
    status = pipeline.status()
    text = json.dumps(status)
    assert '"windows_evaluated": 1' in text
    assert status[0]["reference"]["automatic"] is True  # type: ignore[index]


def test_model_health_metrics_from_predictions_and_joined_labels() -> None:
    from sklearn.metrics import accuracy_score

    pipeline, store, _ = _pipeline()
    events: list[Prediction | Label | Heartbeat] = list(predictions(6000, seed=14))
    window = events[5000:6000]
    rng = np.random.default_rng(15)
    truth = [int(rng.random() < 0.7) for _ in window]
    events += [
        Label(event_id=e.event_id, model="m", label=y, timestamp=1_700_000_100.0)
        for e, y in zip(window, truth, strict=True)
    ]
    events += [Label(event_id="never-predicted", model="m", label=1, timestamp=1_700_000_100.0)]
    _run(pipeline, events)
    expected = accuracy_score(truth, [e.prediction for e in window])  # type: ignore[union-attr]
    realized = store.get("driftline_performance", {**MV, "metric": "accuracy", "source": "realized"})
    assert realized is not None and abs(realized - expected) < 1e-12
    assert store.get("driftline_labels_total", {"model": "m", "outcome": "joined"}) == 1000.0
    # The label of an unseen prediction waits (early) rather than counting unmatched at once.
    assert store.get("driftline_labels_total", {"model": "m", "outcome": "unmatched"}) == 0.0
    assert store.get("driftline_labels_early", {"model": "m"}) == 1.0
    assert store.get("driftline_events_total", {**MV, "type": "label"}) == 1000.0
    unknown = {"model": "m", "model_version": "unknown", "type": "label"}
    assert store.get("driftline_events_total", unknown) == 1.0
    confidence = store.get("driftline_prediction_confidence", MV)
    assert isinstance(confidence, float) and 0.5 <= confidence <= 1.0
    estimated = store.get("driftline_performance", {**MV, "metric": "accuracy", "source": "estimated"})
    assert isinstance(estimated, float) and 0.5 <= estimated <= 1.0
    assert store.get("driftline_fairness_disparate_impact", {**MV, "segment": "region"}) is not None
    assert store.get("driftline_concept_drift_detected", {**MV, "detector": "adwin"}) in (0.0, 1.0)


def test_dropping_a_lost_partition_forgets_its_models_and_their_series() -> None:
    pipeline, store, _ = _pipeline()
    first = [RawMessage(encode(e), "predictions", 0, i, 0.0) for i, e in enumerate(predictions(10, seed=16))]
    other = predictions(10, seed=17, model="other")
    second = [RawMessage(encode(e), "predictions", 1, i, 0.0) for i, e in enumerate(other)]
    label = Label(event_id="other-1-0", model="other", label=1, timestamp=1_700_000_001.0)
    pipeline.process([*first, *second, RawMessage(encode(label), "labels", 0, 0, 0.0)])
    pipeline.drop_partitions({1})
    assert set(pipeline.states) == {("m", "1")} and set(pipeline.joins) == {"m"}
    assert (
        store.get(
            "driftline_model_info",
            {
                "model": "other",
                "model_version": "1",
                "data_version": "d1",
                "reference_id": "collecting",
                "role": "champion",
            },
        )
        is None
    )
    assert store.get("driftline_events_total", {**MV, "type": "prediction"}) == 10.0


def test_quality_ratios_only_where_they_mean_something_and_configured_bounds() -> None:
    pipeline, store, _ = _pipeline({"models": {"m": {"bounds": {"n0": [-1.0, 1.0]}}}})
    _run(pipeline, list(predictions(6000, seed=18)))
    assert store.get("driftline_feature_out_of_range_ratio", {**MV, "feature": "c0"}) is None
    assert store.get("driftline_feature_new_category_ratio", {**MV, "feature": "n0"}) is None
    assert store.get("driftline_feature_new_category_ratio", {**MV, "feature": "c0"}) == 0.0
    outside = store.get("driftline_feature_out_of_range_ratio", {**MV, "feature": "n0"})
    assert isinstance(outside, float) and 0.25 < outside < 0.40  # P(|N(0,1)| > 1) = 0.317


def test_bounds_with_low_above_high_fail_at_load_with_the_key() -> None:
    with pytest.raises(ConfigError, match=r"models\.m\.bounds"):
        parse_config({"models": {"m": {"bounds": {"n0": [2.0, 1.0]}}}})


def test_configured_pooled_windows_reach_the_detector_and_the_status() -> None:
    pipeline, _, _ = _pipeline({"defaults": {"drift": {"pooled_windows": 2}}})
    _run(pipeline, list(predictions(5000 + 3000, seed=21)))
    state = pipeline.states[("m", "1")]
    assert state.last_report is not None and state.windows_evaluated == 3
    assert {d.pooled_size for d in state.last_report.drift.features} == {2000}
    status = state.status()
    assert status["thresholds"]["n0"]["pooled_windows"] == 2  # type: ignore[index]
    features = status["last_window"]["features"]  # type: ignore[index]
    assert features["n0"]["pooled_threshold"] > 0.0


def test_pooled_windows_below_one_fail_at_load_with_the_key() -> None:
    with pytest.raises(ConfigError, match=r"defaults\.drift\.pooled_windows"):
        parse_config({"defaults": {"drift": {"pooled_windows": 0}}})


def _labelled_window(seed: int) -> tuple[list[Prediction], list[Label]]:
    events = list(predictions(6000, seed=seed))
    rng = np.random.default_rng(seed + 1)
    labels = [
        Label(event_id=e.event_id, model="m", label=int(rng.random() < 0.7), timestamp=e.timestamp)
        for e in events[5000:]
    ]
    return events, labels


def test_labels_read_before_their_predictions_wait_and_join_like_late_ones() -> None:
    events, labels = _labelled_window(seed=40)
    late, late_store, _ = _pipeline()
    _run(late, [*events, *labels])
    early, early_store, _ = _pipeline()
    _run(early, [*labels, *events])  # a backlog read labels topic first
    joined = {"model": "m", "outcome": "joined"}
    assert early_store.get("driftline_labels_total", joined) == 1000.0
    assert early_store.get("driftline_labels_total", {"model": "m", "outcome": "unmatched"}) == 0.0
    assert early_store.get("driftline_labels_early", {"model": "m"}) == 0.0
    assert early_store.get("driftline_events_total", {**MV, "type": "label"}) is None  # counted on arrival,
    unknown = {"model": "m", "model_version": "unknown", "type": "label"}  # before the version was known
    assert early_store.get("driftline_events_total", unknown) == 1000.0
    accuracy = {**MV, "metric": "accuracy", "source": "realized"}
    realized = early_store.get("driftline_performance", accuracy)
    assert realized is not None and realized == late_store.get("driftline_performance", accuracy)
    delay = early_store.get("driftline_label_delay_seconds", {"model": "m"})
    assert delay is not None and delay.count == 1000.0  # type: ignore[union-attr]


def test_labels_join_alike_within_and_across_batches_and_held_predictions_are_packed_between() -> None:
    """A label in its prediction's batch takes the record as it came, one in a later batch the
    packed record: the same performance; after every batch nothing is held unpacked."""
    events, labels = _labelled_window(seed=41)
    interleaved: list[Prediction | Label] = [*events[:5000]]
    for prediction, label in zip(events[5000:], labels, strict=True):
        interleaved += [prediction, label]
    same, same_store, _ = _pipeline()
    later, later_store, _ = _pipeline()
    for at in range(0, len(interleaved), 500):
        _run(same, interleaved[at : at + 500])
        assert same.joins["m"]._pending.fresh == 0
    for at in range(0, len(events), 500):
        _run(later, events[at : at + 500])
        assert later.joins["m"]._pending.fresh == 0
    _run(later, list(labels))
    accuracy = {**MV, "metric": "accuracy", "source": "realized"}
    realized = same_store.get("driftline_performance", accuracy)
    assert realized is not None and realized == later_store.get("driftline_performance", accuracy)
    for store in (same_store, later_store):
        assert store.get("driftline_labels_total", {"model": "m", "outcome": "joined"}) == 1000.0


def test_early_labels_that_wait_in_vain_are_unmatched_only_when_they_expire() -> None:
    pipeline, store, _ = _pipeline({"labels": {"max_early": 3, "max_early_age_seconds": 60.0}})
    t0 = 1_700_000_000.0
    waiting = [Label(event_id=f"x{i}", model="m", label=1, timestamp=t0 + i) for i in range(5)]
    _run(pipeline, waiting)
    unmatched = {"model": "m", "outcome": "unmatched"}
    assert store.get("driftline_labels_total", unmatched) == 2.0  # pushed out by max_early
    assert store.get("driftline_labels_early", {"model": "m"}) == 3.0
    _run(pipeline, list(predictions(1, seed=41, t0=t0 + 100.0)))  # event time moves past their age
    assert store.get("driftline_labels_total", unmatched) == 5.0
    assert store.get("driftline_labels_early", {"model": "m"}) == 0.0
    assert store.get("driftline_labels_total", {"model": "m", "outcome": "joined"}) == 0.0


def test_an_untouched_models_early_labels_leave_when_another_model_moves_event_time() -> None:
    pipeline, store, _ = _pipeline({"labels": {"max_early": 3, "max_early_age_seconds": 60.0}})
    t0 = 1_700_000_000.0
    _run(pipeline, list(predictions(1, seed=40, t0=t0 - 1.0, model="other")))  # due in a day
    _run(pipeline, [Label(event_id=f"x{i}", model="m", label=1, timestamp=t0 + i) for i in range(2)])
    _run(pipeline, list(predictions(1, seed=41, t0=t0 + 30.0, model="other")))
    assert store.get("driftline_labels_early", {"model": "m"}) == 2.0  # not due yet
    _run(pipeline, list(predictions(1, seed=42, t0=t0 + 100.0, model="other")))
    assert store.get("driftline_labels_early", {"model": "m"}) == 0.0
    assert store.get("driftline_labels_total", {"model": "m", "outcome": "unmatched"}) == 2.0


def test_the_expiry_pass_skips_every_store_while_none_is_due(monkeypatch: pytest.MonkeyPatch) -> None:
    """With 1,000 models the pass over every join store on every batch was a cost that
    grew with the models; until the earliest expiry it has nothing to do."""
    pipeline, store, _ = _pipeline({"limits": {"max_models": 100}})
    for i in range(50):
        _run(pipeline, list(predictions(1, seed=i, t0=1_700_000_000.0 + i, model=f"m{i}")))
    visited: list[float] = []
    original = LabelJoinStore.expire

    def counting(self: LabelJoinStore, now: float) -> int:
        visited.append(now)
        return original(self, now)

    monkeypatch.setattr(LabelJoinStore, "expire", counting)
    _run(pipeline, list(predictions(10, seed=99, t0=1_700_000_100.0, model="m0")))
    assert visited == []
    due = 1_700_000_000.0 + 86_400.0  # the default labels.max_age_seconds after m0's first prediction
    _run(pipeline, list(predictions(1, seed=98, t0=due + 2.0, model="m1")))
    assert len(visited) == 50
    waiting = {"model": "m0", "outcome": "expired"}
    _run(pipeline, [Label(event_id="m0-1-0", model="m0", label=1, timestamp=due + 3.0)])
    assert store.get("driftline_labels_total", waiting) == 1.0


def test_a_restored_models_early_labels_leave_without_new_events_of_their_own() -> None:
    config = {"labels": {"max_early": 3, "max_early_age_seconds": 60.0}}
    first, _, _ = _pipeline(config)
    t0 = 1_700_000_000.0
    _run(first, [Label(event_id=f"x{i}", model="m", label=1, timestamp=t0 + i) for i in range(2)])
    second, store, _ = _pipeline(config)
    _run(second, list(predictions(1, seed=42, t0=t0 - 1.0, model="other")))  # nothing due for a day
    second.restore_partition(0, json.loads(json.dumps(first.snapshot_partition(0))))
    _run(second, list(predictions(1, seed=43, t0=t0 + 100.0, model="other")))
    assert store.get("driftline_labels_early", {"model": "m"}) == 0.0
    assert store.get("driftline_labels_total", {"model": "m", "outcome": "unmatched"}) == 2.0


def test_skipping_the_expiry_pass_changes_no_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same random stream of predictions and labels over five models, in batches of random
    sizes, counts the same with the pass run on every batch (an infinite margin)."""
    rng = random.Random(7)
    t, events = 1_700_000_000.0, []
    for i in range(600):
        t += rng.expovariate(1 / 4.0)
        model = f"m{rng.randrange(5)}"
        if rng.random() < 0.5:
            events.append(next(predictions(1, seed=i, start=i, t0=t, model=model)))
        else:
            late = rng.choice([-30.0, -5.0, 5.0])  # labels before and after their predictions
            event_id = f"{model}-1-{rng.randrange(600)}"
            events.append(Label(event_id=event_id, model=model, label=1, timestamp=t + late))
    cuts = sorted(rng.sample(range(1, len(events)), 40))
    batches = [events[a:b] for a, b in zip([0, *cuts], [*cuts, len(events)], strict=True)]
    config = {
        "limits": {"max_models": 10},
        "labels": {"max_age_seconds": 40.0, "max_early": 20, "max_early_age_seconds": 15.0},
    }

    def counts() -> list[str]:
        pipeline, store, _ = _pipeline(config)
        for batch in batches:
            _run(pipeline, batch)
        return sorted(json.dumps(row) for row in store.export_where() if "label" in row[0])

    skipping = counts()
    monkeypatch.setattr(pipeline_module, "_EXPIRY_MARGIN_SECONDS", math.inf)
    assert counts() == skipping
    totals = [json.loads(row) for row in skipping if row.startswith('["driftline_labels_total"')]
    assert {outcome for _, (_, outcome), count in totals if count > 0} == {"joined", "unmatched", "expired"}
