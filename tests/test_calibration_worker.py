"""Calibration on the worker process: windows wait in order and are judged exactly as inline.

A pipeline with a :class:`CalibrationWorker` holds a window whose calibrated
thresholds are not stored yet and judges it once they are; every run here is
compared with the same seeded stream judged inline (replay's way), window by
window: drift scores, flag values, thresholds and verdicts. The worker is the
real one (a spawned process); the gated one only takes finished simulations
once released, so that windows are held for certain.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Hashable
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from driftline.schema import Label, Prediction, encode

from collector.auto_references import AutomaticReferences
from collector.calibration_worker import CalibrationWorker
from collector.checkpoints import Checkpointer
from collector.config import parse_config
from collector.dlq import MemoryDeadLetterSink
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from collector.state_store import LocalStateStore
from detectors import drift_calibration, threshold_cache
from detectors.base import FeatureKind, FeatureTable
from detectors.data_drift import DataDriftDetector
from detectors.drift_calibration import NullRequest, RankCells, simulate_threshold
from detectors.threshold_cache import ThresholdCache
from detectors.window_report import WindowReport
from exporters.store import MetricStore
from tests.streams import drifting_stream

CONFIG: dict[str, Any] = {
    "calibration_cache": None,
    "defaults": {
        "window": {"events": 200, "max_seconds": 1e9, "min_events": 50},
        "reference": {"auto_events": 600},
        "drift": {"alpha": 0.1, "persistence": 2, "pooled_windows": 3, "drift_share": 0.2},
    },
    "models": {"m": {"reference_labels": 200}},
}
STREAM = drifting_stream(2400, seed=5, shift_at=1600)
"""2,400 predictions and their labels: 600 reference events, then 9 windows of 200 (4 after the shift)."""
WINDOWS = 9


class GatedWorker(CalibrationWorker):
    """The real worker, but finished simulations are taken only once ``released`` (a wait takes them);
    counts the simulations it starts."""

    released = False
    started = 0

    def _submit(self, ident: Hashable, request: NullRequest, cache: ThresholdCache) -> None:
        self.started += 1
        super()._submit(ident, request, cache)

    def _collect(self) -> None:
        if self.released:
            super()._collect()


@pytest.fixture(autouse=True)
def fresh_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    """No threshold computed by another test (or run) is found: every run calibrates afresh."""
    monkeypatch.setattr(threshold_cache, "_PROCESS_MEMORY", {})


def _summary(report: WindowReport) -> tuple[Any, ...]:
    """What a window was judged: per feature its score, flag value, thresholds and verdicts."""
    features = tuple(
        (d.feature, d.score, d.flag_value, d.threshold, _number(d.pooled_flag_value),
         _number(d.pooled_threshold), d.drifted, d.detected)
        for d in (*report.drift.features, *report.prediction_drift.features)
    )
    return (report.index, report.n_events, report.data_version, report.drift.share, report.drift.detected,
            features, report.health.estimated)


def _number(value: float) -> float | None:
    return None if np.isnan(value) else value


def _messages(events: list[Prediction | Label], first: int = 0) -> list[RawMessage]:
    topics = {"prediction": "p", "label": "l"}
    return [RawMessage(encode(e), topics[e.type], 0, first + i, 0.0) for i, e in enumerate(events)]


def _pipeline(
    calibration: CalibrationWorker | None, seen: list[tuple[Any, ...]], state: Path | None = None
) -> Pipeline:
    """A collect-mode pipeline (its automatic reference kept in ``state`` if given)."""
    return Pipeline(
        parse_config(CONFIG),
        MetricStore(),
        MemoryDeadLetterSink(),
        event_time=False,
        listeners=(lambda report: seen.append(_summary(report)),),
        calibration=calibration,
        automatic_references=None if state is None else AutomaticReferences(LocalStateStore(state), "g/"),
    )


def _inline() -> list[tuple[Any, ...]]:
    seen: list[tuple[Any, ...]] = []
    pipeline = _pipeline(None, seen)
    pipeline.process(_messages(STREAM))
    pipeline.finish()
    return seen


@pytest.fixture(scope="module")
def inline() -> list[tuple[Any, ...]]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(threshold_cache, "_PROCESS_MEMORY", {})
        seen = _inline()
    assert len(seen) == WINDOWS
    assert sum(window[4] for window in seen) >= 1  # the shift is detected: the streaks mattered
    return seen


@pytest.fixture
def gated() -> Any:
    worker = GatedWorker()
    yield worker
    worker.close()


@pytest.mark.timeout(120)
def test_windows_judged_on_the_worker_are_the_inline_ones(inline: list[tuple[Any, ...]]) -> None:
    seen: list[tuple[Any, ...]] = []
    worker = CalibrationWorker()
    try:
        pipeline = _pipeline(worker, seen)
        for at in range(0, len(STREAM), 100):
            pipeline.process(_messages(STREAM[at : at + 100], at))
            pipeline.tick(0.0)  # the messages were received at 0.0
        pipeline.finish()
    finally:
        worker.close()
    assert seen == inline


@pytest.mark.timeout(120)
def test_held_windows_wait_in_order_and_flush_once_their_thresholds_arrive(
    gated: GatedWorker, inline: list[tuple[Any, ...]]
) -> None:
    seen: list[tuple[Any, ...]] = []
    pipeline = _pipeline(gated, seen)
    pipeline.process(_messages(STREAM))
    state = pipeline.states[("m", "1")]
    assert seen == []  # nothing judged: the first window waits for its thresholds, the rest behind it
    assert state.status()["windows_waiting_for_calibration"] == WINDOWS
    assert state.windows_evaluated == 0
    gated.released = True
    for _ in range(600):  # each tick takes what finished; windows go as their thresholds arrive
        pipeline.tick(0.0)  # the messages were received at 0.0
        if len(seen) == WINDOWS:
            break
        time.sleep(0.1)
    assert seen == inline
    assert [window[0] for window in seen] == list(range(1, WINDOWS + 1))
    assert state.status()["windows_waiting_for_calibration"] == 0


@pytest.mark.timeout(120)
def test_finish_waits_for_held_windows_without_deadlock(
    gated: GatedWorker, inline: list[tuple[Any, ...]]
) -> None:
    seen: list[tuple[Any, ...]] = []
    pipeline = _pipeline(gated, seen)
    pipeline.process(_messages(STREAM))
    finisher = threading.Thread(target=pipeline.finish)
    finisher.start()
    finisher.join(timeout=100)
    assert not finisher.is_alive()
    assert seen == inline


@pytest.mark.timeout(120)
def test_too_many_held_windows_make_the_batch_wait_instead_of_growing(
    gated: GatedWorker, inline: list[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from collector import model_state

    monkeypatch.setattr(model_state, "MAX_HELD_WINDOWS", 3)
    seen: list[tuple[Any, ...]] = []
    pipeline = _pipeline(gated, seen)
    pipeline.process(_messages(STREAM))
    assert pipeline.states[("m", "1")].status()["windows_waiting_for_calibration"] <= 3
    assert seen == inline[: len(seen)]
    assert len(seen) >= WINDOWS - 3
    pipeline.finish()
    assert seen == inline


@pytest.mark.timeout(180)
@pytest.mark.parametrize("restored_with_worker", [True, False])
def test_held_windows_survive_a_checkpoint(
    tmp_path: Path, gated: GatedWorker, inline: list[tuple[Any, ...]], restored_with_worker: bool
) -> None:
    """Snapshot while windows are held; a new pipeline (with a worker, or inline as in replay)
    restores them and judges them, then the rest, as if it had never stopped."""
    store, partitions, cut = LocalStateStore(tmp_path / "state"), [("p", 0), ("l", 0)], 3600
    seen: list[tuple[Any, ...]] = []
    first = _pipeline(gated, seen, tmp_path / "state")
    saver = Checkpointer(first, store, first.store, prefix="g/t/", interval_seconds=1e9)
    assert saver.restore(partitions) == {}
    first.process(_messages(STREAM[:cut]))
    assert first.states[("m", "1")].status()["windows_waiting_for_calibration"] >= 2
    assert saver.save({"p": {0: cut}, "l": {0: cut}})
    gated.close()
    second = _pipeline(CalibrationWorker() if restored_with_worker else None, seen, tmp_path / "state")
    try:
        loader = Checkpointer(second, store, second.store, prefix="g/t/", interval_seconds=1e9)
        assert loader.restore(partitions) == {("p", 0): cut, ("l", 0): cut}
        second.process(_messages(STREAM[cut:], cut))
        second.finish()
    finally:
        if second.calibration is not None:
            second.calibration.close()
    assert [window[:6] for window in seen] == [window[:6] for window in inline]


@pytest.mark.timeout(120)
def test_model_versions_of_one_shape_share_each_simulation(gated: GatedWorker) -> None:
    """Three versions whose references hold the same rows (so the same cell counts) wait for the
    same thresholds: the worker simulates each once, and all three judge their windows with them."""
    events = [
        event
        for i in range(3)
        for event in drifting_stream(1000, seed=5, shift_at=1000, model=f"m{i}")
        if isinstance(event, Prediction)
    ]
    seen: list[tuple[Any, ...]] = []
    pipeline = _pipeline(gated, seen)
    pipeline.process(_messages(events))
    alone = GatedWorker()
    try:
        single = _pipeline(alone, [])
        single.process(_messages(events[:1000]))
        assert alone.started > 0
    finally:
        alone.close()
    assert gated.started == alone.started  # 3 versions: as many simulations as one
    pipeline.finish()
    assert len(seen) == 3 * 2
    thresholds = {tuple(feature[3] for feature in window[5]) for window in seen if window[0] == 1}
    assert len(thresholds) == 1


class NoWorker(CalibrationWorker):
    """A worker whose process cannot be started (no resources to spawn one)."""

    def _start(self) -> Pool:
        raise OSError("cannot spawn")


@pytest.mark.timeout(120)
def test_without_a_worker_process_windows_are_judged_inline_and_no_event_is_lost(
    inline: list[tuple[Any, ...]],
) -> None:
    seen: list[tuple[Any, ...]] = []
    pipeline = _pipeline(NoWorker(), seen)
    pipeline.process(_messages(STREAM))
    assert seen == inline  # every window judged in its batch, as inline
    assert pipeline.counts.rejected == {}
    assert pipeline.states[("m", "1")].status()["windows_waiting_for_calibration"] == 0


@pytest.mark.timeout(60)
def test_close_does_not_wait_for_a_running_simulation() -> None:
    cells = RankCells.from_sorted(np.sort(np.random.default_rng(0).normal(size=5000)))
    long_one = NullRequest(cells, 5000, 50_000_000, 0, 1e-4)  # minutes of work
    worker = CalibrationWorker()
    cache = ThresholdCache(memory={})
    assert worker.missing([long_one], cache) == [long_one]
    started = time.monotonic()
    worker.close()
    assert time.monotonic() - started < 30
    assert cache.lookup(long_one.key()) is None


KINDS: dict[str, FeatureKind] = {"x": "numerical", "y": "categorical"}


@pytest.fixture
def simulations(monkeypatch: pytest.MonkeyPatch) -> Counter[int]:
    """Counts null simulations by window size."""
    counted: Counter[int] = Counter()
    simulate = drift_calibration.null_statistics

    def counting(cells: Any, size: int, *args: Any) -> Any:
        counted[size] += 1
        return simulate(cells, size, *args)

    monkeypatch.setattr(drift_calibration, "null_statistics", counting)
    return counted


def test_pending_thresholds_are_exactly_what_evaluate_would_simulate(simulations: Counter[int]) -> None:
    """Stored ahead from pending_thresholds, windows (pooled ones included, sizes varying)
    need no simulation at all; and the thresholds are those evaluate computes itself."""
    rng = np.random.default_rng(3)

    def table(n: int) -> FeatureTable:
        return FeatureTable(KINDS, {"x": rng.normal(size=n), "y": rng.choice(list("abc"), size=n)}, n)

    reference, windows = table(1000), [table(n) for n in (100, 150, 100, 400, 100)]
    ahead, inline_detector = (
        DataDriftDetector(alpha=0.1, pooled_windows=3, threshold_cache=ThresholdCache(memory={}))
        for _ in range(2)
    )
    ahead.fit(reference)
    inline_detector.fit(reference)
    for window in windows:
        assert ahead.threshold_cache is not None
        for request in ahead.pending_thresholds(window):
            ahead.threshold_cache.store(request.key(), simulate_threshold(request))
        simulated = sum(simulations.values())
        judged = ahead.evaluate(window)
        assert sum(simulations.values()) == simulated  # nothing left to simulate
        assert _verdicts(judged) == _verdicts(inline_detector.evaluate(window))
    assert all(d.pooled_size == 600 for d in judged.features)
    assert len(simulations) >= 4  # sizes 100, 150, 400 and pooled ones: several buckets


def _verdicts(result: Any) -> list[tuple[Any, ...]]:
    return [(d.feature, d.flag_value, d.threshold, _number(d.pooled_flag_value), _number(d.pooled_threshold),
             d.drifted, d.detected) for d in result.features]


def test_expected_thresholds_cover_windows_of_the_configured_size(simulations: Counter[int]) -> None:
    """What a collector starts simulating when a reference is fitted is all that full windows
    (and their pooled tests) then need: nothing is simulated when they are judged."""
    rng = np.random.default_rng(4)
    columns = {"x": rng.normal(size=1000), "y": rng.choice(list("abc"), size=1000)}
    detector = DataDriftDetector(alpha=0.1, pooled_windows=3, threshold_cache=ThresholdCache(memory={}))
    detector.fit(FeatureTable(KINDS, columns, 1000))
    expected = detector.expected_thresholds(100)
    assert sorted({request.bucket for request in expected}) == [99, 304]  # the buckets of 100 and 300
    assert detector.threshold_cache is not None
    for request in expected:
        detector.threshold_cache.store(request.key(), simulate_threshold(request))
    simulations.clear()
    for _ in range(4):
        window = {"x": rng.normal(size=100), "y": rng.choice(list("abc"), size=100)}
        detector.evaluate(FeatureTable(KINDS, window, 100))
    assert not simulations
    assert detector.expected_thresholds(100) == []
