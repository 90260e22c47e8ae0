"""Scaling: per-event cost against the number of models and of features, and memory while collecting.

In-memory ``Pipeline.process`` (event time, batches of 2,000) on the workload of
``bench/workload.py``, with the default configuration except where said:

1. Models: the same total traffic (``--traffic`` predictions and half as many
   labels, models in turn) for 1, 10, 100 (and with ``--full`` 1,000) models,
   timed after every model's reference is complete and its first windows,
   pooled test included, are evaluated and calibrated (untimed). So that 1,000
   references fit in the run, references are 1,000 events and windows 200
   (``defaults.reference.auto_events``, ``defaults.window.events``; windows
   close by count only: ``max_seconds`` 1e9, since with 1,000 models in turn a
   model's 200 events span 2,000 s of event time), and
   ``limits.max_models`` is raised to the number of models. Every model's
   reference holds the same rows (one shape, so calibration is shared); the
   timed traffic is drawn independently per model. Baseline: one model. The
   heap is frozen after every batch, timed with it, as ``driftline collect``
   does (``collector/heap_freezer.py``); ``--parts models_unfrozen`` (in
   ``--full``) measures ``Pipeline.process`` alone, where the garbage
   collector's full collections grow with the models. ``--parts
   models_paired`` (in ``--full``) measures the same with one worker process
   per count of models, set up at once and then taking turns batch by batch
   (``harness.paired_chunks``), so that every count sees the machine in the
   same state: on this shared machine separate runs of the same count differ
   by up to a third.
2. Features: microseconds per prediction with 100 and with 500 features per
   prediction (every tenth a category), one model, same reference and window
   sizes (so numerical features get KS, Evidently's choice for a reference of
   at most 1,000 rows), predictions only. Baseline: a ``json.loads`` loop over
   the same messages, and 100 features for 500. With ``--full`` (or ``--parts
   features_default``) the same at the default configuration too (automatic
   reference of 5,000, windows of 1,000: Wasserstein for numerical features),
   the configuration issue 14's goal is stated for.
3. Memory: ``--idle`` model versions (one per model) each holding 4,999
   predictions of 20 features, one short of the default automatic reference
   of 5,000, so all are still collecting. Resident memory before and after
   (psutil, after ``gc.collect``), per version. Baseline: the wire size of the
   buffered events. Measured first, in a fresh process, so that no memory
   freed by the other parts is reused and hides the growth.

Times are CPU seconds of the process (``time.process_time``), so that other work
on a shared machine changes them little.

Run: ``.venv/bin/python bench/scaling.py [--full]``
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable

import harness
import psutil
import workload
from workload import feed, raw

from collector.config import Config, parse_config
from collector.dlq import MemoryDeadLetterSink
from collector.heap_freezer import HeapFreezer
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from exporters.store import MetricStore

REFERENCE, WINDOW = 1000, 200
PARTS = ["memory", "models", "models_paired", "models_unfrozen", "features", "features_default"]
QUICK_PARTS = ["memory", "models", "features"]
"""``features_default`` fits a 5,000-row reference of 500 features (about 30 CPU s): full sizes only."""
WARM_WINDOWS = 4
"""Windows evaluated per model before timing: the pooled test's first calibration is at the 4th."""


def bench_config(models: int) -> Config:
    return parse_config(
        {
            "defaults": {
                "reference": {"auto_events": REFERENCE},
                "window": {"events": WINDOW, "max_seconds": 1e9},
            },
            "limits": {"max_models": max(models, 100)},
        }
    )


def predictions_only(lines: list[bytes]) -> list[bytes]:
    return [line for line in lines if line.startswith(b'{"type":"prediction"')]


def per_event_us(models: int, traffic: int, seed: int, freeze: bool) -> tuple[float, float]:
    """Microseconds per timed message for ``models`` models, and the untimed set-up's seconds.

    With ``freeze`` the heap is frozen after every batch, as ``driftline collect`` does
    (:class:`collector.heap_freezer.HeapFreezer`); without, ``Pipeline.process`` alone.
    """
    pipeline, after_batch, setup = warmed_pipeline(models, seed, freeze)
    timed = timed_messages(models, traffic, seed)
    seconds = feed(pipeline, timed, after_batch)
    gc.unfreeze()  # this pipeline is garbage after the call: let the next part's collections free it
    check_set_up(pipeline, models)
    return seconds / len(timed) * 1e6, setup


def warmed_pipeline(
    models: int, seed: int, freeze: bool
) -> tuple[Pipeline, Callable[[], None] | None, float]:
    """A pipeline past every model's reference and first windows, what to run after each batch,
    and the CPU seconds the set-up took."""
    pipeline = Pipeline(bench_config(models), MetricStore(), MemoryDeadLetterSink(), event_time=True)
    freezer = HeapFreezer() if freeze else None
    if freezer is not None:
        freezer.start()
    after_batch = freezer.after_batch if freezer is not None else None
    references = raw(workload.messages(warm_predictions(models), models=models, seed=seed, same_rows=True))
    return pipeline, after_batch, feed(pipeline, references, after_batch)


def warm_predictions(models: int) -> int:
    """Predictions before timing: every model's reference and first windows."""
    return models * (REFERENCE + WARM_WINDOWS * WINDOW)


def timed_messages(models: int, traffic: int, seed: int) -> list[RawMessage]:
    return raw(workload.messages(traffic, models=models, seed=seed + 1, start=warm_predictions(models)))


def check_set_up(pipeline: Pipeline, models: int) -> None:
    evaluated = sum(state.windows_evaluated for state in pipeline.states.values())
    if len(pipeline.states) != models or evaluated < models * WARM_WINDOWS or pipeline.counts.rejected:
        raise SystemExit(f"{models} models: set-up incomplete ({evaluated} windows, {pipeline.counts})")


def models_worker(models: int, traffic: int, seed: int) -> None:
    """One model count's side of the paired part: warm up, then serve the timed batches."""
    pipeline, after_batch, _ = warmed_pipeline(models, seed, freeze=True)
    timed = timed_messages(models, traffic, seed)
    batches = [timed[at : at + workload.BATCH] for at in range(0, len(timed), workload.BATCH)]

    def process(batch: int) -> None:
        pipeline.process(batches[batch])
        if after_batch is not None:
            after_batch()

    harness.serve_chunks(batches, process)
    check_set_up(pipeline, models)


def paired_per_event_us(counts: list[int], traffic: int, seed: int) -> tuple[list[float], list[float]]:
    """Microseconds per timed message for each model count, with the workers taking turns batch by
    batch (:func:`harness.paired_chunks`), and each count's median batch ratio to the first's
    (recorded, not the result: which batches close windows differs with the count of models)."""
    command = [sys.executable, __file__, "--traffic", str(traffic), "--seed", str(seed), "--worker-models"]
    seconds, messages = harness.paired_chunks([[*command, str(models)] for models in counts])
    per_event = [sum(batches) / messages * 1e6 for batches in seconds]
    return per_event, [harness.median_ratio(seconds[0], batches) for batches in seconds]


def per_prediction_us(features: int, timed: int, seed: int, default: bool = False) -> tuple[float, float]:
    """Microseconds per prediction with ``features`` features, and a json.loads loop's; with
    ``default`` on the default configuration instead of the bench's smaller sizes."""
    config = parse_config({}) if default else bench_config(1)
    pipeline = Pipeline(config, MetricStore(), MemoryDeadLetterSink(), event_time=True)
    sizes = config.defaults
    warm = sizes.reference.auto_events + WARM_WINDOWS * sizes.window.events
    feed(pipeline, raw(predictions_only(workload.messages(warm, features=features, seed=seed))))
    lines = predictions_only(workload.messages(timed, features=features, seed=seed + 1, start=warm))
    seconds = feed(pipeline, raw(lines))
    started = time.process_time()
    for line in lines:
        json.loads(line)
    stdlib = time.process_time() - started
    return seconds / len(lines) * 1e6, stdlib / len(lines) * 1e6


def compare_widths(run: harness.BenchRun, timed: int, seed: int, default: bool) -> None:
    """100 and 500 features per prediction against a json.loads loop, and 500 against 100."""
    name = ", default configuration" if default else ""
    widths = {}
    for features in (100, 500):
        widths[features], stdlib = per_prediction_us(features, timed, seed, default)
        run.compare(f"{features} features{name}, per prediction", widths[features], stdlib,
                    "json.loads loop", "us")
    run.compare(f"500 features{name}, per prediction", widths[500], widths[100], "100 features", "us")


def idle_memory(versions: int, seed: int) -> tuple[float, float]:
    """Resident MB per model version collecting its reference, and the buffered events' wire MB."""
    config = parse_config({"limits": {"max_models": max(versions, 100)}})
    buffered = config.defaults.reference.auto_events - 1
    lines = predictions_only(workload.messages(versions * buffered, models=versions, seed=seed))
    messages = raw(lines)
    pipeline = Pipeline(config, MetricStore(), MemoryDeadLetterSink(), event_time=True)
    gc.collect()
    before = psutil.Process().memory_info().rss
    feed(pipeline, messages)
    gc.collect()
    grown = psutil.Process().memory_info().rss - before
    if not all(state.collecting_reference for state in pipeline.states.values()):
        raise SystemExit("a model version finished its reference: the memory figure would be wrong")
    wire = sum(len(line) for line in lines)
    return grown / versions / 1e6, wire / versions / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, nargs="+", help="model counts (quick 1 10 100, full +1000)")
    parser.add_argument("--traffic", type=int, help="timed predictions (quick 40,000, full 400,000)")
    parser.add_argument("--feature-events", type=int, help="timed predictions per feature count")
    parser.add_argument("--idle", type=int, help="idle model versions (quick 10, full 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parts", nargs="+", choices=PARTS, help="what to measure (quick: all but "
                        "models_paired, models_unfrozen and features_default; full: all)")
    parser.add_argument("--worker-models", type=int, help=argparse.SUPPRESS)
    args, chosen = harness.parse(
        parser,
        quick={"models": [1, 10, 100], "traffic": 40_000, "feature_events": 2_000, "idle": 10,
               "parts": QUICK_PARTS},
        full={"models": [1, 10, 100, 1000], "traffic": 400_000, "feature_events": 10_000, "idle": 100,
              "parts": PARTS},
    )
    if args.worker_models is not None:
        models_worker(args.worker_models, args.traffic, args.seed)
        return
    run = harness.BenchRun("scaling", args, chosen)
    if "memory" in args.parts:  # first, before the other parts' freed memory can be reused
        per_version, wire = idle_memory(args.idle, args.seed)
        run.figure("idle_mb_for_100_versions", round(per_version * 100, 1))
        run.compare(f"memory per idle model version ({args.idle} versions)", per_version, wire,
                    "wire size of its buffered events", "MB")
    if "models" in args.parts:
        costs = {}
        for models in args.models:
            costs[models], setup = per_event_us(models, args.traffic, args.seed, freeze=True)
            run.figure(f"setup_cpu_seconds_{models}_models", round(setup, 1))
            run.compare(f"{models} models, per event (heap frozen per batch, as collect)", costs[models],
                        costs[args.models[0]], f"{args.models[0]} model(s)", "us")
    if "models_paired" in args.parts:
        per_event, medians = paired_per_event_us(args.models, args.traffic, args.seed)
        for models, cost, median in zip(args.models, per_event, medians, strict=True):
            run.figure(f"paired_median_batch_ratio_{models}_models", round(median, 4))
            run.compare(f"{models} models, per event, batches in turn", cost, per_event[0],
                        f"{args.models[0]} model(s)", "us")
    if "models_unfrozen" in args.parts:
        plain = {}
        for models in args.models:
            plain[models], _ = per_event_us(models, args.traffic, args.seed, freeze=False)
            run.compare(f"{models} models, per event (Pipeline.process alone)", plain[models],
                        plain[args.models[0]], f"{args.models[0]} model(s)", "us")
    if "features" in args.parts:
        compare_widths(run, args.feature_events, args.seed, default=False)
    if "features_default" in args.parts:
        compare_widths(run, args.feature_events, args.seed, default=True)
    run.write()


if __name__ == "__main__":
    main()
