"""Serving instances from heartbeats: up while they beat, down when they stop, then forgotten."""

from __future__ import annotations

from driftline.schema import Heartbeat, decode, encode
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from collector.config import parse_config
from collector.dlq import MemoryDeadLetterSink
from collector.instances import InstanceKey, InstanceTracker
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from exporters.prometheus import build_registry
from exporters.store import HistogramValue, MetricStore


def beat(instance: str, **numbers: float) -> Heartbeat:
    # Through the wire form, as the pipeline sees it.
    sent = Heartbeat(model="credit", model_version="3", instance=instance, **numbers)
    event = decode(encode(sent))
    assert isinstance(event, Heartbeat)
    return event


def labels(instance: str) -> dict[str, str]:
    return {"model": "credit", "model_version": "3", "instance": instance}


def scraped_up(store: MetricStore) -> dict[str, float]:
    """driftline_instance_up per instance, as /metrics shows it."""
    text = generate_latest(build_registry(store)).decode()
    return {
        sample.labels["instance"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "driftline_instance_up"
        for sample in family.samples
    }


def test_an_instance_that_stops_beating_is_reported_down() -> None:
    store = MetricStore()
    tracker = InstanceTracker(store, timeout_seconds=30.0)
    went_down: dict[float, list[InstanceKey]] = {}
    for second in range(0, 200, 5):
        now = 1_000.0 + second
        tracker.observe(beat("a"), now)
        if second < 100:  # b stops after t=95
            tracker.observe(beat("b"), now)
        went_down[now] = tracker.check(now)
    assert scraped_up(store) == {"a": 1.0, "b": 0.0}
    # b's last heartbeat was at 1095: it is down from the first check 30 s later, exactly once.
    transitions = {now: keys for now, keys in went_down.items() if keys}
    assert transitions == {1125.0: [InstanceKey("credit", "3", "b")]}
    assert store.get("driftline_instance_last_heartbeat_timestamp_seconds", labels("b")) == 1095.0
    assert store.get("driftline_instance_last_heartbeat_timestamp_seconds", labels("a")) == 1195.0
    assert [(s.key.instance, s.up) for s in tracker.statuses()] == [("a", True), ("b", False)]


def test_not_down_before_the_timeout() -> None:
    store = MetricStore()
    tracker = InstanceTracker(store, timeout_seconds=30.0)
    tracker.observe(beat("a"), 0.0)
    assert tracker.check(29.9) == []
    assert store.get("driftline_instance_up", labels("a")) == 1.0
    assert tracker.check(30.0) == [InstanceKey("credit", "3", "a")]


def test_a_heartbeat_brings_a_down_instance_back_up() -> None:
    store = MetricStore()
    tracker = InstanceTracker(store, timeout_seconds=10.0)
    tracker.observe(beat("a"), 0.0)
    tracker.check(20.0)
    assert store.get("driftline_instance_up", labels("a")) == 0.0
    tracker.observe(beat("a"), 25.0)
    assert store.get("driftline_instance_up", labels("a")) == 1.0
    assert tracker.check(30.0) == []


def test_health_gauges_and_counters_from_heartbeats() -> None:
    store = MetricStore()
    tracker = InstanceTracker(store)
    tracker.observe(beat("a", cpu_ratio=0.25, rss_bytes=2e8, requests_total=100, errors_total=1), 0)
    tracker.observe(beat("a", cpu_ratio=0.5, rss_bytes=3e8, requests_total=160, errors_total=4), 5)
    # the instance restarted: its own counters start again from zero
    tracker.observe(beat("a", requests_total=30, errors_total=0, uptime_seconds=4), 10.0)
    a = labels("a")
    assert store.get("driftline_instance_cpu_ratio", a) == 0.5
    assert store.get("driftline_instance_resident_memory_bytes", a) == 3e8
    assert store.get("driftline_instance_uptime_seconds", a) == 4.0
    # 60 between the first two beats, then 30 after the restart; the first beat only sets the base
    assert store.get("driftline_instance_requests_total", a) == 90.0
    assert store.get("driftline_instance_errors_total", a) == 3.0


def test_down_instances_are_forgotten_with_their_series() -> None:
    store = MetricStore()
    tracker = InstanceTracker(store, timeout_seconds=10.0, forget_after_seconds=100.0)
    tracker.observe(beat("a", cpu_ratio=0.1, requests_total=5), 0.0)
    tracker.observe(beat("b"), 0.0)
    tracker.check(10.0)
    tracker.observe(beat("b"), 105.0)
    tracker.check(109.0)
    assert store.get("driftline_instance_up", labels("a")) == 0.0
    tracker.check(110.0)  # a has been down for 100 s
    for name in ("driftline_instance_up", "driftline_instance_cpu_ratio",
                 "driftline_instance_requests_total"):
        assert store.get(name, labels("a")) is None, name
    assert store.get("driftline_instance_up", labels("b")) == 1.0
    assert [s.key.instance for s in tracker.statuses()] == ["b"]


def test_instances_over_the_limit_are_refused_and_counted() -> None:
    store = MetricStore()
    tracker = InstanceTracker(store, max_instances=3)
    accepted = [tracker.observe(beat(f"pod-{i}"), 0.0) for i in range(1_000)]
    assert accepted.count(True) == 3
    assert store.get("driftline_limit_exceeded_total", {"kind": "instance"}) == 997.0
    assert len(scraped_up(store)) == 3
    # a known instance keeps beating while the limit is full
    assert tracker.observe(beat("pod-0"), 1.0)


def test_forgetting_a_model_version_frees_its_slots() -> None:
    store = MetricStore()
    tracker = InstanceTracker(store, max_instances=1)
    tracker.observe(beat("a"), 0.0)
    tracker.forget_model_version("credit", "3")
    assert store.get("driftline_instance_up", labels("a")) is None
    assert tracker.observe(beat("b"), 1.0)


def test_built_from_the_configuration() -> None:
    config = parse_config(
        {"instances": {"heartbeat_timeout_seconds": 5, "forget_after_seconds": 50},
         "limits": {"max_instances": 2}}
    )
    tracker = InstanceTracker.from_config(MetricStore(), config)
    assert (tracker.timeout_seconds, tracker.forget_after_seconds, tracker.max_instances) == (
        5.0, 50.0, 2)
    defaults = InstanceTracker.from_config(MetricStore(), parse_config({}))
    assert defaults.timeout_seconds == 30.0


def test_the_pipeline_reports_a_silent_instance_down_on_event_time() -> None:
    """End to end through the pipeline: replay heartbeats, one instance stops at t=60."""
    store = MetricStore()
    config = parse_config({"instances": {"heartbeat_timeout_seconds": 20}})
    pipeline = Pipeline(config, store, MemoryDeadLetterSink(), event_time=True)
    payloads = []
    for second in range(0, 120, 5):
        for instance in ("a", "b"):
            if instance == "b" and second > 60:
                continue
            sent = Heartbeat(model="credit", model_version="3", instance=instance,
                             timestamp=1_000.0 + second, requests_total=10.0 * second)
            payloads.append(encode(sent))
    batch = [RawMessage(p, "t", 0, i, 0.0) for i, p in enumerate(payloads)]
    pipeline.process(batch[:10])
    assert scraped_up(store) == {"a": 1.0, "b": 1.0}
    pipeline.process(batch[10:])
    assert scraped_up(store) == {"a": 1.0, "b": 0.0}
    assert store.get("driftline_instance_requests_total", labels("b")) == 600.0
    # replay output must not depend on the wall clock, so no batch durations on event time
    assert store.get("driftline_batch_duration_seconds", {}) is None


def test_the_pipeline_times_batches_on_the_wall_clock() -> None:
    store = MetricStore()
    pipeline = Pipeline(parse_config({}), store, MemoryDeadLetterSink(), event_time=False)
    sent = encode(Heartbeat(model="credit", model_version="3", instance="a"))
    pipeline.process([RawMessage(sent, "t", 0, 0, 1_000.0)])
    pipeline.process([])
    pipeline.process([RawMessage(sent, "t", 0, 1, 1_001.0)])
    histogram = store.get("driftline_batch_duration_seconds", {})
    assert isinstance(histogram, HistogramValue) and histogram.count == 2
    assert 0 < histogram.sum < 1.0
    pipeline.tick(1_001.0 + 29.0)
    assert store.get("driftline_instance_up", labels("a")) == 1.0
    pipeline.tick(1_001.0 + 30.0)
    assert store.get("driftline_instance_up", labels("a")) == 0.0
