"""Calibration latency: the longest batch while new model versions get their first windows.

In-memory ``Pipeline.process`` on the wall clock (as ``driftline collect``
runs), default configuration (calibrated mode, 5,000-event automatic
references, 1,000-event windows, 4 pooled windows) with the thresholds kept in
memory only, on the workload of ``bench/workload.py`` with ``--models`` model
versions of one shape (the same reference rows), in batches of ``--batch``
messages, each followed by the time rules' tick as in the collector's loop
(both timed). The traffic runs until every version has evaluated its pooled test
(5 windows), so every calibration a first window needs is paid inside a batch.

Baseline: cache-miss calibration inline, in the batch that needs it (what
replay does). Result: calibration on the collector's worker process
(:mod:`collector.calibration_worker`), windows held until their thresholds
arrive. Each figure is the longest and the median batch in wall seconds; both
runs must end with the same windows evaluated, and the number of distinct
thresholds simulated is printed (one shape: the same for 1 and 100 versions).
Each run uses its own drift seed, so neither finds the other's thresholds.

Run: ``.venv/bin/python bench/calibration_latency.py [--full]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import harness
import workload

from collector.calibration_worker import CalibrationWorker
from collector.config import Config, parse_config
from collector.dlq import MemoryDeadLetterSink
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from detectors import threshold_cache
from exporters.store import MetricStore

WINDOWS = 5
"""Windows per version: the fifth one (with a 4-window pool) is the first pooled test."""


def bench_config(models: int, seed: int) -> Config:
    return parse_config(
        {
            "calibration_cache": None,
            "defaults": {"window": {"max_seconds": 1e9}, "drift": {"seed": seed}},
            "limits": {"max_models": max(models, 100)},
        }
    )


def run_once(lines: list[bytes], models: int, batch: int, seed: int, worker: bool) -> dict[str, float]:
    """Batch wall times with calibration inline or on the worker; windows and thresholds at the end.

    ``max_fitting`` is the longest batch in which a reference completed (the
    detectors are fitted there, which is not calibration); ``max`` the longest of the others."""
    calibration = CalibrationWorker() if worker else None
    pipeline = Pipeline(
        bench_config(models, seed), MetricStore(), MemoryDeadLetterSink(), event_time=False,
        calibration=calibration,
    )
    known = len(threshold_cache._PROCESS_MEMORY)
    durations, fitting = [], [0.0]
    try:
        for at in range(0, len(lines), batch):
            received = time.time()
            chunk = enumerate(lines[at : at + batch], start=at)
            messages = [RawMessage(line, "bench", 0, offset, received) for offset, line in chunk]
            fitted = _fitted(pipeline)
            started = time.perf_counter()
            pipeline.process(messages)
            pipeline.tick(time.time())  # as the collector's loop does between batches
            took = time.perf_counter() - started
            (fitting if _fitted(pipeline) > fitted else durations).append(took)
        pipeline.finish()
    finally:
        if calibration is not None:
            calibration.close()
    evaluated = sum(state.windows_evaluated for state in pipeline.states.values())
    return {
        "max": max(durations),
        "median": statistics.median(durations),
        "max_fitting": max(fitting),
        "windows": evaluated,
        "thresholds": len(threshold_cache._PROCESS_MEMORY) - known,
    }


def _fitted(pipeline: Pipeline) -> int:
    """Model versions whose reference is complete (their detectors fitted)."""
    return sum(not state.collecting_reference for state in pipeline.states.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, help="model versions of one shape (quick 1, full 20)")
    parser.add_argument("--batch", type=int, default=500, help="messages per batch (500)")
    parser.add_argument("--seed", type=int, default=0)
    args, chosen = harness.parse(parser, quick={"models": 1}, full={"models": 20})
    run = harness.BenchRun("calibration_latency", args, {**chosen, "batch": args.batch})
    predictions = args.models * (5000 + WINDOWS * 1000)
    lines = workload.messages(predictions, models=args.models, seed=args.seed, same_rows=True)
    inline = run_once(lines, args.models, args.batch, args.seed + 1, worker=False)
    worker = run_once(lines, args.models, args.batch, args.seed + 2, worker=True)
    for name, result in (("inline", inline), ("worker", worker)):
        for key, value in result.items():
            run.figure(f"{name}_{key}", value)
    if inline["windows"] != worker["windows"] or inline["windows"] < args.models * WINDOWS:
        raise SystemExit(f"windows evaluated differ or are missing: {inline} against {worker}")
    run.compare("longest batch with windows", worker["max"], inline["max"], "calibration inline", "s")
    run.compare("longest batch fitting a reference", worker["max_fitting"], inline["max_fitting"],
                "calibration inline", "s")
    run.compare("median batch", worker["median"], inline["median"], "calibration inline", "s")
    run.compare("thresholds simulated", worker["thresholds"], inline["thresholds"], "inline", "")
    run.write()


if __name__ == "__main__":
    main()
