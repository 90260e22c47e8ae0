"""Compare Driftline's CBPE estimates with NannyML's CBPE on the same seeded data.

NannyML is not a Driftline dependency; it lives in a separate virtualenv
(``--nannyml-python``, default ``/tmp/nanny-venv/bin/python``), created with::

    python3.11 -m venv /tmp/nanny-venv
    /tmp/nanny-venv/bin/pip install nannyml "pandas<3" statsmodels

This script generates a reference and an analysis stream with covariate shift
(a logistic ground truth; the analysis drifts towards the decision boundary),
estimates each chunk of 2,000 events with Driftline in this process, runs
NannyML on the same arrays in a subprocess of that interpreter (this very file
with ``--worker``, which imports neither Driftline nor anything but numpy,
pandas and nannyml), and prints per metric the largest difference between the
two estimates, and each one's mean absolute error against the realized metric
with their ratio (Driftline / NannyML: under 1 means Driftline is closer).

Two models: ``calibrated`` (the true probabilities) and ``overconfident``
(logit times 3), where both tools must calibrate on the labelled reference.

Then the same for a three-class softmax model (multiclass CBPE, NannyML's
one-vs-rest construction): accuracy, macro precision/recall/F1 and the
one-vs-rest ROC AUC, which are the multiclass metrics NannyML estimates. Where
both tools calibrate the same classes, the estimates must agree to 1e-6; the
script exits 1 when they do not.

Run: ``.venv/bin/python bench/cbpe_vs_nannyml.py``
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import nannyml_runner
import numpy as np

METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
CHUNK = 2000
WEIGHTS = np.array([2.0, -1.0])


def _stream(rng: np.random.Generator, n: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(np.array([1.5, 0.0]) * (1.0 - shift), 1.0, size=(n, 2))
    logit = x @ WEIGHTS
    return logit, rng.random(n) < 1.0 / (1.0 + np.exp(-logit))


def _data(seed: int, stream: Callable = _stream) -> dict[str, np.ndarray]:
    """A reference of 10,000 events and 10 chunks drifting from shift 0 to 1, from ``stream``."""
    rng = np.random.default_rng(seed)
    ref_logit, ref_y = stream(rng, 10_000, 0.0)
    parts = [stream(rng, CHUNK, float(s)) for s in np.linspace(0.0, 1.0, 10)]
    return {
        "ref_logit": ref_logit,
        "ref_y": ref_y,
        "logit": np.concatenate([p[0] for p in parts]),
        "y": np.concatenate([p[1] for p in parts]),
    }


def _probability(logit: np.ndarray, model: str) -> np.ndarray:
    scale = 3.0 if model == "overconfident" else 1.0
    return 1.0 / (1.0 + np.exp(-scale * logit))


def _realized(p: np.ndarray, y: np.ndarray) -> dict[str, list[float]]:
    from sklearn import metrics as skm

    out: dict[str, list[float]] = {m: [] for m in METRICS}
    for start in range(0, len(p), CHUNK):
        pc, yc = p[start : start + CHUNK], y[start : start + CHUNK]
        predicted = pc >= 0.5
        out["accuracy"].append(skm.accuracy_score(yc, predicted))
        out["precision"].append(skm.precision_score(yc, predicted))
        out["recall"].append(skm.recall_score(yc, predicted))
        out["f1"].append(skm.f1_score(yc, predicted))
        out["roc_auc"].append(skm.roc_auc_score(yc, pc))
    return out


def _driftline(ref_p: np.ndarray, ref_y: np.ndarray, p: np.ndarray) -> tuple[dict, float, bool]:
    from detectors.cbpe import CBPE

    cbpe = CBPE()
    cbpe.fit(ref_p, ref_y)
    out, seconds = _chunked(cbpe.estimate, p, METRICS)
    return out, seconds, cbpe.calibrated


def _chunked(
    estimate: Callable[[np.ndarray], Any], p: np.ndarray, metrics: Iterable[str]
) -> tuple[dict, float]:
    """Each metric's estimate per chunk, and the seconds all chunks took."""
    started = time.perf_counter()
    out: dict[str, list[float]] = {m: [] for m in metrics}
    for start in range(0, len(p), CHUNK):
        result = estimate(p[start : start + CHUNK])
        for metric in out:
            out[metric].append(result.metrics[metric])
    return out, time.perf_counter() - started


def _worker(npz: Path, out: Path) -> None:
    """Runs inside the NannyML virtualenv: estimate every chunk with nannyml.CBPE."""
    import nannyml as nml
    import pandas as pd

    data = np.load(npz)
    if "ref_matrix" in data:
        _multiclass_worker(data, out)
        return
    reference = pd.DataFrame(
        {"p": data["ref_p"], "y_pred": (data["ref_p"] >= 0.5).astype(int), "y": data["ref_y"]}
    )
    analysis = pd.DataFrame({"p": data["p"], "y_pred": (data["p"] >= 0.5).astype(int)})
    estimator = nml.CBPE(
        problem_type="classification_binary",
        y_pred_proba="p",
        y_pred="y_pred",
        y_true="y",
        metrics=list(METRICS),
        chunk_size=CHUNK,
    )
    estimator.fit(reference)
    started = time.perf_counter()
    frame = estimator.estimate(analysis).filter(period="analysis").to_df()
    seconds = time.perf_counter() - started
    result = {m: [float(v) for v in frame[(m, "value")]] for m in METRICS}
    out.write_text(json.dumps({"estimates": result, "seconds": seconds, "version": nml.__version__}))


MC_CLASSES = ("a", "b", "c")
MC_WEIGHTS = np.array([[2.0, -1.0], [-1.0, 2.0], [-1.0, -1.0]])
MC_METRICS = {  # Driftline's label value -> NannyML's multiclass metric
    "accuracy": "accuracy",
    "precision_macro": "precision",
    "recall_macro": "recall",
    "f1_macro": "f1",
    "roc_auc_ovr": "roc_auc",
}


def _softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def _mc_stream(rng: np.random.Generator, n: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(np.array([1.0, 0.0]) * (1.0 - shift), 1.0, size=(n, 2))
    logits = x @ MC_WEIGHTS.T
    cumulative = np.cumsum(_softmax(logits), axis=1)
    y = np.array(MC_CLASSES)[(rng.random(n)[:, None] > cumulative).sum(axis=1)]
    return logits, y


def _mc_realized(p: np.ndarray, y: np.ndarray) -> dict[str, list[float]]:
    from sklearn import metrics as skm

    out: dict[str, list[float]] = {m: [] for m in MC_METRICS}
    for start in range(0, len(p), CHUNK):
        pc, yc = p[start : start + CHUNK], y[start : start + CHUNK]
        predicted = np.array(MC_CLASSES)[pc.argmax(axis=1)]
        out["accuracy"].append(skm.accuracy_score(yc, predicted))
        out["precision_macro"].append(skm.precision_score(yc, predicted, average="macro"))
        out["recall_macro"].append(skm.recall_score(yc, predicted, average="macro"))
        out["f1_macro"].append(skm.f1_score(yc, predicted, average="macro"))
        out["roc_auc_ovr"].append(skm.roc_auc_score(yc, pc, multi_class="ovr"))
    return out


def _mc_driftline(ref_p: np.ndarray, ref_y: np.ndarray, p: np.ndarray) -> tuple[dict, float, tuple]:
    from detectors.multiclass_cbpe import MulticlassCBPE

    cbpe = MulticlassCBPE()
    cbpe.fit(ref_p, MC_CLASSES, ref_y)
    out, seconds = _chunked(cbpe.estimate, p, MC_METRICS)
    return out, seconds, cbpe.calibrated_classes


def _multiclass_worker(data: dict, out: Path) -> None:
    """The multiclass half of the worker: NannyML's classification_multiclass CBPE."""
    import nannyml as nml
    import pandas as pd
    from nannyml.calibration import NoopCalibrator

    def frame(matrix: np.ndarray) -> pd.DataFrame:
        columns = {f"p_{c}": matrix[:, i] for i, c in enumerate(MC_CLASSES)}
        return pd.DataFrame({**columns, "y_pred": np.array(MC_CLASSES)[matrix.argmax(axis=1)]})

    reference = frame(data["ref_matrix"]).assign(y=data["ref_y"])
    estimator = nml.CBPE(
        problem_type="classification_multiclass",
        y_pred_proba={c: f"p_{c}" for c in MC_CLASSES},
        y_pred="y_pred",
        y_true="y",
        metrics=list(MC_METRICS.values()),
        chunk_size=CHUNK,
    )
    estimator.fit(reference)
    started = time.perf_counter()
    result = estimator.estimate(frame(data["matrix"])).filter(period="analysis").to_df()
    seconds = time.perf_counter() - started
    calibrated = [c for c, cal in estimator._calibrators.items() if not isinstance(cal, NoopCalibrator)]
    estimates = {ours: [float(v) for v in result[(theirs, "value")]] for ours, theirs in MC_METRICS.items()}
    out.write_text(
        json.dumps(
            {"estimates": estimates, "seconds": seconds, "version": nml.__version__, "calibrated": calibrated}
        )
    )


def _multiclass(python: str, seed: int) -> bool:
    """Print the multiclass comparison; False when both calibrate alike and still differ."""
    data = _data(seed, _mc_stream)
    print(f"\nmulticlass, seed {seed}: 3 classes, reference 10000 events, 10 chunks of {CHUNK}")
    agree = True
    for model in ("calibrated", "overconfident"):
        scale = 3.0 if model == "overconfident" else 1.0
        ref_p, p = _softmax(scale * data["ref_logit"]), _softmax(scale * data["logit"])
        realized = _mc_realized(p, data["y"])
        ours, our_seconds, calibrated = _mc_driftline(ref_p, data["ref_y"], p)
        theirs = nannyml_runner.run(
            python, __file__, {"ref_matrix": ref_p, "ref_y": data["ref_y"], "matrix": p}
        )
        same = tuple(calibrated) == tuple(theirs["calibrated"])
        print(
            f"\nmodel {model}: Driftline calibrates {list(calibrated)}, "
            f"NannyML {theirs['version']} {theirs['calibrated']}"
        )
        difference = _table(ours, theirs, realized, our_seconds)
        agree = agree and (not same or difference <= 1e-6)
    print(f"\nparity where both calibrate the same classes (1e-6): {'yes' if agree else 'NO'}")
    return agree


def _mae(estimates: list[float], realized: list[float]) -> float:
    return float(np.mean(np.abs(np.array(estimates) - np.array(realized))))


def _table(ours: dict, theirs: dict, realized: dict, our_seconds: float) -> float:
    """Print per metric the gap between the tools and their errors; return the largest gap."""
    print(f"{'metric':16} {'max |dl-nml|':>12} {'MAE dl':>8} {'MAE nml':>8} {'ratio':>6}")
    largest = 0.0
    for metric, estimates in ours.items():
        difference = float(np.max(np.abs(np.array(estimates) - np.array(theirs["estimates"][metric]))))
        largest = max(largest, difference)
        ours_mae = _mae(estimates, realized[metric])
        theirs_mae = _mae(theirs["estimates"][metric], realized[metric])
        print(
            f"{metric:16} {difference:12.1e} {ours_mae:8.4f} {theirs_mae:8.4f} {ours_mae / theirs_mae:6.2f}"
        )
    print(
        f"estimate time for 10 chunks: Driftline {our_seconds * 1000:.1f} ms, "
        f"NannyML {theirs['seconds'] * 1000:.1f} ms (ratio {our_seconds / theirs['seconds']:.3f})"
    )
    return largest


def main() -> None:
    args = nannyml_runner.arguments(__doc__)
    if args.worker:
        _worker(Path(args.worker[0]), Path(args.worker[1]))
        return
    data = _data(args.seed)
    print(f"seed {args.seed}: reference 10000 events, analysis 10 chunks of {CHUNK} (covariate shift)")
    for model in ("calibrated", "overconfident"):
        ref_p, p = _probability(data["ref_logit"], model), _probability(data["logit"], model)
        realized = _realized(p, data["y"])
        ours, our_seconds, calibrated = _driftline(ref_p, data["ref_y"], p)
        theirs = nannyml_runner.run(
            args.nannyml_python, __file__, {"ref_p": ref_p, "ref_y": data["ref_y"], "p": p}
        )
        print(f"\nmodel {model} (Driftline calibrated: {calibrated}; nannyml {theirs['version']})")
        _table(ours, theirs, realized, our_seconds)
    if not _multiclass(args.nannyml_python, args.seed):
        sys.exit(1)


if __name__ == "__main__":
    main()
