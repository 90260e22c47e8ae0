"""What every benchmark under bench/ shares: quick or full sizes, the machine, and a JSON record.

A bench parses its command line with :func:`parse`, which adds the common
options (``--full`` for the sizes the figures in docs/benchmarks.md were
measured at, ``--results`` for the output folder) and picks the sizes, prints each
comparison through :meth:`BenchRun.compare` (baseline, result and their ratio,
measured in the same run) and ends with :meth:`BenchRun.write`, which writes
``bench/results/NAME.json``: the command, the machine (cores, CPU model,
memory, load), the date, the sizes and every figure.

Standard library only: ``bench/cbpe_vs_nannyml.py`` runs part of itself under
NannyML's own interpreter, which has nothing else of Driftline's.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence, Sized
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

RESULTS = Path(__file__).resolve().parent / "results"


def parse(
    parser: argparse.ArgumentParser, quick: dict[str, Any], full: dict[str, Any]
) -> tuple[argparse.Namespace, dict[str, Any]]:
    """The arguments, with the common options added, and the sizes chosen (see :func:`sizes`)."""
    _add_options(parser)
    args = parser.parse_args()
    return args, sizes(args, quick, full)


def _add_options(parser: argparse.ArgumentParser) -> None:
    """``--full`` and ``--results``, the same in every bench."""
    parser.add_argument(
        "--full",
        action="store_true",
        help="run the full sizes (those of docs/benchmarks.md); default: the quick sizes of `make bench`",
    )
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help=f"folder for the JSON results (default {RESULTS})"
    )


def sizes(args: argparse.Namespace, quick: dict[str, Any], full: dict[str, Any]) -> dict[str, Any]:
    """The size options: what was given on the command line, else the full or quick default.

    Size options must default to ``None`` in the parser so that a given value wins.
    """
    chosen = {}
    for name, quick_value in quick.items():
        given = getattr(args, name, None)
        value = given if given is not None else full[name] if args.full else quick_value
        setattr(args, name, value)
        chosen[name] = value
    return chosen


def machine() -> dict[str, Any]:
    """Cores, CPU model, memory and load of this machine (Linux /proc where available)."""
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _proc_field("/proc/cpuinfo", "model name"),
        "memory_total": _proc_field("/proc/meminfo", "MemTotal"),
        "load_average": [round(load, 2) for load in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _proc_field(path: str, name: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                key, _, value = line.partition(":")
                if key.strip() == name:
                    return value.strip()
    except OSError:
        return None
    return None


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def best_seconds(loop: Callable[[T], object], batch: T, rounds: int) -> float:
    """Best CPU seconds of the process over ``rounds`` calls of ``loop(batch)`` (wall time on a
    shared machine varies several-fold)."""
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        loop(batch)
        best = min(best, time.process_time() - started)
    return best


def serve_chunks(chunks: Sequence[Sized], process_chunk: Callable[[int], object]) -> None:
    """The worker's side of :func:`paired_chunks`: say ``ready``, how many chunks it has and how
    many items (messages) they hold, then, for each chunk number read from stdin, run it and answer
    its CPU seconds."""
    print(f"ready {len(chunks)} {sum(map(len, chunks))}", flush=True)
    for line in sys.stdin:
        started = time.process_time()
        process_chunk(int(line))
        print(time.process_time() - started, flush=True)


def paired_chunks(commands: list[list[str]]) -> tuple[list[list[float]], int]:
    """CPU seconds of every chunk of each worker (one per command, see :func:`serve_chunks`),
    the workers taking turns chunk by chunk, in the reverse order every other chunk; and the items
    the chunks of each worker hold (the same for all, checked).

    On a shared machine the same work varies by 10-30% from one minute to the
    next; workers that take turns see it in the same state, so the ratio of
    their chunks is what noise moves least. Only one worker runs at a time.
    """
    workers = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for command in commands
    ]
    sizes = set()
    for process in workers:
        assert process.stdout is not None
        word, *counts = process.stdout.readline().split()
        if word != "ready":
            raise SystemExit("a worker failed while setting up")
        chunks, items = map(int, counts)
        sizes.add((chunks, items))
    if len(sizes) != 1:
        raise SystemExit(f"the workers have different chunks (number, items): {sorted(sizes)}")
    chunks, items = sizes.pop()
    seconds: list[list[float]] = [[] for _ in workers]
    for chunk in range(chunks):
        order = range(len(workers)) if chunk % 2 == 0 else reversed(range(len(workers)))
        for which in order:
            stdin, stdout = workers[which].stdin, workers[which].stdout
            assert stdin is not None and stdout is not None
            stdin.write(f"{chunk}\n")
            stdin.flush()
            seconds[which].append(float(stdout.readline()))
    for process in workers:
        assert process.stdin is not None
        process.stdin.close()
        if process.wait(timeout=600) != 0:
            raise SystemExit("a worker failed")
    return seconds, items


def median_ratio(baseline: list[float], result: list[float]) -> float:
    """The median of the chunk-by-chunk ratios ``result / baseline`` (see :func:`paired_chunks`)."""
    return statistics.median(ours / base for base, ours in zip(baseline, result, strict=True))


class BenchRun:
    """The figures of one run of one bench, printed as they come and written as JSON at the end."""

    def __init__(self, name: str, args: argparse.Namespace, chosen_sizes: dict[str, Any]) -> None:
        self.name = name
        self.results_dir: Path = args.results
        self.record: dict[str, Any] = {
            "bench": name,
            "command": shlex.join(["python", *sys.argv]),
            "full": bool(args.full),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "git": _git_commit(),
            "machine": machine(),
            "sizes": chosen_sizes,
            "comparisons": [],
            "figures": {},
        }
        self._started = time.perf_counter()
        print(f"{name}: {'full' if args.full else 'quick'} sizes {chosen_sizes}")

    def compare(
        self, what: str, result: float, baseline: float, baseline_name: str, unit: str
    ) -> float:
        """Print and record ``result`` against ``baseline`` (same unit); returns result / baseline."""
        ratio = result / baseline if baseline else float("nan")
        print(
            f"{what}: {_number(result)} {unit} | baseline ({baseline_name}): "
            f"{_number(baseline)} {unit} | ratio {ratio:.3g}"
        )
        self.record["comparisons"].append(
            {
                "what": what,
                "result": result,
                "baseline": baseline,
                "baseline_name": baseline_name,
                "unit": unit,
                "ratio": ratio,
            }
        )
        return ratio

    def figure(self, name: str, value: Any) -> None:
        """Record a figure that has no baseline of its own (counts, set-up times, settings)."""
        self.record["figures"][name] = value

    def write(self) -> Path:
        """Write ``NAME.json`` into the results folder; returns its path."""
        self.record["seconds"] = round(time.perf_counter() - self._started, 1)
        self.record["machine"]["load_average_end"] = [round(load, 2) for load in os.getloadavg()]
        self.results_dir.mkdir(parents=True, exist_ok=True)
        path = self.results_dir / f"{self.name}.json"
        path.write_text(json.dumps(self.record, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"results: {path} ({self.record['seconds']} s)")
        return path


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
