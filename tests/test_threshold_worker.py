"""Performance-threshold fits on the worker thread: the completing batch does not wait for them,
and every window is judged by the thresholds it gets inline.

Each stream (a binary classifier with probabilities, a multiclass one, a
regressor) goes through a pipeline without a worker (replay's way) and through
one with the real :class:`ThresholdWorker` in batches; the prediction windows'
estimated metrics and thresholds, the label windows' realized metrics,
thresholds and concept drift, and the exported threshold gauges must be equal.
The gated worker holds every fit until released, so that a fit is certainly
still running when the batch that started it ends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import numpy as np
import pytest
from driftline.schema import Label, Prediction, encode

from collector.config import parse_config
from collector.dlq import MemoryDeadLetterSink
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from collector.threshold_worker import ThresholdWorker
from detectors.window_report import LabelWindowReport, WindowReport
from exporters.store import MetricStore
from tests.streams import drifting_stream, regression_predictions, regression_rows

T = TypeVar("T")
WINDOW = {"events": 200, "max_seconds": 1e9, "min_events": 50}
CLASSES = ("a", "b", "c")


class GatedWorker(ThresholdWorker):
    """The real worker, but each fit starts only once ``gate`` is set; counts the fits."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.submitted = 0

    def submit(self, fit: Callable[[], T]) -> Future[T]:
        self.submitted += 1

        def gated() -> T:
            assert self.gate.wait(60), "the test never released the gate"
            return fit()

        return super().submit(gated)


class FailingWorker(ThresholdWorker):
    """A worker on which every fit fails."""

    def submit(self, fit: Callable[[], T]) -> Future[T]:
        def failing() -> T:
            raise RuntimeError("the worker broke")

        return super().submit(failing)


def _binary() -> tuple[dict[str, Any], list[Prediction | Label]]:
    config = {"defaults": {"window": WINDOW, "reference": {"auto_events": 600}},
              "models": {"m": {"reference_labels": 200}}}
    return config, drifting_stream(2000, seed=3, shift_at=1400)


def _multiclass() -> tuple[dict[str, Any], list[Prediction | Label]]:
    config = {"defaults": {"window": WINDOW, "reference": {"auto_events": 600}},
              "models": {"m": {"task": "multiclass_classification", "reference_labels": 300}}}
    rng = np.random.default_rng(11)
    x = rng.normal([1.0, 0.0], 1.0, size=(1800, 2))
    logits = x @ np.array([[2.0, -1.0], [-1.0, 2.0], [-1.0, -1.0]]).T
    logits[1200:] *= 0.3  # the model gets worse: concept drift
    p = np.exp(2.0 * logits) / np.exp(2.0 * logits).sum(axis=1, keepdims=True)
    truth = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array(CLASSES)[(rng.random(len(x))[:, None] > np.cumsum(truth, axis=1)).sum(axis=1)]
    events: list[Prediction | Label] = []
    for i in range(len(x)):
        t = 1_700_000_000.0 + i * 0.01
        events.append(Prediction(
            event_id=f"e{i}",
            model="m",
            model_version="1",
            features={"x0": float(x[i, 0]), "x1": float(x[i, 1])},
            prediction=CLASSES[int(p[i].argmax())],
            probabilities=dict(zip(CLASSES, map(float, p[i]), strict=True)),
            timestamp=t,
        ))
        if i >= 30:
            events.append(Label(event_id=f"e{i - 30}", model="m", label=str(labels[i - 30]), timestamp=t))
    return config, events


def _regression() -> tuple[dict[str, Any], list[Prediction | Label]]:
    config = {"defaults": {"window": WINDOW, "reference": {"auto_events": 600}},
              "models": {"m": {"task": "regression", "reference_labels": 300}}}
    rng = np.random.default_rng(12)
    rows = regression_rows(rng, 1800, spread=1.0)
    rows.loc[1200:, "label"] += 2.0  # worse after 1,200: realized errors and concept drift move
    events: list[Prediction | Label] = []
    for i, prediction in enumerate(regression_predictions(rows)):
        events.append(prediction)
        if i >= 30:
            events.append(Label(event_id=f"e{i - 30}", model="m", label=float(rows.label[i - 30]),
                                timestamp=prediction.timestamp))
    return config, events


STREAMS = {"binary": _binary, "multiclass": _multiclass, "regression": _regression}


class Run:
    """One pipeline over a stream, with what it judged."""

    def __init__(self, config: dict[str, Any], worker: ThresholdWorker | None) -> None:
        self.windows: list[tuple[Any, ...]] = []
        self.label_windows: list[tuple[Any, ...]] = []
        self.store = MetricStore()
        self.pipeline = Pipeline(
            parse_config(config),
            self.store,
            MemoryDeadLetterSink(),
            event_time=True,
            listeners=(self._window,),
            label_listeners=(self._label_window,),
            threshold_worker=worker,
        )

    def process(self, events: list[Prediction | Label], first: int = 0) -> None:
        self.pipeline.process(
            [RawMessage(encode(e), e.type, 0, first + i, 0.0) for i, e in enumerate(events)]
        )

    def _window(self, report: WindowReport) -> None:
        health = report.health
        self.windows.append((report.index, health.estimator, dict(health.estimated or {}),
                             _thresholds(health.thresholds)))

    def _label_window(self, report: LabelWindowReport) -> None:
        drift = report.concept_drift
        self.label_windows.append((report.index, report.n_labels, dict(report.performance.metrics),
                                   _thresholds(report.thresholds), drift.detected, drift.significant))

    def gauges(self) -> dict[tuple[str, str, str], float]:
        """The exported ``driftline_performance_threshold`` series: (source, metric, bound) -> value."""
        names = self.store.metrics["driftline_performance_threshold"].labels
        gauges = {}
        for name, key, value in self.store.export_where():
            if name == "driftline_performance_threshold":
                labels = dict(zip(names, key, strict=True))
                gauges[(labels["source"], labels["metric"], labels["bound"])] = value
        return gauges


def _thresholds(thresholds: Any) -> dict[str, tuple[str, float]] | None:
    if thresholds is None:
        return None
    return {name: (t.bound, t.value) for name, t in thresholds.items()}


def _last_reference_prediction(events: list[Prediction | Label]) -> int:
    """The position of the 600th prediction, which completes the automatic reference."""
    return next(i for i, e in enumerate(events) if isinstance(e, Prediction) and e.event_id == "m-1-599")


def _inline(stream: str) -> Run:
    config, events = STREAMS[stream]()
    run = Run(config, None)
    run.process(events)
    return run


@pytest.mark.parametrize("stream", sorted(STREAMS))
def test_windows_judged_with_fits_on_the_worker_are_the_inline_ones(stream: str) -> None:
    inline = _inline(stream)
    assert inline.windows and inline.label_windows and inline.gauges()
    assert all(window[3] for window in inline.windows[1:])  # estimated thresholds were used
    assert all(window[3] for window in inline.label_windows[1:])  # and realized ones
    config, events = STREAMS[stream]()
    _assert_judged_alike(_in_batches(config, events, ThresholdWorker(), 100), inline)


def _in_batches(config: dict[str, Any], events: list[Prediction | Label], worker: ThresholdWorker,
                size: int) -> Run:
    """A run over ``events`` in batches of ``size``, the worker closed at the end."""
    try:
        run = Run(config, worker)
        for at in range(0, len(events), size):
            run.process(events[at : at + size], at)
    finally:
        worker.close()
    return run


def _assert_judged_alike(run: Run, inline: Run) -> None:
    assert run.windows == inline.windows
    assert run.label_windows == inline.label_windows
    assert run.gauges() == inline.gauges()


def test_the_batch_that_completes_the_reference_does_not_wait_for_the_fits() -> None:
    config, events = _binary()
    inline = _inline("binary")
    completing = _last_reference_prediction(events)
    worker = GatedWorker()
    try:
        run = Run(config, worker)
        run.process(events[: completing + 1])  # ends with the reference's last prediction
        health = run.pipeline.states[("m", "1")].health
        assert not run.pipeline.states[("m", "1")].collecting_reference
        assert worker.submitted >= 2  # realized and estimated, both still waiting at the gate
        assert run.gauges() == {} and health.thresholds == {}
        worker.gate.set()
        run.process(events[completing + 1 :], completing + 1)
    finally:
        worker.gate.set()
        worker.close()
    _assert_judged_alike(run, inline)


def test_a_fit_done_on_the_worker_is_exported_at_the_end_of_a_batch() -> None:
    config, events = _binary()
    completing = _last_reference_prediction(events)
    worker = ThresholdWorker()
    try:
        run = Run(config, worker)
        run.process(events[: completing + 1])
        health = run.pipeline.states[("m", "1")].health
        for future, _ in list(health._fitting.values()):
            future.result(60)
        run.process([])  # an empty batch: nothing judged, the finished fits are taken
    finally:
        worker.close()
    assert run.gauges() == _inline_gauges_after(config, events[: completing + 1])
    assert {source for source, _, _ in run.gauges()} == {"realized", "estimated"}


def _inline_gauges_after(
    config: dict[str, Any], events: list[Prediction | Label]
) -> dict[tuple[str, str, str], float]:
    run = Run(config, None)
    run.process(events)
    return run.gauges()


@pytest.mark.parametrize("worker", [FailingWorker, "closed"], ids=["failing", "closed"])
def test_a_fit_that_fails_on_the_worker_or_finds_it_closed_is_done_inline(worker: Any) -> None:
    inline = _inline("binary")
    config, events = _binary()
    threshold_worker = FailingWorker() if worker is FailingWorker else ThresholdWorker()
    if worker == "closed":
        threshold_worker.close()
    _assert_judged_alike(_in_batches(config, events, threshold_worker, 250), inline)
