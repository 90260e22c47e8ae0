"""Rejection and limit counters (no ``model`` label) are checkpointed with their messages' partition.

Two partitions carry valid predictions, poison messages and events over the
feature and segment limits. A pipeline killed after its checkpoint (the
events read since are read again) ends with the same rejected and limit
counts as an uninterrupted one, and the rejected count by reason equals what
was sent; a partition moved to another pipeline takes its counts along.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from collector.checkpoints import Checkpointer
from collector.config import parse_config
from collector.dlq import MemoryDeadLetterSink
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from collector.state_store import LocalStateStore
from exporters.store import MetricStore
from tests.poison import POISONS, valid

CONFIG = parse_config({"limits": {"max_features": 3, "max_segment_values": 1}})
PARTITIONS = (0, 1)
PER_PARTITION = 300
COUNTED = ("driftline_events_rejected_total", "driftline_limit_exceeded_total")


def _event(partition: int, i: int) -> bytes:
    """Poison every 7th, a prediction over the limits every 5th, else a valid prediction."""
    if i % 7 == 3:
        return POISONS[(i // 7 + partition) % len(POISONS)].raw
    model = f"model{partition}"
    if i % 5 != 1:
        return valid(i, model=model)
    event = json.loads(valid(i, model=model))
    event["features"].update({"y1": 1.0, "y2": 2.0})  # y2 is over max_features (x, c, y1)
    event["segments"] = {"region": "south"}  # over max_segment_values (north came first)
    return json.dumps(event).encode()


MESSAGES = [
    RawMessage(_event(p, i), "p", p, i, 0.0) for i in range(PER_PARTITION) for p in PARTITIONS
]


def _sent_rejections() -> dict[str, float]:
    sent: dict[str, float] = {}
    for message in MESSAGES:
        poison = next((p for p in POISONS if p.raw == message.value), None)
        if poison is not None:
            sent[poison.reason] = sent.get(poison.reason, 0.0) + 1
    return sent


def _pipeline() -> tuple[Pipeline, MetricStore]:
    metrics = MetricStore()
    return Pipeline(CONFIG, metrics, MemoryDeadLetterSink(), event_time=False), metrics


def _counted(metrics: MetricStore) -> dict[tuple[str, str], float]:
    return {
        (name, key[0]): value
        for snapshot in metrics.snapshot()
        if (name := snapshot.metric.name) in COUNTED
        for key, value in snapshot.samples.items()
        if isinstance(value, float) and value
    }


def _offsets(upto: int) -> dict[str, dict[int, int]]:
    """The next offset of each partition once MESSAGES[:upto] are read."""
    read = MESSAGES[:upto]
    return {"p": {p: sum(m.partition == p for m in read) for p in PARTITIONS}}


def _checkpointer(pipeline: Pipeline, metrics: MetricStore, store: LocalStateStore) -> Checkpointer:
    return Checkpointer(pipeline, store, metrics, prefix="g/t/", interval_seconds=1e9)


@pytest.fixture(scope="module")
def uninterrupted() -> dict[tuple[str, str], float]:
    pipeline, metrics = _pipeline()
    pipeline.process(MESSAGES)
    return _counted(metrics)


def test_the_stream_rejects_and_limits_on_both_partitions(uninterrupted: dict[tuple[str, str], Any]) -> None:
    rejected = {r: v for (n, r), v in uninterrupted.items() if n == "driftline_events_rejected_total"}
    assert rejected == _sent_rejections()
    assert sum(rejected.values()) == 2 * len(range(3, PER_PARTITION, 7))
    over = 2 * sum(i % 5 == 1 and i % 7 != 3 for i in range(PER_PARTITION))  # one feature, one segment each
    assert over == 104
    assert uninterrupted[("driftline_limit_exceeded_total", "feature")] == over
    assert uninterrupted[("driftline_limit_exceeded_total", "segment_value")] == over


@pytest.mark.parametrize(("saved", "killed"), [(100, 250), (333, 334), (0, 599)])
def test_a_pipeline_killed_after_its_checkpoint_ends_with_the_exact_counts(
    tmp_path: Path, saved: int, killed: int, uninterrupted: dict[tuple[str, str], float]
) -> None:
    store = LocalStateStore(tmp_path)
    pipeline, metrics = _pipeline()
    checkpointer = _checkpointer(pipeline, metrics, store)
    checkpointer.restore([("p", p) for p in PARTITIONS])
    pipeline.process(MESSAGES[:saved])
    assert checkpointer.save(_offsets(saved))
    pipeline.process(MESSAGES[saved:killed])  # counted, then lost with the process

    pipeline, metrics = _pipeline()
    offsets = _checkpointer(pipeline, metrics, store).restore([("p", p) for p in PARTITIONS])
    assert offsets == {("p", p): o for p, o in _offsets(saved)["p"].items()}
    pipeline.process([m for m in MESSAGES if m.offset >= offsets[(m.topic, m.partition)]])
    assert _counted(metrics) == uninterrupted


def test_a_partition_that_moves_takes_its_counts_to_its_new_owner(
    tmp_path: Path, uninterrupted: dict[tuple[str, str], float]
) -> None:
    store = LocalStateStore(tmp_path)
    first, first_metrics = _pipeline()
    first_checkpoints = _checkpointer(first, first_metrics, store)
    first_checkpoints.restore([("p", 0), ("p", 1)])
    first.process(MESSAGES)
    assert first_checkpoints.save(_offsets(len(MESSAGES)))
    first_checkpoints.forget([("p", 1)])

    second, second_metrics = _pipeline()
    assert _checkpointer(second, second_metrics, store).restore([("p", 1)]) == {("p", 1): PER_PARTITION}
    kept, moved = _counted(first_metrics), _counted(second_metrics)
    assert kept and moved
    assert {k: kept.get(k, 0.0) + moved.get(k, 0.0) for k in uninterrupted} == uninterrupted
    only_first = [m for m in MESSAGES if m.partition == 0]
    alone, alone_metrics = _pipeline()
    alone.process(only_first)
    assert kept == _counted(alone_metrics)


def test_a_snapshot_without_counters_restores_its_models_and_counts_from_zero(tmp_path: Path) -> None:
    """Snapshots written before counters were checkpointed still restore."""
    from collector.state_codec import pack, unpack

    store = LocalStateStore(tmp_path)
    pipeline, metrics = _pipeline()
    checkpointer = _checkpointer(pipeline, metrics, store)
    checkpointer.restore([("p", 0)])
    pipeline.process([m for m in MESSAGES if m.partition == 0])
    assert checkpointer.save(_offsets(len(MESSAGES)))
    body = unpack("partition", store.get("g/t/partition/0") or b"")
    assert body["counters"]
    del body["counters"]
    store.put("g/t/partition/0", pack("partition", body))

    restored, restored_metrics = _pipeline()
    assert _checkpointer(restored, restored_metrics, store).restore([("p", 0)]) == {("p", 0): PER_PARTITION}
    accepted = {"model": "model0", "model_version": "1", "type": "prediction"}
    assert restored_metrics.get("driftline_events_total", accepted) == PER_PARTITION - 43
    assert restored_metrics.get("driftline_events_rejected_total", {"reason": "non_finite"}) == 0.0


def test_counts_made_outside_any_message_stay_with_the_process() -> None:
    pipeline, metrics = _pipeline()
    pipeline.counters.inc("driftline_limit_exceeded_total", {"kind": "model"})
    pipeline.drop_partitions({0, 1})
    assert metrics.get("driftline_limit_exceeded_total", {"kind": "model"}) == 1.0
    assert pipeline.snapshot_counters(0) == []
