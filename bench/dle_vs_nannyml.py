"""Compare Driftline's direct loss estimation with NannyML's DLE on the same seeded regressor.

NannyML is not a Driftline dependency; it lives in its own virtualenv
(``--nannyml-python``, default ``/tmp/nanny-venv/bin/python``; see
``bench/cbpe_vs_nannyml.py`` for how to build it). The data: a regressor that
predicts the mean of ``y = 2 x0 - x1 + noise`` exactly, the noise growing
with ``|x0|`` and 1.5 times larger in segment ``b``; a labelled reference of
5,000 events and 6 chunks of 2,000 whose ``x0`` widens from 1 to 2 times the
reference's spread (covariate shift towards harder inputs). Both tools fit on
the reference with their default settings (NannyML: LightGBM's
``LGBMRegressor()`` with the segment as a native categorical; Driftline:
``HistGradientBoostingRegressor`` with the same iterations, learning rate and
leaves, the segment one-hot) and estimate each chunk's MAE, MSE and RMSE.
Printed per metric: the largest relative difference between the two
estimates, and each one's mean relative error against the realized metric.

Run: ``.venv/bin/python bench/dle_vs_nannyml.py``
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import nannyml_runner
import numpy as np

METRICS = ("mae", "mse", "rmse")
CHUNK = 2000
SPREADS = np.linspace(1.0, 2.0, 6)


def _stream(rng: np.random.Generator, n: int, spread: float) -> dict[str, np.ndarray]:
    x0 = rng.normal(0.0, spread, n)
    x1 = rng.normal(0.0, 1.0, n)
    segment = rng.choice(np.array(["a", "b"]), size=n)
    mean = 2.0 * x0 - x1
    noise = rng.normal(size=n) * (0.3 + np.abs(x0)) * np.where(segment == "a", 1.0, 1.5)
    return {"x0": x0, "x1": x1, "segment": segment, "y_pred": mean, "y": mean + noise}


def _data(seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    reference = _stream(rng, 5000, 1.0)
    chunks = [_stream(rng, CHUNK, float(s)) for s in SPREADS]
    analysis = {key: np.concatenate([c[key] for c in chunks]) for key in reference}
    return reference, analysis


def _realized(analysis: dict[str, np.ndarray]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {m: [] for m in METRICS}
    for start in range(0, len(analysis["y"]), CHUNK):
        error = analysis["y"][start : start + CHUNK] - analysis["y_pred"][start : start + CHUNK]
        out["mae"].append(float(np.mean(np.abs(error))))
        out["mse"].append(float(np.mean(error**2)))
        out["rmse"].append(float(np.sqrt(np.mean(error**2))))
    return out


def _driftline(reference: dict, analysis: dict) -> tuple[dict[str, list[float]], float]:
    from detectors.base import FeatureTable
    from detectors.dle import DirectLossEstimator

    def table(part: dict, rows: slice) -> FeatureTable:
        columns = {
            "x0": part["x0"][rows],
            "x1": part["x1"][rows],
            "segment": part["segment"][rows].astype(object),
        }
        kinds = {"x0": "numerical", "x1": "numerical", "segment": "categorical"}
        return FeatureTable(kinds, columns, len(columns["x0"]))  # type: ignore[arg-type]

    started = time.perf_counter()
    dle = DirectLossEstimator()
    dle.fit(table(reference, slice(None)), reference["y_pred"], reference["y"])
    out: dict[str, list[float]] = {m: [] for m in METRICS}
    for start in range(0, len(analysis["y"]), CHUNK):
        rows = slice(start, start + CHUNK)
        estimate = dle.estimate(table(analysis, rows), analysis["y_pred"][rows])
        for metric in METRICS:
            out[metric].append(estimate.metrics[metric])
    return out, time.perf_counter() - started


def _worker(npz: Path, out: Path) -> None:
    """Runs inside the NannyML virtualenv: fit and estimate with nannyml.DLE."""
    import nannyml as nml
    import pandas as pd

    data = np.load(npz)

    def frame(prefix: str) -> pd.DataFrame:
        columns = {key: data[f"{prefix}_{key}"] for key in ("x0", "x1", "segment", "y_pred", "y")}
        result = pd.DataFrame(columns)
        result["segment"] = result["segment"].astype("category")
        return result

    started = time.perf_counter()
    estimator = nml.DLE(
        feature_column_names=["x0", "x1", "segment"],
        y_pred="y_pred",
        y_true="y",
        metrics=list(METRICS),
        chunk_size=CHUNK,
    )
    estimator.fit(frame("ref"))
    result = estimator.estimate(frame("ana").drop(columns="y")).filter(period="analysis").to_df()
    seconds = time.perf_counter() - started
    estimates = {m: [float(v) for v in result[(m, "value")]] for m in METRICS}
    out.write_text(json.dumps({"estimates": estimates, "seconds": seconds, "version": nml.__version__}))


def main() -> None:
    args = nannyml_runner.arguments(__doc__)
    if args.worker:
        _worker(Path(args.worker[0]), Path(args.worker[1]))
        return
    reference, analysis = _data(args.seed)
    realized = _realized(analysis)
    ours, our_seconds = _driftline(reference, analysis)
    arrays = {f"ref_{k}": v for k, v in reference.items()} | {f"ana_{k}": v for k, v in analysis.items()}
    theirs = nannyml_runner.run(args.nannyml_python, __file__, arrays)
    print(f"seed {args.seed}: reference 5000 events, {len(SPREADS)} chunks of {CHUNK}, x0 spread 1 -> 2")
    print(f"nannyml {theirs['version']}; per chunk realized / Driftline / NannyML:")
    for metric in METRICS:
        rows = zip(realized[metric], ours[metric], theirs["estimates"][metric], strict=True)
        print(f"  {metric:5} " + "  ".join(f"{r:.3f}/{d:.3f}/{n:.3f}" for r, d, n in rows))
    print(f"{'metric':7} {'max |dl-nml|/nml':>16} {'rel err dl':>11} {'rel err nml':>12}")
    for metric in METRICS:
        real, dl, nml = (np.array(v) for v in (realized[metric], ours[metric], theirs["estimates"][metric]))
        print(
            f"{metric:7} {np.max(np.abs(dl - nml) / nml):16.3f} {np.mean(np.abs(dl / real - 1)):11.3f} "
            f"{np.mean(np.abs(nml / real - 1)):12.3f}"
        )
    print(
        f"fit + estimate: Driftline {our_seconds * 1000:.0f} ms, NannyML {theirs['seconds'] * 1000:.0f} ms "
        f"(ratio {our_seconds / theirs['seconds']:.2f})"
    )


if __name__ == "__main__":
    main()
