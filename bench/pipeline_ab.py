"""Pipeline A/B: the steady-state cost of this tree against another commit's, in paired chunks.

On a shared machine the same run varies by 10-30% from one minute to the
next, more than most single changes save, so comparing two separate runs
cannot tell a 3% gain from noise. Here two worker processes, one per source
tree (``--base``, a git commit checked out into a temporary worktree, and
this tree), each build the pipeline of ``bench/pipeline_throughput.py``
(default configuration, event time; ``--features`` per prediction, 20 by
default) and take the same ``--warmup`` messages
untimed; then they take the same timed messages in chunks of 2,000 (the
collector's batch), alternately, chunk by chunk, so both see the machine in
the same state. Each chunk's CPU time is the worker's own
(``time.process_time``). Printed: both trees' microseconds per message over
all chunks and their ratio, and the median of the per-chunk ratios (the
figure noise moves least). ``--base HEAD`` with a clean tree is an A/A run:
its median ratio shows the harness's own spread (0.99-1.00 here; the ratio of
the totals moved up to 3% when a few chunks of one side ran slow).

Run: ``.venv/bin/python bench/pipeline_ab.py [--base COMMIT] [--full]``
(``--worker`` is the mode the bench starts its two processes in).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import harness

ROOT = Path(__file__).resolve().parent.parent
CHUNK = 2000
"""Messages per timed chunk: the collector's batch, as ``workload.BATCH`` feeds the warm-up."""


def worker(tree: Path, warmup: int, timed: int, features: int) -> None:
    """Warm a pipeline of ``tree``, then serve its timed chunks (:func:`harness.serve_chunks`)."""
    sys.path[:0] = [str(tree), str(tree / "sdk")]
    import workload  # this bench's folder: the same seeded messages in both trees
    from workload import feed, raw

    from collector.config import Config
    from collector.dlq import MemoryDeadLetterSink
    from collector.pipeline import Pipeline
    from exporters.store import MetricStore

    lines = workload.messages((warmup + timed) * 2 // 3 + workload.LABEL_LAG, features=features, seed=0)
    warm, messages = raw(lines[:warmup]), raw(lines[warmup : warmup + timed])
    pipeline = Pipeline(Config(), MetricStore(), MemoryDeadLetterSink(), event_time=True)
    feed(pipeline, warm)
    chunks = [messages[at : at + CHUNK] for at in range(0, timed, CHUNK)]
    harness.serve_chunks(chunks, lambda chunk: pipeline.process(chunks[chunk]))
    if pipeline.counts.total != warmup + timed or pipeline.counts.rejected:
        raise SystemExit(f"{tree}: pipeline counts do not add up: {pipeline.counts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="HEAD", help="the commit to compare with (default HEAD)")
    parser.add_argument("--warmup", type=int, help="untimed messages first (30,000)")
    parser.add_argument("--timed", type=int, help="timed messages (quick 60,000, full 240,000)")
    parser.add_argument("--features", type=int, default=20, help="features per prediction (20)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tree", type=Path, help=argparse.SUPPRESS)
    args, chosen = harness.parse(
        parser, quick={"warmup": 30_000, "timed": 60_000}, full={"warmup": 30_000, "timed": 240_000}
    )
    if args.worker:
        worker(args.tree, args.warmup, args.timed, args.features)
        return
    run = harness.BenchRun("pipeline_ab", args, chosen)
    commit = subprocess.run(["git", "rev-parse", "--short", args.base], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", str(base), commit], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            command = [sys.executable, __file__, "--worker", "--warmup", str(args.warmup), "--timed",
                       str(args.timed), "--features", str(args.features), "--tree"]
            (base_seconds, ours_seconds), messages = harness.paired_chunks(
                [[*command, str(base)], [*command, str(ROOT)]]
            )
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=True)
    base_us, ours_us = (sum(s) / messages * 1e6 for s in (base_seconds, ours_seconds))
    run.figure("base_commit", commit)
    run.figure("features", args.features)
    run.figure("chunks", len(base_seconds))
    median = harness.median_ratio(base_seconds, ours_seconds)
    run.figure("median_chunk_ratio", round(median, 4))
    run.compare(f"this tree, steady state, {args.features} features, per message", ours_us, base_us,
                f"commit {commit}", "us")
    print(f"median of the {len(base_seconds)} paired chunks' ratios: {median:.3f}")
    run.write()


if __name__ == "__main__":
    main()
