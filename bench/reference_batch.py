"""The batch that completes an automatic reference, against a steady batch and against the
per-resample threshold fit.

In-memory ``Pipeline.process`` on the workload of ``bench/workload.py`` (one
binary model, 20 features, probabilities, labels 2:1), in batches of
``--batch`` messages, calibration on the collector's worker process
(``driftline collect``) with the thresholds in memory. The batch in which the
5,000-prediction automatic reference completes fits every detector and the
performance thresholds of the reference (realized and CBPE's estimate, 2,000
bootstrap resamples each) in the batch thread. Printed, each on the wall clock
and as CPU time of the batch thread: that batch against the median of the
batches after it (windows closing, drift tested, labels joined), and
against the same pipeline whose thresholds are fitted with one statistic call
per resample (the loop the fit ran before, same statistics); and the time
spent in the threshold fits of that batch, both ways. CPU time is the figure to
read on a shared machine: wall time there is mostly waiting for a core. Median over ``--runs``
runs, each with its own drift seed.

Run: ``.venv/bin/python bench/reference_batch.py [--full] [--runs N] [--batch 500]``
(quick: 1 run; ``--full``: 5, the figures of docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import harness
import numpy as np
import numpy.typing as npt
import workload

import collector.model_health as model_health
from collector.calibration_worker import CalibrationWorker
from collector.config import parse_config
from collector.dlq import MemoryDeadLetterSink
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from detectors.base import BatchStatistic
from detectors.performance_threshold import PerformanceThreshold, PerformanceThresholds, per_resample
from exporters.store import MetricStore

MESSAGES = 20_000  # the reference completes near message 7,500 (labels are a third of them)


class TimedThresholds(PerformanceThresholds):
    """The collector's fitter, adding up the wall and thread CPU time its fits take."""

    spent = 0.0
    spent_cpu = 0.0

    def fit(
        self, statistic: BatchStatistic, n_rows: int, window_size: int
    ) -> dict[str, PerformanceThreshold]:
        started, started_cpu = time.perf_counter(), time.thread_time()
        try:
            return super().fit(statistic, n_rows, window_size)
        finally:
            TimedThresholds.spent += time.perf_counter() - started
            TimedThresholds.spent_cpu += time.thread_time() - started_cpu


class LoopedThresholds(TimedThresholds):
    """The baseline: the same statistic called once per resample."""

    def fit(
        self, statistic: BatchStatistic, n_rows: int, window_size: int
    ) -> dict[str, PerformanceThreshold]:
        def one(rows: npt.NDArray[np.intp]) -> Mapping[str, float | None]:
            return {metric: float(values[0]) for metric, values in statistic(rows[None]).items()}

        return super().fit(per_resample(one), n_rows, window_size)


@contextmanager
def fitter(kind: type[PerformanceThresholds]) -> Iterator[None]:
    """The collector's model health fits its thresholds with ``kind`` meanwhile."""
    original = model_health.PerformanceThresholds
    model_health.PerformanceThresholds = kind  # type: ignore[misc]
    try:
        yield
    finally:
        model_health.PerformanceThresholds = original  # type: ignore[misc]


def run_once(lines: list[bytes], batch: int, seed: int) -> dict[str, float]:
    """Wall and batch-thread CPU seconds of the completing batch and of the median other batch."""
    config = parse_config({"calibration_cache": None, "defaults": {"drift": {"seed": seed}}})
    worker = CalibrationWorker()
    pipeline = Pipeline(config, MetricStore(), MemoryDeadLetterSink(), event_time=True, calibration=worker)
    steady: list[tuple[float, float]] = []
    completing: tuple[float, float, float, float] | None = None
    try:
        for at in range(0, len(lines), batch):
            messages = [RawMessage(line, "bench", 0, offset, 0.0) for offset, line in
                        enumerate(lines[at : at + batch], start=at)]
            collecting = _collecting(pipeline)
            TimedThresholds.spent = TimedThresholds.spent_cpu = 0.0
            started, started_cpu = time.perf_counter(), time.thread_time()
            pipeline.process(messages)
            took, took_cpu = time.perf_counter() - started, time.thread_time() - started_cpu
            if collecting and not _collecting(pipeline):
                completing = (took, took_cpu, TimedThresholds.spent, TimedThresholds.spent_cpu)
            elif not collecting:
                steady.append((took, took_cpu))
    finally:
        worker.close()
    if completing is None:
        raise SystemExit("no automatic reference completed: more messages needed")
    return {
        "completing": completing[0],
        "completing_cpu": completing[1],
        "fit": completing[2],
        "fit_cpu": completing[3],
        "steady": statistics.median(t for t, _ in steady),
        "steady_cpu": statistics.median(c for _, c in steady),
    }


def _collecting(pipeline: Pipeline) -> bool:
    return not pipeline.states or any(state.collecting_reference for state in pipeline.states.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, help="runs, the median reported (quick 1, full 5)")
    parser.add_argument("--batch", type=int, default=500, help="messages per batch (500)")
    args, chosen = harness.parse(parser, quick={"runs": 1}, full={"runs": 5})
    run = harness.BenchRun("reference_batch", args, {**chosen, "batch": args.batch, "messages": MESSAGES})
    lines = workload.messages(MESSAGES, seed=0)
    results: dict[str, list[dict[str, float]]] = {"vectorised": [], "looped": []}
    for index in range(args.runs):
        for name, kind in (("vectorised", TimedThresholds), ("looped", LoopedThresholds)):
            with fitter(kind):
                results[name].append(run_once(lines, args.batch, 10 * index + len(results[name]) + 1))
    median = {
        name: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        for name, runs in results.items()
    }
    fast, slow = median["vectorised"], median["looped"]
    for name, figures in median.items():
        for key, value in figures.items():
            run.figure(f"{name}_{key}_ms", round(value * 1000, 1))
    run.compare("completing batch, wall", fast["completing"] * 1000, fast["steady"] * 1000,
                "median steady batch", "ms")
    run.compare("completing batch, batch-thread CPU", fast["completing_cpu"] * 1000,
                fast["steady_cpu"] * 1000, "median steady batch", "ms")
    run.compare("completing batch, wall", fast["completing"] * 1000, slow["completing"] * 1000,
                "thresholds fitted one statistic call per resample", "ms")
    run.compare("completing batch, batch-thread CPU", fast["completing_cpu"] * 1000,
                slow["completing_cpu"] * 1000, "thresholds fitted one statistic call per resample", "ms")
    run.compare("threshold fits in the completing batch, wall", fast["fit"] * 1000, slow["fit"] * 1000,
                "one statistic call per resample", "ms")
    run.compare("threshold fits in the completing batch, CPU", fast["fit_cpu"] * 1000,
                slow["fit_cpu"] * 1000, "one statistic call per resample", "ms")
    run.write()


if __name__ == "__main__":
    main()
