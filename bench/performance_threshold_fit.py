"""Cost of fitting the performance thresholds of one labelled version, as the collector fits them.

A seeded 5,000-row labelled reference of a binary classifier (labels and
predictions as Python ints, the way events and reference files deliver them)
and windows of 1,000: the realized thresholds are fitted with the classes
converted once for all bootstrap draws (``PerformanceEvaluator.on_rows``)
against the baseline that converts them in every draw (``evaluate`` on the
draw's rows), printed with their ratio; the estimated (CBPE) thresholds beside
them. Best of ``--rounds``.

    .venv/bin/python bench/performance_threshold_fit.py [--full] [--rows 5000] [--window 1000] [--rounds N]

(quick: best of 1; ``--full``: best of 3, the figures of docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import harness
import numpy as np

from detectors.cbpe import CBPE
from detectors.performance import PerformanceEvaluator
from detectors.performance_threshold import PerformanceThresholds, Statistic


def best_of(rounds: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--window", type=int, default=1000)
    parser.add_argument("--rounds", type=int, help="best of N (quick 1, full 3)")
    args, chosen = harness.parse(parser, quick={"rounds": 1}, full={"rounds": 3})
    sizes = {**chosen, "rows": args.rows, "window": args.window}
    run = harness.BenchRun("performance_threshold_fit", args, sizes)
    rng = np.random.default_rng(0)
    p = 1 / (1 + np.exp(-2 * rng.normal(0.0, 4.9, args.rows)))
    labels = [int(v) for v in rng.random(args.rows) < p]
    predicted = [int(v) for v in p >= 0.5]
    evaluator = PerformanceEvaluator("binary_classification")
    fitter = PerformanceThresholds()

    def per_draw(rows: np.ndarray) -> dict[str, float]:
        result = evaluator.evaluate([labels[i] for i in rows], [predicted[i] for i in rows], p[rows])
        return dict(result.metrics)

    def fit(statistic: Statistic) -> Callable[[], object]:
        return lambda: fitter.fit(statistic, args.rows, args.window)

    baseline = best_of(args.rounds, fit(per_draw))
    once = best_of(args.rounds, fit(evaluator.on_rows(labels, predicted, p)))
    cbpe = CBPE()
    cbpe.fit(p, np.array(labels, dtype=np.float64))
    positive = np.array(predicted) == 1
    estimated = best_of(args.rounds, fit(lambda r: cbpe.estimate(p[r], positive[r]).metrics))
    print(f"reference {args.rows} rows, window {args.window}, {fitter.resamples} draws")
    run.compare("realized thresholds, classes converted once", once, baseline,
                "converted and sorted in every draw", "s")
    run.figure("estimated (CBPE) thresholds, s", estimated)
    print(f"estimated (CBPE) thresholds: {estimated:.3f} s")
    run.write()

if __name__ == "__main__":
    main()
