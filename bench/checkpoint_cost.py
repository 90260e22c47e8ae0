"""What checkpoints cost, as ratios against processing the events they cover, measured in the same run.

A partition of one model version (12 features) is brought to a realistic
state: an automatic reference, a half-full window, ``--pending`` predictions
waiting for their labels in the join store. Then, best of ``--repeat``:

1. save: snapshot the partition, encode it (msgpack) and write it atomically
   to a local state store (fsync included);
2. restore: read it back and rebuild the partition's state in a new pipeline
   (detectors refitted on the stored reference, window and joins rebuilt);
3. baseline: process one window's worth of events (``--window`` predictions),
   the work between two saves when a save follows every window close;
4. save and restore again once the window history (``/api/v1/.../windows``,
   checkpointed with the partition) holds ``--history`` windows: the last
   evaluated window's report is handed to it again until it is full, so every
   kept window has the rows of a real one.

Run: .venv/bin/python bench/checkpoint_cost.py [--full] [--window N] [--pending N] [--history N] [--repeat N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import harness
from driftline.schema import encode

from collector.auto_references import AutomaticReferences
from collector.checkpoints import Checkpointer
from collector.config import parse_config
from collector.dlq import MemoryDeadLetterSink
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from collector.state_store import LocalStateStore
from collector.window_history import WindowHistory
from detectors.window_report import WindowReport
from exporters.store import MetricStore
from tests.streams import predictions

PARTITIONS = [("p", 0), ("l", 0)]


class Bench:
    """One partition's pipeline, its checkpointer and window history, and the reports it evaluated."""

    def __init__(self, directory: Path, window: int, pending: int, history: int) -> None:
        self.reports: list[WindowReport] = []
        self.history = WindowHistory(history)
        listener = self.reports.append
        self.pipeline, self.checkpointer = build(directory, window, pending, self.history, listener)


def build(
    directory: Path,
    window: int,
    pending: int,
    history: WindowHistory,
    listener: Callable[[WindowReport], None],
) -> tuple[Pipeline, Checkpointer]:
    config = parse_config(
        {
            "defaults": {
                "window": {"events": window, "max_seconds": 1e9},
                "reference": {"auto_events": 5000},
            },
            "labels": {"max_entries": max(pending, 1)},
        }
    )
    store = LocalStateStore(directory)
    metrics = MetricStore()
    pipeline = Pipeline(
        config,
        metrics,
        MemoryDeadLetterSink(),
        event_time=False,
        listeners=(history, listener),
        automatic_references=AutomaticReferences(store, "bench/"),
    )
    checkpointer = Checkpointer(
        pipeline, store, metrics, prefix="bench/t/", interval_seconds=1e9, history=history
    )
    checkpointer.restore(PARTITIONS)
    return pipeline, checkpointer


def messages(first: int, n: int, seed: int) -> list[RawMessage]:
    events = predictions(n, seed=seed, start=first)
    return [RawMessage(encode(e), "p", 0, first + i, 0.0) for i, e in enumerate(events)]


def best_of(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, help="predictions per window (quick 500, full 1000)")
    parser.add_argument("--pending", type=int, help="predictions awaiting labels (quick 2000, full 20000)")
    parser.add_argument("--history", type=int, help="windows in the window history (quick 20, full 100)")
    parser.add_argument("--repeat", type=int, help="rounds, best taken (quick 3, full 5)")
    args, chosen = harness.parse(
        parser,
        quick={"window": 500, "pending": 2000, "history": 20, "repeat": 3},
        full={"window": 1000, "pending": 20_000, "history": 100, "repeat": 5},
    )
    run = harness.BenchRun("checkpoint_cost", args, chosen)
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        bench = Bench(directory, args.window, args.pending, args.history)
        pipeline, checkpointer = bench.pipeline, bench.checkpointer
        filled = 5000 + max(args.pending - 5000, 0) // args.window * args.window + args.window // 2
        pipeline.process(messages(0, filled, seed=1))
        assert checkpointer.save({"p": {0: filled}})
        snapshot = directory / "bench%2Ft%2Fpartition%2F0.state"
        size = snapshot.stat().st_size
        kept = len(bench.history.rows("m", "1") or ())
        moved = iter(range(filled + 1, filled + 1 + 2 * args.repeat))  # new offsets: a save writes
        save = best_of(lambda: checkpointer.save({"p": {0: next(moved)}}), args.repeat)
        restore = best_of(lambda: Bench(directory, args.window, args.pending, args.history), args.repeat)
        windows = iter([messages(filled + i * args.window, args.window, seed=i) for i in range(args.repeat)])
        baseline = best_of(lambda: pipeline.process(next(windows)), args.repeat)
        for _ in range(args.history):
            bench.history(bench.reports[-1])
        rows = len(bench.history.rows("m", "1") or ())
        full_save = best_of(lambda: checkpointer.save({"p": {0: next(moved)}}), args.repeat)
        full_size = snapshot.stat().st_size
        full_restore = best_of(lambda: Bench(directory, args.window, args.pending, args.history), args.repeat)
    run.figure("predictions awaiting labels", len(pipeline.joins["m"]))
    run.figure("snapshot bytes", size)
    run.figure("window history rows at first", kept)
    run.figure(f"snapshot bytes, history full ({args.history} windows, {rows} rows)", full_size)
    run.compare("save a snapshot", save * 1e3, baseline * 1e3, "process one window", "ms")
    run.compare("restore the partition", restore * 1e3, baseline * 1e3, "process one window", "ms")
    run.compare("save, history full", full_save * 1e3, baseline * 1e3, "process one window", "ms")
    run.compare("restore, history full", full_restore * 1e3, baseline * 1e3, "process one window", "ms")
    run.write()


if __name__ == "__main__":
    main()
