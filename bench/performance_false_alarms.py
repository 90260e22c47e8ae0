"""False alarms and detection of the performance thresholds, per metric and per window.

For each of ``--references`` seeded labelled references (x0 ~ N(0, 4.9) under
a calibrated model p = sigmoid(2 x0): accuracy 0.944), the thresholds are fitted
as the collector fits them (realized: PerformanceEvaluator; estimated: CBPE
calibrated on the reference), then ``--windows`` fresh windows are scored:

* no drift (same distribution): the share of windows past each threshold is
  the false-alarm rate, printed beside the nominal ``alpha`` (ratio measured /
  nominal);
* a covariate shift to x0 ~ N(0, 3.0) (accuracy 0.911, 3.5% lower): the
  share past the threshold is the detection rate, against the baseline of the
  fixed rule (more than 10% below the reference value);
* a regressor (errors N(0, 1); a reference of ``--reference-rows``): false
  alarms of the MAE and RMSE upper thresholds without drift, and the share of
  windows past them when the errors grow by 20% (no fixed rule covers these);
* a regressor's DLE estimate (two features, noise growing with |x0|, DLE and
  its thresholds fitted as the collector fits them): false alarms of the
  estimated MAE, MSE and RMSE upper thresholds without drift, and the share
  of windows past them when the inputs are 1.3 times wider.

The false-alarm rates come with their standard error over the references
(windows scored against one reference share its thresholds, so the
references, not the windows, are the independent draws).

    .venv/bin/python bench/performance_false_alarms.py [--full] [--references N] [--windows N] [--window 1000]

(quick: 3 references x 30 windows; ``--full``: 40 x 50, the sizes of docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping

import harness
import numpy as np

from collector.references import Reference
from collector.regression_health import RegressionEstimator
from detectors.base import FeatureTable
from detectors.cbpe import CBPE
from detectors.performance import PerformanceEvaluator
from detectors.performance_threshold import PerformanceThreshold, PerformanceThresholds

METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
Scored = dict[str, list[float]]


def draw(n: int, scale: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = 1 / (1 + np.exp(-2 * rng.normal(0.0, scale, n)))
    return p, (p >= 0.5).astype(int), (rng.random(n) < p).astype(int)


def fit(
    n_rows: int, window: int, seed: int, alpha: float
) -> tuple[dict[str, dict[str, PerformanceThreshold]], CBPE, Mapping[str, float]]:
    rng = np.random.default_rng(seed)
    p, predicted, labels = draw(n_rows, 4.9, rng)
    evaluator = PerformanceEvaluator("binary_classification")
    cbpe = CBPE()
    cbpe.fit(p, labels.astype(np.float64))
    fitter = PerformanceThresholds(alpha=alpha, seed=seed)
    realized = fitter.fit(evaluator.on_resamples(list(labels), list(predicted), p), n_rows, window)
    estimated = fitter.fit(cbpe.on_resamples(p, predicted == 1), n_rows, window)
    reference = evaluator.evaluate(list(labels), list(predicted), p).metrics
    return {"realized": realized, "estimated": estimated}, cbpe, reference


def score(
    windows: int, window: int, scale: float, seed: int, cbpe: CBPE
) -> dict[str, list[Mapping[str, float]]]:
    rng = np.random.default_rng(seed)
    evaluator = PerformanceEvaluator("binary_classification")
    out: dict[str, list[Mapping[str, float]]] = {"realized": [], "estimated": []}
    for _ in range(windows):
        p, predicted, labels = draw(window, scale, rng)
        out["realized"].append(evaluator.evaluate(list(labels), list(predicted), p).metrics)
        out["estimated"].append(cbpe.estimate(p, predicted == 1).metrics)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--references", type=int, help="seeded references (quick 3, full 40)")
    parser.add_argument("--windows", type=int, help="windows per reference and case (quick 30, full 50)")
    parser.add_argument("--window", type=int, default=1000)
    parser.add_argument("--reference-rows", type=int, default=5000)
    parser.add_argument("--alpha", type=float, default=0.01)
    args, chosen = harness.parse(
        parser, quick={"references": 3, "windows": 30}, full={"references": 40, "windows": 50}
    )
    run = harness.BenchRun(
        "performance_false_alarms",
        args,
        {**chosen, "window": args.window, "reference_rows": args.reference_rows, "alpha": args.alpha},
    )
    crossed: dict[tuple[str, str, str], list[bool]] = {}
    for ref in range(args.references):
        thresholds, cbpe, reference = fit(args.reference_rows, args.window, ref, args.alpha)
        for case, scale in (("no drift", 4.9), ("shift -3.5%", 3.0)):
            scored = score(args.windows, args.window, scale, 1000 + ref, cbpe)
            for source, windows in scored.items():
                for metric in METRICS:
                    threshold = thresholds[source].get(metric)
                    for values in windows:
                        if threshold is None or metric not in values:
                            continue
                        crossed.setdefault((case, source, metric), []).append(
                            threshold.crossed(values[metric])
                        )
                        fixed = values[metric] < 0.9 * reference[metric]
                        crossed.setdefault((case, source, metric + " fixed10%"), []).append(fixed)
    print(
        f"window {args.window}, reference {args.reference_rows} rows, alpha {args.alpha}, "
        f"{args.references} references x {args.windows} windows"
    )
    for source in ("realized", "estimated"):
        for metric in METRICS:
            fa, error = rate(crossed[("no drift", source, metric)], args.references)
            hit = np.mean(crossed[("shift -3.5%", source, metric)])
            fixed = np.mean(crossed[("shift -3.5%", source, metric + " fixed10%")])
            run.compare(f"{source} {metric}: false alarms", fa, args.alpha, "nominal alpha",
                        "windows flagged")
            run.figure(f"{source} {metric}: false alarms, standard error", error)
            print(f"  standard error over the references {error:.4f}")
            run.compare(f"{source} {metric}: detection of a 3.5% drop", float(hit), float(fixed),
                        "fixed 10% rule", "windows flagged")
    regression(args, run)
    direct_loss_estimation(args, run)
    run.write()


def rate(flags: list[bool], references: int) -> tuple[float, float]:
    """The share of windows flagged and its standard error over the references (windows of one
    reference share its thresholds, so the references are the independent draws)."""
    per_reference = np.reshape(flags, (references, -1)).mean(axis=1)
    return float(per_reference.mean()), float(per_reference.std(ddof=1) / np.sqrt(references))


def regression(args: argparse.Namespace, run: harness.BenchRun) -> None:
    """MAE and RMSE upper thresholds of a regressor (errors N(0, 1)): no drift, and errors x1.2."""
    evaluator = PerformanceEvaluator("regression")
    crossed: dict[tuple[str, str], list[bool]] = {}
    for ref in range(args.references):
        error = np.random.default_rng(ref).normal(0.0, 1.0, args.reference_rows)
        fitter = PerformanceThresholds(alpha=args.alpha, seed=ref)
        thresholds = fitter.fit(
            evaluator.on_resamples(list(error), [0.0] * len(error)), args.reference_rows, args.window
        )
        fresh = np.random.default_rng(1000 + ref)
        for case, scale in (("no drift", 1.0), ("errors x1.2", 1.2)):
            for _ in range(args.windows):
                values = evaluator.evaluate(list(fresh.normal(0.0, scale, args.window)), [0.0] * args.window)
                for metric in ("mae", "rmse"):
                    hit = thresholds[metric].crossed(values.metrics[metric])
                    crossed.setdefault((case, metric), []).append(hit)
    for metric in ("mae", "rmse"):
        fa, error = rate(crossed[("no drift", metric)], args.references)
        run.compare(f"regressor {metric}: false alarms", fa, args.alpha, "nominal alpha", "windows flagged")
        run.figure(f"regressor {metric}: false alarms, standard error", error)
        print(f"  standard error over the references {error:.4f}")
        detected = float(np.mean(crossed[("errors x1.2", metric)]))
        run.figure(f"regressor {metric}: detection of errors x1.2", detected)
        print(f"regressor {metric}: detection of errors x1.2: {detected:.3f}")


def _regressor(
    rng: np.random.Generator, n: int, spread: float
) -> tuple[FeatureTable, np.ndarray, np.ndarray]:
    """Two features; the model predicts the mean of y exactly; the noise grows with |x0|."""
    x0, x1 = rng.normal(0.0, spread, n), rng.normal(0.0, 1.0, n)
    prediction = 2.0 * x0 - x1
    label = prediction + rng.normal(size=n) * (0.3 + np.abs(x0))
    return FeatureTable({"x0": "numerical", "x1": "numerical"}, {"x0": x0, "x1": x1}, n), prediction, label


def direct_loss_estimation(args: argparse.Namespace, run: harness.BenchRun) -> None:
    """DLE's estimated MAE, MSE and RMSE against their upper thresholds, as the collector fits
    them (``RegressionEstimator``): no drift, and inputs 1.3 times wider (larger errors)."""
    crossed: dict[tuple[str, str], list[bool]] = {}
    for ref in range(args.references):
        rng = np.random.default_rng(2000 + ref)
        features, prediction, label = _regressor(rng, args.reference_rows, 1.0)
        outputs = FeatureTable({"prediction": "numerical"}, {"prediction": prediction}, len(prediction))
        estimator = RegressionEstimator({})
        assert estimator.fit(Reference("ref", "d", True, features, outputs), list(label))
        fitted = estimator.reference_statistic()
        assert fitted is not None
        thresholds = PerformanceThresholds(alpha=args.alpha, seed=ref).fit(*fitted, args.window)
        for case, spread in (("no drift", 1.0), ("inputs x1.3", 1.3)):
            for _ in range(args.windows):
                window, predicted, _ = _regressor(rng, args.window, spread)
                result = estimator.estimate(*estimator.expected_errors(window, predicted))
                assert result is not None
                for metric in ("mae", "mse", "rmse"):
                    hit = thresholds[metric].crossed(result.metrics[metric])
                    crossed.setdefault((case, metric), []).append(hit)
    for metric in ("mae", "mse", "rmse"):
        fa, error = rate(crossed[("no drift", metric)], args.references)
        run.compare(f"DLE estimated {metric}: false alarms", fa, args.alpha, "nominal alpha",
                    "windows flagged")
        run.figure(f"DLE estimated {metric}: false alarms, standard error", error)
        print(f"  standard error over the references {error:.4f}")
        detected = float(np.mean(crossed[("inputs x1.3", metric)]))
        run.figure(f"DLE estimated {metric}: detection of inputs x1.3", detected)
        print(f"DLE estimated {metric}: detection of inputs 1.3 times wider: {detected:.3f}")


if __name__ == "__main__":
    main()
