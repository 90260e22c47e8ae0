"""The collector's heap freezing: what it freezes, what it reclaims, and the steady state it relies on."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from driftline.schema import Label, encode

from collector.config import parse_config
from collector.dlq import MemoryDeadLetterSink
from collector.heap_freezer import HeapFreezer
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from exporters.store import MetricStore
from tests.streams import predictions


class _Node:
    """An object that can be put in a reference cycle and watched through a weak reference."""

    def __init__(self) -> None:
        self.other: _Node | None = None


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    """Every test leaves the interpreter's heap unfrozen, as it found it."""
    yield
    gc.unfreeze()


def _cycle() -> weakref.ref[_Node]:
    """A two-object cycle nothing else refers to, alive until a collection walks it."""
    first, second = _Node(), _Node()
    first.other, second.other = second, first
    return weakref.ref(first)


def test_a_batch_s_survivors_are_frozen_out_of_the_collections() -> None:
    now = [0.0]
    freezer = HeapFreezer(reclaim_every_seconds=3600.0, clock=lambda: now[0])
    freezer.start()
    frozen_at_start = gc.get_freeze_count()
    survivors = [_Node() for _ in range(100)]
    freezer.after_batch()
    assert gc.get_freeze_count() >= frozen_at_start + len(survivors)
    cycle = _cycle()
    freezer.after_batch()  # frozen as a batch's survivor: no collection may see it now
    gc.collect()
    assert cycle() is not None


def test_what_a_frozen_cycle_leaks_is_reclaimed_once_due() -> None:
    now = [0.0]
    freezer = HeapFreezer(reclaim_every_seconds=60.0, clock=lambda: now[0])
    freezer.start()
    cycle = _cycle()
    freezer.after_batch()
    now[0] = 59.0
    freezer.after_batch()
    gc.collect()
    assert cycle() is not None
    now[0] = 60.0
    freezer.after_batch()  # due: the whole heap is collected, then frozen again
    assert cycle() is None
    assert gc.get_freeze_count() > 0


def test_reclaim_counts_the_unreachable_objects_it_found() -> None:
    freezer = HeapFreezer()
    freezer.start()
    cycles = [_cycle() for _ in range(10)]
    gc.freeze()
    assert freezer.reclaim() >= 20
    assert all(cycle() is None for cycle in cycles)


def test_the_reclaim_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="reclaim_every_seconds must be > 0"):
        HeapFreezer(reclaim_every_seconds=0.0)


def test_the_pipeline_s_steady_state_makes_no_cyclic_garbage() -> None:
    """What freezing after every batch relies on: the objects a batch leaves die by reference
    counting, so nothing frozen needs the cyclic collector. The stream covers references,
    closed windows, joined, late and unknown labels, rejected messages and segments."""
    pipeline = Pipeline(
        parse_config({"defaults": {"reference": {"auto_events": 300}, "window": {"events": 100}}}),
        MetricStore(),
        MemoryDeadLetterSink(),
        event_time=True,
    )
    events = list(predictions(1500, seed=3))
    payloads: list[bytes] = []
    for index, event in enumerate(events):
        payloads.append(encode(event))
        if index % 2 and index >= 50:
            labelled = events[index - 50]
            payloads.append(encode(Label(event_id=labelled.event_id, model="m", label=labelled.prediction)))
        if index % 97 == 0:
            payloads.append(b'{"type":"prediction","schema_version":1,"features":NaN}')
            payloads.append(encode(Label(event_id=f"unknown-{index}", model="m", label=1)))
    messages = [RawMessage(payload, "test", 0, offset, 0.0) for offset, payload in enumerate(payloads)]
    pipeline.process(messages[:800])  # the reference, its fit and the first window: warm-up
    evaluated_before = pipeline.states["m", "1"].windows_evaluated
    gc.collect()
    gc.disable()
    try:
        for at in range(800, len(messages), 200):
            pipeline.process(messages[at : at + 200])
        found = gc.collect()
    finally:
        gc.enable()
    assert len(messages) - 800 > 1000
    assert pipeline.counts.rejected == {"non_finite": 16}
    assert pipeline.states["m", "1"].windows_evaluated - evaluated_before >= 9
    assert found == 0
