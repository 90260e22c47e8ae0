"""The service loop's ordering: process, flush dead letters, commit; pause while dead letters back up.

The dead-letter destination here is a stand-in that times out twice (a Kafka
broker cannot be made to refuse only the DLQ topic); the Kafka source's own
pause and resume are tested against the real broker in test_kafka_io.py.
"""

from __future__ import annotations

import itertools
import threading

from driftline.schema import encode

from collector.config import Config
from collector.dlq import MemoryDeadLetterSink
from collector.errors import DeadLetterBacklog
from collector.pipeline import Pipeline
from collector.runner import run
from collector.sources import RawMessage
from exporters.store import MetricStore
from tests.streams import predictions


class SlowDeadLetters(MemoryDeadLetterSink):
    def __init__(self, failures: int, log: list[str]) -> None:
        super().__init__()
        self.failures = failures
        self.log = log

    def flush(self) -> None:
        self.log.append("flush")
        if self.failures:
            self.failures -= 1
            raise DeadLetterBacklog("not acknowledged in time")


class PausableListSource:
    def __init__(self, batches: list[list[RawMessage]], log: list[str]) -> None:
        self.batches = batches
        self.log = log
        self.paused = False

    def next_batch(self, max_items: int, timeout: float) -> list[RawMessage]:
        self.log.append("poll-paused" if self.paused else "poll")
        return [] if self.paused or not self.batches else self.batches.pop(0)

    def commit(self) -> None:
        self.log.append("commit")

    def snapshot(self) -> dict[str, dict[int, int]]:
        return {}

    @property
    def exhausted(self) -> bool:
        return not self.batches

    def close(self) -> None:
        return None

    def pause(self) -> None:
        self.log.append("pause")
        self.paused = True

    def resume(self) -> None:
        self.log.append("resume")
        self.paused = False


def test_a_dead_letter_backlog_pauses_consumption_until_it_clears_then_commits() -> None:
    log: list[str] = []
    messages = [RawMessage(encode(e), "t", 0, i, 0.0) for i, e in enumerate(predictions(3, seed=51))]
    bad = RawMessage(b"not json", "t", 0, 3, 0.0)
    source = PausableListSource([[*messages, bad]], log)
    dlq = SlowDeadLetters(failures=2, log=log)
    pipeline = Pipeline(Config(), MetricStore(), dlq, event_time=True)
    run(source, pipeline, threading.Event(), poll_timeout=0.0)
    assert log[:9] == [
        "poll",
        "flush",
        "pause",
        "poll-paused",
        "flush",
        "poll-paused",
        "flush",
        "resume",
        "commit",
    ]
    assert [m.value for m, _ in dlq.rejected] == [b"not json"]
    assert pipeline.counts.accepted["prediction"] == 3


def test_offsets_wait_for_a_saved_checkpoint_and_a_quiet_stream_still_commits_on_a_tick() -> None:
    log: list[str] = []
    batch = [RawMessage(encode(e), "t", 0, i, 0.0) for i, e in enumerate(predictions(3, seed=2))]
    source = PausableListSource([batch, []], log)
    pipeline = Pipeline(Config(), MetricStore(), MemoryDeadLetterSink(), event_time=False)
    answers = itertools.chain([False], itertools.repeat(True))  # not due after the batch; due on ticks

    def checkpoint() -> bool:
        saved = next(answers)
        log.append("saved" if saved else "not saved")
        return saved

    run(source, pipeline, threading.Event(), poll_timeout=0.0, tick_interval=0.0, checkpoint=checkpoint)
    assert log[:5] == ["poll", "not saved", "saved", "commit", "poll"]
