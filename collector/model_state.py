"""The state of one (model, model_version): reference, current window, detectors, last results.

Counting follows docs/contracts.md#counting-and-windows exactly: accepted predictions count;
without a registered reference the first ``auto_events`` predictions form the
reference and produce no window; a window closes at ``events`` predictions or
when it is ``max_seconds`` old, and one closed by age with fewer than
``min_events`` predictions is not evaluated.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from driftline.schema import Prediction, check_dimensions

from collector.calibration_worker import CalibrationWorker
from collector.config import Config
from collector.embeddings import EmbeddingDriftTests
from collector.event_gaps import EventGaps
from collector.failures import DetectorFailure, FailureLog, guarded
from collector.model_health import LabelWindowListener, ModelHealth
from collector.multivariate import MultivariateDrift
from collector.references import Reference, automatic_reference
from collector.roles import CHAMPION
from collector.threshold_worker import ThresholdWorker
from collector.windows import Window
from detectors.base import FeatureTable
from detectors.data_drift import DataDriftDetector
from detectors.data_quality import DataQualityDetector
from detectors.drift_calibration import NullRequest
from detectors.threads import one_thread
from detectors.threshold_cache import ThresholdCache
from detectors.window_report import PredictionHealth, WindowReport
from exporters.store import MetricStore
from exporters.tracing import PipelineTracer

log = logging.getLogger(__name__)


WindowListener = Callable[[WindowReport], None]
AutomaticListener = Callable[[str, str, Reference, Window], None]
"""Called with (model, model_version, reference, its predictions) when an automatic reference completes."""
MAX_HELD_WINDOWS = 32
"""Closed windows a version holds while their calibration runs; one more makes the batch wait for it
(a bound on memory: a fast version's windows come quicker than its first thresholds)."""


@dataclass
class HeldWindow:
    """A closed window waiting for its calibrated thresholds, with what judging it then needs."""

    window: Window
    now: float
    data_version: str
    health: PredictionHealth | None = field(default=None, repr=False)
    """Its model health, estimated when it closed (labels joined later must not change it); None
    for a window restored from a checkpoint, which is estimated when judged."""
    requests: list[NullRequest] | None = field(default=None, repr=False)
    """The simulations it still waits for; None until it is first in line (pools change before)."""

    def to_dict(self) -> dict[str, Any]:
        return {"window": self.window.to_dict(), "now": self.now, "data_version": self.data_version}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HeldWindow:
        return cls(Window.from_dict(data["window"]), float(data["now"]), str(data["data_version"]))


class ModelVersionState:
    """Collects one model version's predictions and evaluates its windows."""

    def __init__(
        self,
        model: str,
        model_version: str,
        config: Config,
        store: MetricStore,
        reference: Reference | None,
        listeners: tuple[WindowListener, ...] = (),
        tracer: PipelineTracer | None = None,
        failures: FailureLog | None = None,
        role: str = CHAMPION,
        label_listeners: tuple[LabelWindowListener, ...] = (),
        *,
        reference_ids: set[str] | None = None,
        on_automatic: AutomaticListener | None = None,
        calibration: CalibrationWorker | None = None,
        threshold_worker: ThresholdWorker | None = None,
    ) -> None:
        self.model = model
        self.role = role
        self.model_version = model_version
        self.config = config
        self.store = store
        self.listeners = listeners
        self.tracer = tracer or PipelineTracer()
        self.failures = failures or FailureLog(log)
        self.model_config = config.model(model)
        self.window_config = config.window_for(model)
        self.auto_events = config.defaults.reference.auto_events
        self.labels = {"model": model, "model_version": model_version}
        self.reference: Reference | None = None
        self.window: Window | None = None
        self.data_version = "unknown"
        self.last_seen = 0.0
        self.events = 0
        self.windows_evaluated = 0
        self.windows_skipped = 0
        self.windows_closed_by_age = 0
        self.windows_too_small = 0
        self.gaps = EventGaps()
        self.last_report: WindowReport | None = None
        self.on_automatic = on_automatic
        self.calibration = calibration
        """Where cache-miss calibrations run; None: inline, where a window needs them (replay)."""
        self._held: deque[HeldWindow] = deque()
        self._reference_before: str | None = None
        """The id a restored snapshot compared against, until this version has a reference again."""
        self._last_window: dict[str, object] | None = None
        self._info_labels: dict[str, str] | None = None
        self._reference_buffer: Window | None = None
        self.embedding_dims: dict[str, int] = {}
        """Each embedding name's vector length, fixed by its first accepted vector (or the reference)."""
        self.health = ModelHealth(
            store,
            self.labels,
            self.model_config,
            max_segment_values=config.limits.max_segment_values,
            label_window_events=self.window_config.events,
            label_listeners=label_listeners,
            replay_events=config.state.replay_events,
            expected_errors_kept=config.labels.max_entries,
            threshold_worker=threshold_worker,
        )
        store.inc("driftline_reference_changes_total", self.labels, 0.0)
        if reference is not None:
            self._use_reference(reference, reference_ids or set())
        self._publish_info()

    @property
    def collecting_reference(self) -> bool:
        return self.reference is None

    def add(self, event: Prediction, event_time: float) -> None:
        """Take one accepted prediction (its features and segments already within the limits)."""
        self.last_seen = max(self.last_seen, event_time)
        self.events += 1
        self.gaps.add(event_time)
        self._set_data_version(event.data_version)
        if self.reference is None:
            self._collect_reference(event, event_time)
            return
        if self.window is not None and self.window.age(event_time) >= self.window_config.max_seconds:
            self.close_window(event_time)
        if self.window is None:
            self.window = Window(event_time)
        self.window.add(event, event_time)
        if self.window.n_events >= self.window_config.events:
            self.close_window(event_time)

    def check_embeddings(self, event: Prediction) -> None:
        """Raise ``invalid_field`` for a vector of another length than its name's (nothing changes then)."""
        check_dimensions(event.embeddings, self.embedding_dims)

    def tick(self, now: float) -> None:
        """Close the current window if it has grown too old by ``now``."""
        if self.window is not None and self.window.age(now) >= self.window_config.max_seconds:
            self.close_window(now)
        elif self._held:
            self.flush()

    def close_window(self, now: float) -> WindowReport | None:
        """Close and evaluate the current window (unless too small); start none until the next event.

        With a calibration worker, a window whose thresholds are not stored yet is
        held (see :meth:`flush`); the report returned is then that of the last
        window judged now, if any. A detector that raises skips the window
        (counted in ``driftline_detector_failures_total``) and never reaches the caller.
        Detectors run with one BLAS and one OpenMP thread (see :mod:`detectors.threads`).
        """
        window, self.window = self.window, None
        if window is None or self.reference is None:
            return None
        if window.n_events < self.window_config.events:
            self.windows_closed_by_age += 1
        if window.n_events < min(self.window_config.min_events, self.window_config.events):
            self.windows_skipped += 1
            self.windows_too_small += 1
            log.info(
                "%s/%s: window of %d events closed by age, under min_events: not evaluated",
                self.model,
                self.model_version,
                window.n_events,
            )
            return None
        if self.calibration is None and not self._held:
            return self._judge(window, now, self.data_version)
        self._held.append(HeldWindow(window, now, self.data_version, self._window_health(window)))
        return self.flush()

    def flush(self, wait: bool = False) -> WindowReport | None:
        """Judge the held windows, in order, whose thresholds are stored; the last report judged.

        The first window still waiting stops the others behind it. With ``wait``,
        or more than ``MAX_HELD_WINDOWS`` held, the caller waits for the
        calibrations instead (the end of a finite input, a version retired).
        """
        report = None
        while self._held:
            held = self._held[0]
            if not self._thresholds_stored(held, wait or len(self._held) > MAX_HELD_WINDOWS):
                break
            self._held.popleft()
            report = self._judge(held.window, held.now, held.data_version, held.health) or report
        return report

    def _thresholds_stored(self, held: HeldWindow, wait: bool) -> bool:
        """Whether ``held`` (first in line) can be judged now; starts the calibrations it needs."""
        if self.calibration is None:
            return True  # judged inline, simulating where needed (a held window restored in replay)
        if held.requests is None:
            try:
                held.requests = self._pending_thresholds(held.window)
            except Exception:  # a window the detectors cannot read: judging it counts the failure
                return True
        if not held.requests:
            return True
        if wait:
            self.calibration.wait(held.requests, self._thresholds)
            held.requests = []
        else:
            held.requests = self.calibration.missing(held.requests, self._thresholds)
        return not held.requests

    def _pending_thresholds(self, window: Window) -> list[NullRequest]:
        assert self.reference is not None
        features = window.features.table(self.reference.features.kinds)
        outputs = window.outputs.table(self.reference.outputs.kinds)
        return self._drift.pending_thresholds(features) + self._prediction_drift.pending_thresholds(outputs)

    def _judge(
        self, window: Window, now: float, data_version: str, health: PredictionHealth | None = None
    ) -> WindowReport | None:
        """Evaluate a closed window and hand its report to the listeners."""
        try:
            with self.tracer.span("detect", model=self.model, model_version=self.model_version), one_thread():
                report = self._evaluate(window, now, data_version, health)
        except DetectorFailure as failure:
            self.windows_skipped += 1
            self._detector_failed(failure.detector)
            return None
        for listener in self.listeners:
            try:
                listener(report)
            except Exception:
                self._detector_failed("report")
        return report

    def _detector_failed(self, detector: str) -> None:
        """Count and log (with the traceback being handled) a detector that raised."""
        self.store.inc("driftline_detector_failures_total", {"detector": detector})
        self.failures.log(
            f"detector:{detector}",
            "%s/%s: the %s detector failed on a window; that window is skipped",
            self.model,
            self.model_version,
            detector,
        )

    def pending_reference_events(self) -> int:
        """Predictions collected so far for the automatic reference."""
        return self._reference_buffer.n_events if self._reference_buffer is not None else 0

    def pending_events(self) -> int:
        """Predictions in the current, not yet evaluated, window."""
        return self.window.n_events if self.window is not None else 0

    def retire(self) -> None:
        """Judge the held windows, then remove every series of this version (no traffic for too long)."""
        self.flush(wait=True)
        self.store.remove_where(**self.labels)

    def status(self) -> dict[str, object]:
        """A JSON-ready summary for ``/api/v1/models``."""
        reference = self.reference
        return {
            "model": self.model,
            "model_version": self.model_version,
            "role": self.role,
            "data_version": self.data_version,
            "reference": None
            if reference is None
            else {
                "id": reference.reference_id,
                "automatic": reference.automatic,
                "rows": reference.n_rows,
                "data_version": reference.data_version,
                "features": dict(reference.features.kinds),
            },
            "events": self.events,
            "reference_events_collected": self._reference_buffer.n_events if self._reference_buffer else None,
            "windows_evaluated": self.windows_evaluated,
            "windows_skipped": self.windows_skipped,
            "current_window_events": self.pending_events(),
            "windows_waiting_for_calibration": len(self._held),
            "thresholds": self._drift.thresholds() if self.reference is not None else {},
            "last_window": self._last_window,
            "model_health": self.health.status(),
            "multivariate_drift": self._multivariate.status() if self.reference is not None else {},
            "embedding_drift": self._embeddings.status() if self.reference is not None else {},
        }

    def snapshot(self) -> dict[str, Any]:
        """Everything later windows depend on, as plain data (see :meth:`restore`)."""
        reference = self.reference
        return {
            "reference": None if reference is None else [reference.reference_id, reference.automatic],
            "reference_buffer": None if self._reference_buffer is None else self._reference_buffer.to_dict(),
            "window": None if self.window is None else self.window.to_dict(),
            "held_windows": [held.to_dict() for held in self._held],
            "data_version": self.data_version,
            "last_seen": self.last_seen,
            "windows_evaluated": self.windows_evaluated,
            "windows_skipped": self.windows_skipped,
            "last_window": self._last_window,
            "drift": None if reference is None else self._drift.state(),
            "prediction_drift": None if reference is None else self._prediction_drift.state(),
            "health": self.health.snapshot(),
            "embedding_dims": dict(self.embedding_dims),
            "embedding_drift": None if reference is None else self._embeddings.state(),
        }

    def restore(
        self, snapshot: Mapping[str, Any], reference: Reference | None, reference_ids: set[str]
    ) -> None:
        """Continue from :meth:`snapshot` on a state built without a reference.

        ``reference`` is the one this version has now (registered, or the stored
        automatic one). When it is not the one the snapshot used, the detectors
        start afresh on it and ``driftline_reference_changes_total`` goes up.
        """
        self.data_version = str(snapshot["data_version"])
        self.last_seen = float(snapshot["last_seen"])
        self.windows_evaluated = int(snapshot["windows_evaluated"])
        self.windows_skipped = int(snapshot["windows_skipped"])
        self._last_window = snapshot["last_window"]
        self.health.restore_before_fit(snapshot["health"])
        used = snapshot["reference"]
        self._reference_before = None if used is None else str(used[0])
        self.embedding_dims.update(snapshot.get("embedding_dims") or {})
        if reference is not None:
            self._use_reference(reference, reference_ids)
            if used is not None and reference.reference_id == used[0]:
                self._drift.restore_state(snapshot["drift"])
                self._prediction_drift.restore_state(snapshot["prediction_drift"])
                self._embeddings.restore_state(snapshot.get("embedding_drift") or {})
        elif snapshot["reference_buffer"] is not None:
            self._reference_buffer = Window.from_dict(snapshot["reference_buffer"])
        if snapshot["window"] is not None:
            self.window = Window.from_dict(snapshot["window"])
        self._restore_held(snapshot.get("held_windows", ()))
        self.health.restore_after_fit(snapshot["health"])
        self._publish_info()

    def _restore_held(self, held: list[Mapping[str, Any]]) -> None:
        """Hold the snapshot's held windows again; without a reference they are skipped (counted)."""
        if self.reference is None:
            self.windows_skipped += len(held)
            return
        self._held.extend(HeldWindow.from_dict(window) for window in held)

    def _collect_reference(self, event: Prediction, event_time: float) -> None:
        if self._reference_buffer is None:
            self._reference_buffer = Window(event_time)
        self._reference_buffer.add(event, event_time)
        if self._reference_buffer.n_events >= self.auto_events:
            buffer, self._reference_buffer = self._reference_buffer, None
            reference = automatic_reference(
                buffer, self.model_config.features, self.model_config.task, self.data_version
            )
            self._use_reference(reference, set(buffer.event_ids()))
            if self.on_automatic is not None:
                self.on_automatic(self.model, self.model_version, reference, buffer)

    def _use_reference(self, reference: Reference, reference_ids: set[str]) -> None:
        previous = self.reference.reference_id if self.reference is not None else self._reference_before
        if previous is not None and previous != reference.reference_id:
            log.warning(
                "%s/%s: reference changed from %s to %s",
                self.model, self.model_version, previous, reference.reference_id,
            )
            self.store.inc("driftline_reference_changes_total", self.labels)
        self._reference_before = None
        drift = self.config.drift_for(self.model)
        thresholds = self._thresholds = ThresholdCache(self.config.calibration_cache)
        self.reference = reference
        self._drift = DataDriftDetector(
            mode=drift.mode,
            alpha=drift.alpha,
            persistence=drift.persistence,
            drift_share=drift.drift_share,
            methods=self.model_config.drift_methods,
            seed=drift.seed,
            pooled_windows=drift.pooled_windows,
            threshold_cache=thresholds,
        )
        self._drift.fit(reference.features)
        self._multivariate = MultivariateDrift(drift, self.store, self.labels)
        self._multivariate.fit(reference.features)
        self._embeddings = EmbeddingDriftTests(drift, self.store, self.labels)
        self._embeddings.fit(reference.embeddings)
        for name, vectors in reference.embeddings.items():
            self.embedding_dims.setdefault(name, int(vectors.shape[1]))
        self._prediction_drift = DataDriftDetector(
            mode=drift.mode,
            alpha=drift.alpha,
            persistence=drift.persistence,
            drift_share=1.0,
            seed=drift.seed,
            pooled_windows=drift.pooled_windows,
            threshold_cache=thresholds,
        )
        self._prediction_drift.fit(reference.outputs)
        self._quality = DataQualityDetector(bounds=dict(self.model_config.bounds))
        self._quality.fit(reference.features)
        self.health.fit(reference, reference_ids)
        self._publish_info()
        if self.calibration is not None:  # started now, they are often done by the first window
            size = self.window_config.events
            expected = self._drift.expected_thresholds(size)
            self.calibration.missing(expected + self._prediction_drift.expected_thresholds(size), thresholds)

    def _set_data_version(self, data_version: str) -> None:
        if data_version != self.data_version:
            self.data_version = data_version
            self._publish_info()

    def _publish_info(self) -> None:
        labels = {
            **self.labels,
            "data_version": self.data_version,
            "reference_id": self.reference.reference_id if self.reference else "collecting",
            "role": self.role,
        }
        if labels == self._info_labels:
            return
        if self._info_labels is not None:
            self.store.remove("driftline_model_info", self._info_labels)
        self.store.set("driftline_model_info", labels, 1.0)
        self._info_labels = labels

    def set_role(self, role: str) -> None:
        """Champion or challenger, shown on ``driftline_model_info``."""
        self.role = role
        self._publish_info()

    def _evaluate(
        self, window: Window, now: float, data_version: str, health: PredictionHealth | None
    ) -> WindowReport:
        """Run every detector on the window (its model health unless given), then export; a
        detector that raises exports nothing."""
        assert self.reference is not None
        features = guarded("window", window.features.table, self.reference.features.kinds)
        outputs = guarded("window", window.outputs.table, self.reference.outputs.kinds)
        drift = guarded("data_drift", self._drift.evaluate, features)
        prediction_drift = guarded("prediction_drift", self._prediction_drift.evaluate, outputs)
        quality = guarded("data_quality", self._quality.evaluate, features)
        self.windows_evaluated += 1
        try:
            embeddings = self._embeddings.evaluate(window.embeddings.arrays())
        except Exception:  # the other results stand; this window's embedding tests are skipped
            self._detector_failed("embedding_drift")
            embeddings = {}
        try:
            multivariate = {result.method: result for result in self._multivariate.evaluate(features)}
        except Exception:  # the univariate results stand; this window's multivariate tests are skipped
            self._detector_failed("multivariate_drift")
            multivariate = {}
        if health is None:
            health = self._window_health(window, features)
        report = WindowReport(
            model=self.model,
            model_version=self.model_version,
            data_version=data_version,
            reference_id=self.reference.reference_id,
            index=self.windows_evaluated,
            n_events=window.n_events,
            start=window.start,
            end=now,
            drift=drift,
            prediction_drift=prediction_drift,
            quality=quality,
            features=features,
            reference_features=self.reference.features,
            health=health,
            embeddings=embeddings,
            multivariate=multivariate,
        )
        self._export(report)
        self.last_report = report
        self._last_window = _report_summary(report)
        log.info(
            "%s/%s window %d: %d events against %s, drift share %r, detected %s, scores %s",
            self.model,
            self.model_version,
            report.index,
            report.n_events,
            report.reference_id,
            report.drift.share,
            report.drift.detected,
            ",".join(f"{d.feature}={d.score!r}" for d in report.drift.features),
        )
        return report

    def _window_health(self, window: Window, features: FeatureTable | None = None) -> PredictionHealth:
        """The window's proxy metrics, estimated performance and fairness (exported as they are);
        a regressor's DLE reads the window's features (``features`` when already tabled)."""
        try:
            if self.model_config.task == "regression" and features is None:
                assert self.reference is not None
                features = window.features.table(self.reference.features.kinds)
            with one_thread():
                return self.health.evaluate_predictions(window, features)
        except Exception:  # the drift results stand; this window's model health is skipped
            self._detector_failed("model_health")
            return PredictionHealth()

    def _export(self, report: WindowReport) -> None:
        """Write the window's results: one store call per metric, not per feature (500 features
        are 3,000 series a window)."""
        store, labels = self.store, self.labels
        names, version = tuple(labels), tuple(labels.values())
        feature, output = (*names, "feature"), (*names, "output")
        drifts = report.drift.features
        store.set_many(
            "driftline_feature_drift_score", (*feature, "method"),
            {(*version, d.feature, d.method): d.score for d in drifts},
        )
        detected = {(*version, d.feature): float(d.detected) for d in drifts}
        store.set_many("driftline_feature_drift_detected", feature, detected)
        store.inc_many("driftline_feature_drift_windows_total", feature, detected)
        store.set("driftline_dataset_drift_share", labels, report.drift.share)
        store.set("driftline_dataset_drift_detected", labels, float(report.drift.detected))
        store.inc("driftline_dataset_drift_windows_total", labels, float(report.drift.detected))
        outputs = report.prediction_drift.features
        store.set_many(
            "driftline_prediction_drift_score", (*output, "method"),
            {(*version, d.feature, d.method): d.score for d in outputs},
        )
        store.set_many(
            "driftline_prediction_drift_detected", output,
            {(*version, d.feature): float(d.detected) for d in outputs},
        )
        ratios: dict[str, dict[tuple[str, ...], float]] = {name: {} for name in _QUALITY_GAUGES}
        for quality in report.quality.features:
            values = (
                quality.missing_ratio, quality.type_error_ratio, quality.out_of_range_ratio,
                quality.new_category_ratio,
            )
            for name, ratio in zip(_QUALITY_GAUGES, values, strict=True):
                if not math.isnan(ratio):  # out of range: numbers only; new categories: categories only
                    ratios[name][(*version, quality.feature)] = ratio
        for name, series in ratios.items():
            store.set_many(name, feature, series)
        store.set("driftline_window_end_timestamp_seconds", labels, report.end)
        store.inc("driftline_windows_total", labels)


_QUALITY_GAUGES = (
    "driftline_feature_missing_ratio",
    "driftline_feature_type_error_ratio",
    "driftline_feature_out_of_range_ratio",
    "driftline_feature_new_category_ratio",
)
"""The data-quality gauges, in the order :meth:`ModelVersionState._export` gives their ratios."""


def _report_summary(report: WindowReport | None) -> dict[str, object] | None:
    if report is None:
        return None
    return {
        "index": report.index,
        "events": report.n_events,
        "start": report.start,
        "end": report.end,
        "dataset_drift_share": report.drift.share,
        "dataset_drift_detected": report.drift.detected,
        "drifted_features": [d.feature for d in report.drift.features if d.detected],
        "quality": _worst_quality(report),
        "features": {
            d.feature: {
                "method": d.method,
                "score": d.score,
                "flag_value": _finite_or_none(d.flag_value),
                "threshold": d.threshold,
                "pooled_flag_value": _finite_or_none(d.pooled_flag_value),
                "pooled_threshold": _finite_or_none(d.pooled_threshold),
                "drifted": d.drifted,
                "detected": d.detected,
            }
            for d in report.drift.features
        },
    }


def _worst_quality(report: WindowReport) -> dict[str, float | None]:
    """The highest ratio over the window's features per data-quality check (null: none applies)."""
    checks = ("missing", "type_error", "out_of_range", "new_category")
    worst: dict[str, float | None] = {}
    for check in checks:
        ratios = [getattr(q, f"{check}_ratio") for q in report.quality.features]
        finite = [r for r in ratios if math.isfinite(r)]
        worst[check] = max(finite) if finite else None
    return worst


def _finite_or_none(value: float) -> float | None:
    """JSON has no NaN: a test that did not run is reported as null."""
    return value if math.isfinite(value) else None
