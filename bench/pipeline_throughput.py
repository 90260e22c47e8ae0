"""Pipeline throughput: in-memory ``Pipeline.process`` and ``driftline replay``, against ``json.loads``.

The workload (``bench/workload.py``): predictions of 20 features (18 numbers,
2 categories) with probabilities, and labels, 2:1, for one model, with the
collector's default configuration (automatic reference of 5,000, windows of
1,000, calibrated drift).

1. In memory, steady state: a fresh ``Pipeline`` (event time, as replay runs)
   first takes ``--warmup`` messages untimed (the reference, its fit and the
   calibrations of the first windows), then the next ``--timed`` messages in
   batches of 2,000 are timed. Baselines in the same process over the same timed messages: a stdlib
   ``json.loads`` loop, a ``collector.fast_decode.decode`` loop (the decoder the
   pipeline runs) and a ``driftline.schema.decode`` loop (the reference
   decoder), and the same pipeline run with the reference decoder in place of
   the collector's (the pipeline before the fast decoder). Best of ``--rounds``.
2. Calibration: the warm-up's cost with an empty calibration cache (its own
   folder, and a drift seed nothing in the process has used), against the same
   warm-up again once the thresholds are cached (a second model version of
   the same shape, or the same one after a restart).
3. End to end: ``driftline replay`` (a subprocess, defaults) of a file of the
   first ``--small`` messages and of one of the first ``--large`` messages;
   the rate is the extra messages over the extra time, so start-up and the
   reference cancel out. Baseline: ``json.loads`` over the same extra lines.

Rates are per CPU second of the process doing the work (``time.process_time``,
and the replay subprocess's user + system time), so that other work on a
shared machine changes them little; on an idle core they equal wall-clock rates.

Run: ``.venv/bin/python bench/pipeline_throughput.py [--full]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import harness
import workload
from driftline import schema
from workload import feed, raw

from collector import fast_decode, pipeline
from collector.config import Config, parse_config
from collector.dlq import MemoryDeadLetterSink
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from exporters.store import MetricStore

ROOT = Path(__file__).resolve().parent.parent


def loop_rate(lines: Sequence[bytes], parse: Callable[[bytes], object], rounds: int) -> float:
    """Best messages per CPU second of calling ``parse`` on every line."""
    best = 0.0
    for _ in range(rounds):
        started = time.process_time()
        for line in lines:
            parse(line)
        best = max(best, len(lines) / (time.process_time() - started))
    return best


def pipeline_rate(warmup: list[RawMessage], timed: list[RawMessage], rounds: int) -> tuple[float, float]:
    """Best steady-state messages/s of Pipeline.process, and the (last) warm-up's seconds."""
    best, warmup_seconds = 0.0, 0.0
    for _ in range(rounds):
        pipeline = Pipeline(Config(), MetricStore(), MemoryDeadLetterSink(), event_time=True)
        warmup_seconds = feed(pipeline, warmup)
        best = max(best, len(timed) / feed(pipeline, timed))
        if pipeline.counts.total != len(warmup) + len(timed) or pipeline.counts.rejected:
            raise SystemExit(f"pipeline counts do not add up: {pipeline.counts}")
    return best, warmup_seconds


@contextlib.contextmanager
def reference_decode() -> Iterator[None]:
    """The pipeline decoding with ``driftline.schema.decode``, as before the collector's decoder."""
    collectors = pipeline.decode
    pipeline.decode = schema.decode
    try:
        yield
    finally:
        pipeline.decode = collectors


def calibration_cost(warmup: list[RawMessage], folder: Path) -> tuple[float, float]:
    """CPU seconds of the warm-up with a cold calibration cache, and with it warm."""
    config = parse_config({"defaults": {"drift": {"seed": 1}}, "calibration_cache": str(folder)})
    cold = feed(Pipeline(config, MetricStore(), MemoryDeadLetterSink(), event_time=True), warmup)
    warm = feed(Pipeline(config, MetricStore(), MemoryDeadLetterSink(), event_time=True), warmup)
    return cold, warm


def replay_seconds(lines: Sequence[bytes], folder: Path) -> float:
    """CPU seconds (user and system) of a ``driftline replay`` subprocess on ``lines``."""
    path = folder / f"events-{len(lines)}.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "sdk")])}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [sys.executable, "-m", "collector.cli", "replay", str(path)],
        check=True,
        stdout=subprocess.DEVNULL,
        env=environment,
        timeout=3600,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=int, help="untimed messages first (quick and full 30,000)")
    parser.add_argument("--timed", type=int, help="timed messages (quick 30,000, full 120,000)")
    parser.add_argument("--rounds", type=int, help="rounds, best kept (quick 1, full 3)")
    parser.add_argument("--small", type=int, help="smaller replay file (20,000)")
    parser.add_argument("--large", type=int, help="larger replay file (quick 60,000, full 120,000)")
    parser.add_argument("--seed", type=int, default=0)
    args, chosen = harness.parse(
        parser,
        quick={"warmup": 30_000, "timed": 30_000, "rounds": 1, "small": 20_000, "large": 60_000},
        full={"warmup": 30_000, "timed": 120_000, "rounds": 3, "small": 20_000, "large": 120_000},
    )
    run = harness.BenchRun("pipeline_throughput", args, chosen)
    predictions = (max(args.warmup + args.timed, args.large) * 2) // 3 + workload.LABEL_LAG
    lines = workload.messages(predictions, seed=args.seed)
    warmup = raw(lines[: args.warmup])
    timed = raw(lines[args.warmup : args.warmup + args.timed])
    timed_lines = [message.value for message in timed]

    stdlib = loop_rate(timed_lines, json.loads, args.rounds)
    decoder = loop_rate(timed_lines, fast_decode.decode, args.rounds)
    reference_decoder = loop_rate(timed_lines, schema.decode, args.rounds)
    ours, warmup_seconds = pipeline_rate(warmup, timed, args.rounds)
    with reference_decode():
        before, _ = pipeline_rate(warmup, timed, args.rounds)
    run.figure("warmup_cpu_seconds_default_config", round(warmup_seconds, 2))
    run.figure("pipeline_us_per_event", round(1e6 / ours, 2))
    run.figure("pipeline_with_schema_decode_us_per_event", round(1e6 / before, 2))
    run.figure("decode_us_per_event", round(1e6 / decoder, 2))
    run.figure("schema_decode_us_per_event", round(1e6 / reference_decoder, 2))
    run.figure("json_loads_us_per_event", round(1e6 / stdlib, 2))
    run.compare("Pipeline.process, steady state", ours, stdlib, "json.loads loop", "events/s")
    run.compare("Pipeline.process, steady state", ours, decoder, "collector's decode loop", "events/s")
    run.compare("Pipeline.process, steady state", ours, before,
                "the same with schema.decode (before)", "events/s")
    run.compare("collector's decode loop", decoder, reference_decoder, "schema.decode loop", "events/s")

    with tempfile.TemporaryDirectory() as folder:
        cold, warm = calibration_cost(warmup, Path(folder))
    run.compare(f"warm-up of {args.warmup:,} messages, thresholds cached", warm, cold,
                "the same with an empty calibration cache", "CPU s")

    with tempfile.TemporaryDirectory() as folder:
        small = replay_seconds(lines[: args.small], Path(folder))
        large = replay_seconds(lines[: args.large], Path(folder))
    extra = lines[args.small : args.large]
    replay_rate = len(extra) / (large - small)
    run.figure("replay_seconds", {"small": round(small, 2), "large": round(large, 2)})
    run.compare(
        f"driftline replay, {args.large:,} minus {args.small:,} events",
        replay_rate,
        loop_rate(extra, json.loads, args.rounds),
        "json.loads loop",
        "events/s",
    )
    run.write()


if __name__ == "__main__":
    main()
