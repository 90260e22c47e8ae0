"""The batch that completes an automatic reference, with the threshold fits on the worker thread,
inline, and inline one statistic call per resample.

In-memory ``Pipeline.process`` on the workload of ``bench/workload.py`` (one
binary model, 20 features, probabilities, labels 2:1), in batches of
``--batch`` messages, calibration on the collector's worker process, the
thresholds in memory. The batch in which the 5,000-prediction automatic
reference completes fits every detector and the performance thresholds of the
reference (realized and CBPE's estimate, 2,000 bootstrap resamples each). Three
ways, in the same run:

* ``worker``: as ``driftline collect`` runs, the threshold fits on the
  :class:`~collector.threshold_worker.ThresholdWorker` thread; the first window
  judged waits for a fit still running;
* ``inline``: the fits in the batch thread (replay's way, and collect's before
  the worker);
* ``looped``: inline, the statistic called once per resample (the fit before it
  was vectorised).

Printed, each on the wall clock and as CPU time of the batch thread: the
completing batch against the median of the batches after it and against the
inline ways, the longest batch of the run (issue 14's bound: no batch over 100
ms), and the time the inline fits took. Each run freezes the objects of the
start-up out of the garbage collector's reach first, and the heap after every
batch, as ``driftline collect`` does (:class:`collector.heap_freezer.HeapFreezer`).
CPU time is the figure to read on a shared machine: wall time there is mostly waiting for a core. Median over
``--runs`` runs, each with its own drift seed.

Run: ``.venv/bin/python bench/reference_batch.py [--full] [--runs N] [--batch 500]``
(quick: 1 run; ``--full``: 5, the figures of docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import gc
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
from collector.heap_freezer import HeapFreezer
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from collector.threshold_worker import ThresholdWorker
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


def run_once(lines: list[bytes], batch: int, seed: int, on_worker: bool) -> dict[str, float]:
    """Wall and batch-thread CPU seconds of the completing batch, of the median and of the longest
    batch after it, and of the threshold fits done in the completing batch."""
    config = parse_config({"calibration_cache": None, "defaults": {"drift": {"seed": seed}}})
    worker = CalibrationWorker()
    thresholds = ThresholdWorker() if on_worker else None
    pipeline = Pipeline(
        config, MetricStore(), MemoryDeadLetterSink(), event_time=True, calibration=worker,
        threshold_worker=thresholds,
    )
    gc.unfreeze()  # the runs before this one are garbage now
    freezer = HeapFreezer()
    freezer.start()  # as driftline collect does before its first batch, and after each below
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
            freezer.after_batch()
    finally:
        worker.close()
        if thresholds is not None:
            thresholds.close()
    if completing is None:
        raise SystemExit("no automatic reference completed: more messages needed")
    return {
        "completing": completing[0],
        "completing_cpu": completing[1],
        "fit": completing[2],
        "fit_cpu": completing[3],
        "steady": statistics.median(t for t, _ in steady),
        "steady_cpu": statistics.median(c for _, c in steady),
        "longest": max(completing[0], *(t for t, _ in steady)),
        "longest_cpu": max(completing[1], *(c for _, c in steady)),
    }


def _collecting(pipeline: Pipeline) -> bool:
    return not pipeline.states or any(state.collecting_reference for state in pipeline.states.values())


WAYS = {
    "worker": (TimedThresholds, True),
    "inline": (TimedThresholds, False),
    "looped": (LoopedThresholds, False),
}
"""Each way: the fitter, and whether the fits run on the threshold worker."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, help="runs, the median reported (quick 1, full 5)")
    parser.add_argument("--batch", type=int, default=500, help="messages per batch (500)")
    args, chosen = harness.parse(parser, quick={"runs": 1}, full={"runs": 5})
    run = harness.BenchRun("reference_batch", args, {**chosen, "batch": args.batch, "messages": MESSAGES})
    lines = workload.messages(MESSAGES, seed=0)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in WAYS}
    for index in range(args.runs):
        for name, (kind, on_worker) in WAYS.items():
            with fitter(kind):
                seed = 10 * index + len(results[name]) + 1
                results[name].append(run_once(lines, args.batch, seed, on_worker))
    median = {
        name: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        for name, runs in results.items()
    }
    for name, figures in median.items():
        for key, value in figures.items():
            run.figure(f"{name}_{key}_ms", round(value * 1000, 1))
    worker, inline, looped = median["worker"], median["inline"], median["looped"]
    for clock, suffix in (("wall", ""), ("batch-thread CPU", "_cpu")):
        run.compare(f"completing batch, fits on the worker, {clock}", worker["completing" + suffix] * 1000,
                    worker["steady" + suffix] * 1000, "median steady batch", "ms")
        run.compare(f"completing batch, fits on the worker, {clock}", worker["completing" + suffix] * 1000,
                    inline["completing" + suffix] * 1000, "fits inline", "ms")
        run.compare(f"longest batch, fits on the worker, {clock}", worker["longest" + suffix] * 1000, 100.0,
                    "issue 14's bound", "ms")
        run.compare(f"completing batch, fits inline, {clock}", inline["completing" + suffix] * 1000,
                    looped["completing" + suffix] * 1000, "thresholds fitted one statistic call per resample",
                    "ms")
    run.compare("threshold fits in the completing batch, inline, wall", inline["fit"] * 1000,
                looped["fit"] * 1000, "one statistic call per resample", "ms")
    run.compare("threshold fits in the completing batch, inline, CPU", inline["fit_cpu"] * 1000,
                looped["fit_cpu"] * 1000, "one statistic call per resample", "ms")
    run.write()


if __name__ == "__main__":
    main()
