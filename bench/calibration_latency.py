"""Calibration latency: the longest batch while new model versions get their first windows.

In-memory ``Pipeline.process`` on the wall clock (as ``driftline collect``
runs), default configuration (calibrated mode, 5,000-event automatic
references, 1,000-event windows, 4 pooled windows) with the thresholds kept in
memory only, on the workload of ``bench/workload.py`` with ``--models`` model
versions of one shape (the same reference rows), in batches of ``--batch``
messages, each followed by the time rules' tick as in the collector's loop
(both timed). After its reference each version gets ``--windows`` windows (20:
the pooled test starts at the 4th), so batches go on while the worker simulates.

Baseline: cache-miss calibration inline, in the batch that needs it (what
replay does). Results: calibration on the collector's worker process
(:mod:`collector.calibration_worker`), windows held until their thresholds
arrive; and the same worker on a thread of this process, to show what the GIL
leaves the batch thread (and, measured directly, how fast a pure-Python loop
runs while a simulation runs on another thread, against alone). Figures: the
longest batch among those where no reference completed, and the median one,
in wall seconds, and the most CPU time the batch thread spent in one of them
(on a loaded machine wall time is mostly waiting for a core). A batch that fits
a reference is reported apart: fitting is not calibration. Every run must end
with every window evaluated, and the number of distinct thresholds simulated
is printed (one shape: the same for 1 and 20 versions). Each run uses its own
drift seed, so none finds another's thresholds.

Run: ``.venv/bin/python bench/calibration_latency.py [--full]``
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from multiprocessing.pool import Pool, ThreadPool

import harness
import numpy as np
import workload

from collector.calibration_worker import CalibrationWorker
from collector.config import Config, parse_config
from collector.dlq import MemoryDeadLetterSink
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from detectors import threshold_cache
from detectors.drift_calibration import NullRequest, RankCells, simulate_threshold
from exporters.store import MetricStore


class ThreadWorker(CalibrationWorker):
    """The worker on a thread of this process instead: what the GIL lets the batch thread keep."""

    def _start(self) -> Pool:
        return ThreadPool(processes=1)


def bench_config(models: int, seed: int) -> Config:
    return parse_config(
        {
            "calibration_cache": None,
            "defaults": {"window": {"max_seconds": 1e9}, "drift": {"seed": seed}},
            "limits": {"max_models": max(models, 100)},
        }
    )


def run_once(
    lines: list[bytes], models: int, batch: int, seed: int, calibration: CalibrationWorker | None
) -> dict[str, float]:
    """Batch wall times with calibration inline or on the worker; windows and thresholds at the end.

    ``max_fitting`` is the longest batch in which a reference completed (the
    detectors are fitted there, which is not calibration); ``max`` the longest of the others,
    ``max_cpu`` the most CPU time the batch thread spent on one of them."""
    pipeline = Pipeline(
        bench_config(models, seed), MetricStore(), MemoryDeadLetterSink(), event_time=False,
        calibration=calibration,
    )
    known = len(threshold_cache._PROCESS_MEMORY)
    durations, fitting, cpu = [], [0.0], []
    try:
        for at in range(0, len(lines), batch):
            received = time.time()
            chunk = enumerate(lines[at : at + batch], start=at)
            messages = [RawMessage(line, "bench", 0, offset, received) for offset, line in chunk]
            fitted = _fitted(pipeline)
            started, started_cpu = time.perf_counter(), time.thread_time()
            pipeline.process(messages)
            pipeline.tick(time.time())  # as the collector's loop does between batches
            took = time.perf_counter() - started
            if _fitted(pipeline) > fitted:
                fitting.append(took)
            else:
                durations.append(took)
                cpu.append(time.thread_time() - started_cpu)
        pipeline.finish()
    finally:
        if calibration is not None:
            calibration.close()
    evaluated = sum(state.windows_evaluated for state in pipeline.states.values())
    return {
        "max": max(durations),
        "max_cpu": max(cpu),
        "median": statistics.median(durations),
        "max_fitting": max(fitting),
        "windows": evaluated,
        "thresholds": len(threshold_cache._PROCESS_MEMORY) - known,
    }


def gil_share(seconds: float) -> float:
    """Pure-Python loop rounds per second with a simulation on another thread, over those without."""
    cells = RankCells.from_sorted(np.sort(np.random.default_rng(0).normal(size=5000)))
    request = NullRequest(cells, 1000, 200_000, 0, 0.00025)  # the default shape's first window
    alone = _loop_rate(seconds)
    simulating = threading.Thread(target=simulate_threshold, args=(request,))
    simulating.start()
    shared = _loop_rate(seconds)
    simulating.join()
    return shared / alone


def _loop_rate(seconds: float) -> float:
    rounds, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        sum(range(2000))
        rounds += 1
    return rounds / (time.perf_counter() - started)


def _fitted(pipeline: Pipeline) -> int:
    """Model versions whose reference is complete (their detectors fitted)."""
    return sum(not state.collecting_reference for state in pipeline.states.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, help="model versions of one shape (quick 1, full 20)")
    parser.add_argument("--windows", type=int, default=20, help="windows per version after the reference")
    parser.add_argument("--batch", type=int, default=500, help="messages per batch (500)")
    parser.add_argument("--seed", type=int, default=0)
    args, chosen = harness.parse(parser, quick={"models": 1}, full={"models": 20})
    settings = {**chosen, "windows": args.windows, "batch": args.batch}
    run = harness.BenchRun("calibration_latency", args, settings)
    predictions = args.models * (5000 + args.windows * 1000)
    lines = workload.messages(predictions, models=args.models, seed=args.seed, same_rows=True)
    runs = {
        "inline": run_once(lines, args.models, args.batch, args.seed + 1, None),
        "worker": run_once(lines, args.models, args.batch, args.seed + 2, CalibrationWorker()),
        "thread": run_once(lines, args.models, args.batch, args.seed + 3, ThreadWorker()),
    }
    for name, result in runs.items():
        for key, value in result.items():
            run.figure(f"{name}_{key}", value)
        expected = args.models * args.windows
        if result["windows"] != expected:
            raise SystemExit(f"{name}: {result['windows']} windows evaluated, not {expected}")
    inline = runs["inline"]
    for name in ("worker", "thread"):
        result = runs[name]
        run.compare(f"{name}: longest batch with windows", result["max"], inline["max"], "inline", "s")
        run.compare(f"{name}: most batch-thread CPU in one batch", result["max_cpu"], inline["max_cpu"],
                    "inline", "s")
        run.compare(f"{name}: median batch", result["median"], inline["median"], "inline", "s")
    worker = runs["worker"]
    run.compare("worker: longest batch fitting a reference (not calibration)", worker["max_fitting"],
                inline["max_fitting"], "inline", "s")
    run.compare("worker: thresholds simulated", worker["thresholds"], inline["thresholds"], "inline", "")
    share = gil_share(1.0)
    run.compare("Python speed beside a simulation on a thread", share, 1.0, "alone", "share")
    run.write()


if __name__ == "__main__":
    main()
