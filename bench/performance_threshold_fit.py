"""Cost of fitting the performance thresholds of one reference, as the collector fits them.

Seeded references of 5,000 rows and windows of 1,000, 2,000 bootstrap
resamples: each statistic the collector fits is scored over all resamples at
once (``on_resamples``: a matrix of row indices in, one value per resample
out) against the baseline that calls the statistic once per resample (the
per-resample loop, :func:`detectors.performance_threshold.per_resample`, the
way the fit ran before), printed with their ratio. The statistics: a binary
classifier's realized metrics (labels and predictions as Python ints, the
way events and reference files deliver them; baseline ``evaluate`` on each
resample's rows), CBPE's estimate, a 3-class model's CBPE estimate, and DLE's
estimated errors. The thresholds of both are equal (tests/test_performance_threshold_batch.py).
Best of ``--rounds``.

    .venv/bin/python bench/performance_threshold_fit.py [--full] [--rows 5000] [--window 1000] [--rounds N]

(quick: best of 1; ``--full``: best of 3, the figures of docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping

import harness
import numpy as np

from detectors.base import BatchStatistic
from detectors.cbpe import CBPE
from detectors.dle import expected_error_scores, expected_metrics
from detectors.multiclass_cbpe import MulticlassCBPE
from detectors.performance import PerformanceEvaluator
from detectors.performance_threshold import PerformanceThresholds, Statistic, per_resample


def best_of(rounds: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def statistics(rows: int) -> dict[str, tuple[BatchStatistic, Statistic]]:
    """Each statistic the collector fits: its batch form and its one-resample form."""
    rng = np.random.default_rng(0)
    p = 1 / (1 + np.exp(-2 * rng.normal(0.0, 4.9, rows)))
    labels = [int(v) for v in rng.random(rows) < p]
    predicted = [int(v) for v in p >= 0.5]
    evaluator = PerformanceEvaluator("binary_classification")

    def realized(r: np.ndarray) -> Mapping[str, float | None]:
        return evaluator.evaluate([labels[i] for i in r], [predicted[i] for i in r], p[r]).metrics

    cbpe = CBPE()
    cbpe.fit(p, np.array(labels, dtype=np.float64))
    positive = np.array(predicted) == 1
    raw = rng.dirichlet([2.0, 1.0, 1.0], size=rows)
    multiclass = MulticlassCBPE()
    multiclass.fit(raw, ("0", "1", "2"), [str(rng.choice(3, p=row / row.sum())) for row in raw])
    chosen = [str(v) for v in raw.argmax(axis=1)]
    absolute = np.abs(rng.normal(0.0, 1.0, rows))
    squared = absolute**2 * rng.uniform(1.0, 1.5, rows)
    return {
        "realized (binary)": (evaluator.on_resamples(labels, predicted, p), realized),
        "estimated (CBPE)": (
            cbpe.on_resamples(p, positive),
            lambda r: cbpe.estimate(p[r], positive[r]).metrics,
        ),
        "estimated (multiclass CBPE, 3 classes)": (
            multiclass.on_resamples(raw, chosen),
            lambda r: multiclass.estimate(raw[r], [chosen[i] for i in r]).metrics,
        ),
        "estimated (DLE)": (
            lambda r: expected_error_scores(absolute[r], squared[r]),
            lambda r: expected_metrics(absolute[r], squared[r]),
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--window", type=int, default=1000)
    parser.add_argument("--rounds", type=int, help="best of N (quick 1, full 3)")
    args, chosen = harness.parse(parser, quick={"rounds": 1}, full={"rounds": 3})
    sizes = {**chosen, "rows": args.rows, "window": args.window}
    run = harness.BenchRun("performance_threshold_fit", args, sizes)
    fitter = PerformanceThresholds()
    print(f"reference {args.rows} rows, window {args.window}, {fitter.resamples} resamples")
    for name, (batch, one) in statistics(args.rows).items():
        vectorised = best_of(args.rounds, lambda b=batch: fitter.fit(b, args.rows, args.window))
        looped = best_of(args.rounds, lambda o=one: fitter.fit(per_resample(o), args.rows, args.window))
        run.compare(f"{name} thresholds, all resamples at once", vectorised, looped,
                    "one statistic call per resample", "s")
    run.write()


if __name__ == "__main__":
    main()
