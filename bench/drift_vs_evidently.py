"""Speed: one window of 5,000 rows against a reference of 50,000 rows, 20 features (15 numbers,
5 categories), with evidently's DataDriftPreset and with Driftline's DataDriftDetector, in the same run.

Driftline is timed in both modes; its reference preparation (``fit``), the
first window's calibration and, in calibrated mode, the windows until the
pooled test's first calibration are timed apart, since they happen once per
reference (and per window-size bucket), not per window. The scores are
checked to agree with the preset's before the ratio is printed.

Run: ``.venv/bin/python bench/drift_vs_evidently.py [--full]`` (quick: 1 Evidently run;
``--full``: 3); other shapes with
``--reference``, ``--window``, ``--numbers`` and ``--categories`` (the demo's:
``--reference 5000 --window 1000 --numbers 8 --categories 4``).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import harness
import numpy as np
import pandas as pd

from detectors.base import FeatureKind, FeatureTable
from detectors.data_drift import DataDriftDetector
from exporters.evidently_preset import run_data_drift_preset, value_drift_metrics

N_REFERENCE, N_WINDOW, N_NUMERIC, N_CATEGORICAL = 50_000, 5_000, 15, 5


def make_frame(
    rng: np.random.Generator, n: int, shift: float, numbers: int = N_NUMERIC, categories: int = N_CATEGORICAL
) -> tuple[dict[str, FeatureKind], pd.DataFrame]:
    kinds: dict[str, FeatureKind] = {}
    data: dict[str, np.ndarray] = {}
    for i in range(numbers):
        kinds[f"n{i}"] = "numerical"
        data[f"n{i}"] = rng.normal(shift if i < 3 else 0.0, 1.0 + 0.1 * i, n)
    for j in range(categories):
        labels = np.array([f"v{k}" for k in range(3 + 2 * j)], dtype=object)
        kinds[f"c{j}"] = "categorical"
        data[f"c{j}"] = rng.choice(labels, n)
    return kinds, pd.DataFrame(data)


def to_table(kinds: dict[str, FeatureKind], frame: pd.DataFrame) -> FeatureTable:
    columns = {
        name: frame[name].to_numpy(dtype=np.float64 if kind == "numerical" else object)
        for name, kind in kinds.items()
    }
    return FeatureTable(kinds, columns, len(frame))


def run_evidently(kinds: dict[str, FeatureKind], ref: pd.DataFrame, cur: pd.DataFrame) -> dict[str, float]:
    snapshot = run_data_drift_preset(kinds, ref, cur)
    return {m["config"]["column"]: float(m["value"]) for m in value_drift_metrics(snapshot)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, help="evidently runs, Driftline 50x more (quick 1, full 3)")
    parser.add_argument("--reference", type=int, default=N_REFERENCE, help="reference rows")
    parser.add_argument("--window", type=int, default=N_WINDOW, help="window rows")
    parser.add_argument("--numbers", type=int, default=N_NUMERIC, help="numerical features")
    parser.add_argument("--categories", type=int, default=N_CATEGORICAL, help="categorical features")
    args, chosen = harness.parse(parser, quick={"repeats": 1}, full={"repeats": 3})
    run = harness.BenchRun(
        "drift_vs_evidently",
        args,
        {**chosen, "reference": args.reference, "window": args.window, "numbers": args.numbers,
         "categories": args.categories},
    )
    rng = np.random.default_rng(0)
    shape = (args.numbers, args.categories)
    kinds, ref = make_frame(rng, args.reference, 0.0, *shape)
    windows = [make_frame(rng, args.window, 0.05, *shape)[1] for _ in range(args.repeats)]

    evidently_times, evidently_scores = [], {}
    for frame in windows:
        started = time.perf_counter()
        evidently_scores = run_evidently(kinds, ref, frame)
        evidently_times.append(time.perf_counter() - started)

    reference = to_table(kinds, ref)
    tables = [to_table(kinds, frame) for frame in windows]
    print(
        f"reference {args.reference:,} rows, window {args.window:,} rows, "
        f"{args.numbers} num + {args.categories} cat"
    )
    evidently_window = statistics.median(evidently_times)
    print(
        f"evidently DataDriftPreset: {evidently_window * 1000:.0f} ms per window (median of {args.repeats})"
    )
    for mode in ("evidently", "calibrated"):  # type: Mode
        detector = DataDriftDetector(mode=mode)
        started = time.perf_counter()
        detector.fit(reference)
        fit_seconds = time.perf_counter() - started
        started = time.perf_counter()
        detector.evaluate(tables[0])
        first_seconds = time.perf_counter() - started
        started = time.perf_counter()
        for k in range(1, detector.pooled_windows if mode == "calibrated" else 1):
            detector.evaluate(tables[k % len(tables)])
        warm_up_seconds = time.perf_counter() - started
        times = []
        for _ in range(50):
            for table in tables:
                started = time.perf_counter()
                result = detector.evaluate(table)
                times.append(time.perf_counter() - started)
        ours = {d.feature: d.score for d in result.features}
        worst = max(abs(ours[k] - v) for k, v in evidently_scores.items())
        assert all(math.isclose(ours[k], v, rel_tol=1e-9, abs_tol=1e-9) for k, v in evidently_scores.items())
        window = statistics.median(times)
        print(
            f"driftline {mode:>10} mode: {window * 1000:.2f} ms per window (median of {len(times)}), "
            f"fit {fit_seconds * 1000:.0f} ms, first window incl. calibration {first_seconds * 1000:.0f} ms, "
            f"next windows until the pooled test's calibration {warm_up_seconds * 1000:.0f} ms; "
            f"ratio evidently/driftline = {evidently_window / window:.0f}x; max |score diff| {worst:.1e}"
        )
        run.figure(f"{mode}_mode_ms", {
            "fit": round(fit_seconds * 1000, 1),
            "first_window": round(first_seconds * 1000, 1),
            "until_pooled_calibration": round(warm_up_seconds * 1000, 1),
            "max_score_difference": worst,
        })
        run.compare(f"driftline {mode} mode, per window", window * 1000, evidently_window * 1000,
                    "evidently DataDriftPreset", "ms")
    run.write()


if __name__ == "__main__":
    main()
