"""The window history (``/api/v1/models/{m}/{v}/windows``) is checkpointed with its model's partition.

A restarted collector serves the last ``history.windows`` windows it served
before, and after reading on from its checkpoint (windows evaluated after it
are evaluated again) its rows equal an uninterrupted collector's.
"""

from __future__ import annotations

from pathlib import Path

from collector.auto_references import AutomaticReferences
from collector.checkpoints import Checkpointer
from collector.config import parse_config
from collector.dlq import MemoryDeadLetterSink
from collector.pipeline import Pipeline
from collector.state_codec import pack, unpack
from collector.state_store import LocalStateStore
from collector.window_history import COLUMNS, WindowHistory
from exporters.store import MetricStore
from tests.streams import drifting_stream
from tests.test_checkpoints import CONFIG, _messages

STREAM = drifting_stream(5000, seed=8, shift_at=3000)
KEEP = 4
PARTITIONS = [("p", 0), ("l", 0)]


def _pipeline(history: WindowHistory, state: Path) -> Pipeline:
    return Pipeline(
        parse_config(CONFIG),
        MetricStore(),
        MemoryDeadLetterSink(),
        event_time=False,
        listeners=(history,),
        label_listeners=(history.label_window,),
        automatic_references=AutomaticReferences(LocalStateStore(state), "g/"),
    )


def _checkpointer(pipeline: Pipeline, store: LocalStateStore, history: WindowHistory) -> Checkpointer:
    return Checkpointer(pipeline, store, pipeline.store, prefix="g/t/", interval_seconds=1e9, history=history)


def _saved_at(tmp_path: Path, upto: int) -> tuple[LocalStateStore, WindowHistory, Pipeline, Checkpointer]:
    """A collector that read STREAM[:upto] and saved its state: store, history, pipeline, checkpointer."""
    store = LocalStateStore(tmp_path)
    history = WindowHistory(KEEP)
    pipeline = _pipeline(history, tmp_path)
    checkpointer = _checkpointer(pipeline, store, history)
    checkpointer.restore(PARTITIONS)
    pipeline.process(_messages(STREAM[:upto], 0))
    assert checkpointer.save({"p": {0: upto}, "l": {0: upto}})
    return store, history, pipeline, checkpointer


def test_a_restart_serves_the_same_windows_and_reads_on_like_an_uninterrupted_one(tmp_path: Path) -> None:
    alone = WindowHistory(KEEP)
    _pipeline(alone, tmp_path / "alone").process(_messages(STREAM, 0))
    expected = alone.rows("m", "1")
    assert expected is not None and len({(r["kind"], r["window"]) for r in expected}) == KEEP
    assert {r["kind"] for r in expected} == {"window", "label_window"}

    store, history, pipeline, _ = _saved_at(tmp_path, 3700)
    served = history.rows("m", "1")
    assert served
    pipeline.process(_messages(STREAM[3700:4600], 3700))  # windows evaluated, then lost with the process

    history = WindowHistory(KEEP)
    pipeline = _pipeline(history, tmp_path)
    assert _checkpointer(pipeline, store, history).restore(PARTITIONS) == {("p", 0): 3700, ("l", 0): 3700}
    assert history.rows("m", "1") == served
    pipeline.process(_messages(STREAM[3700:], 3700))
    assert history.rows("m", "1") == expected


def test_a_smaller_history_keeps_the_newest_windows_and_a_moved_partition_takes_its_windows(
    tmp_path: Path,
) -> None:
    store, history, _, checkpointer = _saved_at(tmp_path, len(STREAM))
    rows = history.rows("m", "1")
    assert rows is not None
    newest = max(r["window"] for r in rows if r["kind"] == "window")

    checkpointer.forget(PARTITIONS)
    assert history.rows("m", "1") is None

    smaller = WindowHistory(1)
    _checkpointer(_pipeline(smaller, tmp_path), store, smaller).restore(PARTITIONS)
    kept = smaller.rows("m", "1")
    assert kept is not None and {r["window"] for r in kept} <= {newest, newest - 1}
    assert kept == [r for r in rows if (r["kind"], r["window"]) == (kept[0]["kind"], kept[0]["window"])]
    assert all(list(r) == list(COLUMNS) for r in kept)


def test_a_snapshot_whose_history_is_damaged_starts_its_partition_afresh_without_stale_windows(
    tmp_path: Path,
) -> None:
    store = _saved_at(tmp_path, 3000)[0]
    body = unpack("partition", store.get("g/t/partition/0") or b"")
    body["history"]["versions"][0][3][-1][0] = ["a row", "of the wrong length"]
    store.put("g/t/partition/0", pack("partition", body))

    history = WindowHistory(KEEP)
    pipeline = _pipeline(history, tmp_path)
    assert _checkpointer(pipeline, store, history).restore(PARTITIONS) == {}
    assert pipeline.store.get("driftline_state_snapshots_total", {"outcome": "unreadable"}) == 1.0
    assert history.rows("m", "1") is None and not pipeline.states
