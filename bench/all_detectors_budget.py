"""Per-window CPU time of every detector the collector runs, for binary, multiclass and regression.

A seeded model of 20 features (16 numerical, 4 categorical) and one
128-dimension embedding goes through the pipeline as the collector runs it:
an automatic reference of 5,000 predictions whose labels all join (so binary
and multiclass CBPE are calibrated and DLE is fitted), then windows of 1,000
predictions without labels. Each window is closed with
``ModelVersionState.close_window`` (data drift, prediction drift, data
quality, embedding drift, PCA multivariate drift, and model health: proxy
metrics and CBPE, multiclass CBPE or DLE); the first window, which calibrates
the drift thresholds for its size, is not timed. Printed per task: the median
CPU time (``time.process_time``: all threads of the process; one BLAS and one
OpenMP thread, as the collector evaluates a window) of a window,
against the baseline of the univariate data-drift detector alone on the same
windows, and against the budget of 50 ms; then, timed apart on the same
windows, the parts that differ most: embedding drift (also with BLAS's
default threads, against one) and model health (the task's estimator). The events are built before any
timing, so decoding and validation are not counted (they are per event, see
bench/pipeline_throughput.py).

    .venv/bin/python bench/all_detectors_budget.py [--full] [--windows N]

(quick: 5 timed windows a task; ``--full``: 15, the figures of docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable

import harness
import numpy as np
from driftline.schema import Label, Prediction, encode

from collector.config import parse_config
from collector.dlq import MemoryDeadLetterSink
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from collector.windows import Window
from detectors.threads import one_thread
from exporters.store import MetricStore

NUMERICAL, CATEGORICAL, WIDTH, REFERENCE, WINDOW = 16, 4, 128, 5000, 1000
BUDGET_MS = 50.0
TASKS = ("binary_classification", "multiclass_classification", "regression")
CLASSES = ("a", "b", "c")
T0 = 1_700_000_000.0


def _outputs(task: str, x: np.ndarray, rng: np.random.Generator) -> tuple[dict[str, object], object]:
    """The prediction (and probabilities) of one event, and its label."""
    score = float(x[:4].sum() / 2.0)
    if task == "binary_classification":
        p = 1.0 / (1.0 + np.exp(-score))
        label = int(rng.random() < p)
        return {"prediction": int(p >= 0.5), "probabilities": {"0": 1.0 - p, "1": p}}, label
    if task == "multiclass_classification":
        logits = np.array([score, -score, x[4]])
        p = np.exp(logits) / np.exp(logits).sum()
        label = CLASSES[int(rng.choice(3, p=p))]
        probabilities = dict(zip(CLASSES, map(float, p), strict=True))
        return {"prediction": CLASSES[int(p.argmax())], "probabilities": probabilities}, label
    return {"prediction": score}, score + float(rng.normal()) * (0.3 + abs(float(x[0])))


def _events(task: str, n: int, start: int, seed: int) -> list[Prediction | Label]:
    rng = np.random.default_rng(seed)
    mixing = np.random.default_rng(0).normal(size=(NUMERICAL, NUMERICAL)) / 4
    x = rng.normal(size=(n, NUMERICAL)) @ (np.eye(NUMERICAL) + mixing)
    categories = rng.integers(0, 6, size=(n, CATEGORICAL))
    vectors = rng.normal(size=(n, WIDTH))
    events: list[Prediction | Label] = []
    for i in range(n):
        outputs, label = _outputs(task, x[i], rng)
        features: dict[str, float | str] = {f"n{k}": float(v) for k, v in enumerate(x[i])}
        features.update({f"c{k}": f"v{v}" for k, v in enumerate(categories[i])})
        event_id, t = f"e{start + i}", T0 + (start + i) * 0.01
        events.append(
            Prediction(
                event_id=event_id,
                model="m",
                model_version="1",
                features=features,
                embeddings={"text": tuple(vectors[i].tolist())},
                timestamp=t,
                **outputs,  # type: ignore[arg-type]
            )
        )
        events.append(Label(event_id=event_id, model="m", label=label, timestamp=t))  # type: ignore[arg-type]
    return events


def _cpu(action: Callable[[], object], limited: bool = True) -> float:
    """CPU seconds of ``action``, with one BLAS and one OpenMP thread as the collector runs detectors
    (``limited``), else with the libraries' default threads."""
    with one_thread() if limited else contextlib.nullcontext():
        started = time.process_time()
        action()
        return time.process_time() - started


def _task(task: str, windows: int) -> tuple[dict[str, float], float]:
    """Median CPU seconds of a window: all detectors (``all``) and, timed again apart after it,
    univariate data drift, embedding drift and model health; and the reference's fit."""
    config = parse_config({"models": {"m": {"task": task, "reference_labels": REFERENCE}}})
    pipeline = Pipeline(config, MetricStore(), MemoryDeadLetterSink(), event_time=True)
    reference = _events(task, REFERENCE, 0, seed=1)
    messages = [RawMessage(encode(e), "t", 0, i, 0.0) for i, e in enumerate(reference)]
    fit = _cpu(lambda: pipeline.process(messages))
    state = pipeline.states[("m", "1")]
    assert state.reference is not None and state.pending_events() == 0
    kinds, health = state.reference.features.kinds, state.health
    built = []
    for w in range(windows + 1):
        window = Window(T0 + 1000.0 + w)
        for event in _events(task, WINDOW, REFERENCE + w * WINDOW, seed=10 + w)[0::2]:
            assert isinstance(event, Prediction)
            window.add(event, window.start)
        built.append(window)
    times: dict[str, list[float]] = {"all": [], "univariate": [], "embedding": [], "health": []}
    for w, window in enumerate(built):
        state.window = window
        seconds = {"all": _cpu(lambda t=window.start: state.close_window(t))}
        features = window.features.table(kinds)
        # the parts, again: a profile that needs no profiler (they repeat work already exported)
        seconds["univariate"] = _cpu(lambda f=features: state._drift.evaluate(f))
        arrays = window.embeddings.arrays()
        seconds["embedding"] = _cpu(lambda v=arrays: state._embeddings.evaluate(v))
        seconds["health"] = _cpu(lambda w=window, f=features: health.evaluate_predictions(w, f))
        if w > 0:  # the first calibrates the thresholds of this window size
            for part, value in seconds.items():
                times[part].append(value)
    # last: after a call on BLAS's default threads its idle workers spin for a while, and that
    # CPU time would land on whatever is timed next
    vectors = [window.embeddings.arrays() for window in built[1:]]
    default = [_cpu(lambda v=v: state._embeddings.evaluate(v), False) for v in vectors]
    times["embedding_default_threads"] = default
    assert state.windows_evaluated == windows + 1, state.windows_evaluated
    estimated = health.last_performance.get("estimated")
    assert estimated, f"{task}: no estimated performance, so its estimator did not run"
    medians = {part: float(np.median(values)) for part, values in times.items()}
    return {**medians, "all_min": min(times["all"])}, fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=None, help="timed windows a task (quick 5, full 15)")
    args, chosen = harness.parse(parser, quick={"windows": 5}, full={"windows": 15})
    run = harness.BenchRun("all_detectors_budget", args, chosen)
    print(f"{NUMERICAL + CATEGORICAL} features, one {WIDTH}-dimension embedding, "
          f"reference {REFERENCE} rows (labelled), windows of {WINDOW}")
    for task in TASKS:
        parts, fit = _task(task, args.windows)
        ms = {part: seconds * 1000 for part, seconds in parts.items()}
        run.compare(f"{task}: all detectors per window", ms["all"], ms["univariate"],
                    "univariate data drift alone", "CPU ms")
        run.compare(f"{task}: against the budget", ms["all"], BUDGET_MS, "budget", "CPU ms")
        run.compare(f"{task}: embedding drift, one BLAS thread", ms["embedding"],
                    ms["embedding_default_threads"], "BLAS's default threads", "CPU ms")
        run.figure(f"{task}: model health per window, CPU ms", round(ms["health"], 1))
        run.figure(f"{task}: all detectors, fastest window, CPU ms", round(ms["all_min"], 1))
        print(f"{task}: of which embedding drift {ms['embedding']:.1f} ms, model health "
              f"(estimator, proxy metrics) {ms['health']:.1f} ms; fastest window {ms['all_min']:.1f} ms")
        run.figure(f"{task}: reference, labels and fits, CPU s", round(fit, 2))
    run.write()


if __name__ == "__main__":
    main()
