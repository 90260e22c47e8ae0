"""The pipeline: decode, validate, guard cardinality, route by (model, model_version), evaluate.

Every message handed to :meth:`Pipeline.process` is either accepted (counted
in ``driftline_events_total``) or rejected (counted in
``driftline_events_rejected_total`` and written to the dead-letter sink).
An event is decoded and validated completely before it changes any state;
if processing an accepted event still fails (a bug), the message is rejected
as ``processing_error`` and the pipeline goes on. A failure without a message
(a detector at window close, a tick) is counted in
``driftline_detector_failures_total`` and never stops the pipeline either.
Time rules run on event time when ``event_time`` is true (replay) and on the
wall clock otherwise (collect, demo).
"""

from __future__ import annotations

import heapq
import logging
import math
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from driftline.schema import Heartbeat, Label, Prediction, RejectReason, SchemaError

from collector.auto_references import AutomaticReferences
from collector.batch_metrics import BatchMetrics, Family
from collector.calibration_worker import CalibrationWorker
from collector.config import Config, ReferenceFile
from collector.dlq import DeadLetterSink
from collector.failures import FailureLog
from collector.fast_decode import decode
from collector.instances import InstanceTracker
from collector.label_join import JoinResult, LabelJoinStore, PredictionRecord
from collector.model_health import LabelWindowListener
from collector.model_state import ModelVersionState, WindowListener
from collector.partition_counters import PartitionCounters
from collector.reference_registry import ReferenceRegistry
from collector.references import Reference, load_reference
from collector.roles import assign_roles
from collector.sources import RawMessage
from collector.threshold_worker import ThresholdWorker
from collector.windows import Window
from exporters.catalog import DETECTORS, LIMIT_KINDS
from exporters.store import MetricStore
from exporters.tracing import PipelineTracer

log = logging.getLogger(__name__)

OTHER = "__other__"
VersionKey = tuple[str, str]
_V = TypeVar("_V")
DERIVED_METRICS = frozenset({"driftline_model_info"})
"""Series a model's state writes again when restored, so a checkpoint leaves them out."""
_EXPIRY_MARGIN_SECONDS = 1.0
"""The expiry pass runs from this long before the earliest due expiry (rounding; see ``_expire_early``)."""

MV = ("model", "model_version")
EVENTS = Family("driftline_events_total", (*MV, "type"))
LATENCY = Family("driftline_prediction_latency_seconds", MV)
PREDICTION_ERRORS = Family("driftline_prediction_errors_total", MV)
SEGMENT_EVENTS = Family("driftline_segment_events_total", (*MV, "segment", "value"))
LABELS = Family("driftline_labels_total", ("model", "outcome"))
LABELS_EARLY = Family("driftline_labels_early", ("model",))
LABEL_DELAY = Family("driftline_label_delay_seconds", ("model",))
PROCESSING_DELAY = Family("driftline_processing_delay_seconds", ())
"""The series written per event, summed per batch (:mod:`collector.batch_metrics`)."""


@dataclass
class PipelineCounts:
    """What the pipeline did with its input, for summaries and tests."""

    accepted: dict[str, int] = field(default_factory=lambda: {"prediction": 0, "label": 0, "heartbeat": 0})
    rejected: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.accepted.values()) + sum(self.rejected.values())


class Pipeline:
    """Turns raw messages into window evaluations and metrics."""

    def __init__(
        self,
        config: Config,
        store: MetricStore,
        dlq: DeadLetterSink,
        *,
        event_time: bool,
        listeners: Sequence[WindowListener] = (),
        tracer: PipelineTracer | None = None,
        label_listeners: Sequence[LabelWindowListener] = (),
        automatic_references: AutomaticReferences | None = None,
        calibration: CalibrationWorker | None = None,
        threshold_worker: ThresholdWorker | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.dlq = dlq
        self.event_time = event_time
        self.listeners = tuple(listeners)
        self.label_listeners = tuple(label_listeners)
        self.tracer = tracer or PipelineTracer()
        self.counts = PipelineCounts()
        self.batch = BatchMetrics(store)
        self.clock = 0.0
        self.states: dict[VersionKey, ModelVersionState] = {}
        self.lock = threading.RLock()
        self._versions: dict[str, set[str]] = {}
        self._features: dict[str, set[str]] = {}
        self._embeddings: dict[str, set[str]] = {}
        self._segment_values: dict[tuple[str, str], set[str]] = {}
        self._deadlines: list[tuple[float, int, VersionKey, weakref.ref[Window]]] = []
        """Event-time age deadlines of open windows; weak, so a window closed by count goes at once."""
        self._sequence = 0
        self.references = self._load_references()
        self.automatic_references = automatic_references
        self.calibration = calibration
        """Cache-miss calibrations off the batch thread (collect); None: inline (replay)."""
        self.threshold_worker = threshold_worker
        """Performance-threshold fits off the batch thread (collect); None: inline (replay)."""
        self.counters = PartitionCounters(store)
        """Rejections and limits by source partition, checkpointed with it."""
        self.instances = InstanceTracker.from_config(store, config, count_limit=self._count_limit)
        self._partition_of: dict[str, int] = {}
        """The partition number of each model's events (its predictions and labels partitions)."""
        self.joins: dict[str, LabelJoinStore] = {}
        self._joins_touched: set[str] = set()
        """Models whose join store took an event in this batch: their early-label counts are due."""
        self._expiry_due = -math.inf
        """No join store drops anything before this time (event or wall clock): until then the
        expiry pass over every model's store is skipped."""
        self._early_written: dict[str, int] = {}
        """The early-label count last written per model: the every-batch expiry of all models writes
        only what changed."""
        self.failures = FailureLog(log)
        for reason in RejectReason:
            store.inc("driftline_events_rejected_total", {"reason": reason.value}, 0.0)
        for kind in LIMIT_KINDS:
            store.inc("driftline_limit_exceeded_total", {"kind": kind}, 0.0)
        for detector in DETECTORS:
            store.inc("driftline_detector_failures_total", {"detector": detector}, 0.0)

    def process(self, batch: Sequence[RawMessage]) -> None:
        """Handle one batch of raw messages."""
        started = time.perf_counter()
        with self.lock:
            try:
                for message in batch:
                    self._process_one(message)
                self._count_touched_joins()
            finally:
                if self._joins_touched:  # an error left them uncounted: the next pass visits every store
                    self._joins_touched.clear()
                    self._expiry_due = -math.inf
                self._take_thresholds()
                self.batch.flush()  # before retiring: a retired version's series must stay gone
            self.counters.current = None
            if self.event_time:
                self._retire_idle(self.clock)
                self._expire_early(self.clock)
                self._check_instances(self.clock)
        if batch and not self.event_time:  # wall-clock time would make replays differ
            self.store.observe("driftline_batch_duration_seconds", {}, time.perf_counter() - started)

    def _take_thresholds(self) -> None:
        """Export the performance thresholds whose fits finished on the worker (collect only)."""
        if self.threshold_worker is not None:
            for state in self.states.values():
                state.health.take_thresholds()

    def tick(self, now: float) -> None:
        """Run the time rules at ``now`` (wall clock in collect; the caller decides)."""
        with self.lock:
            self._close_due(now)
            self._retire_idle(now)
            self._expire_early(now)
            self._check_instances(now)

    def _check_instances(self, now: float) -> None:
        try:
            self.instances.check(now)
        except Exception:
            self.store.inc("driftline_detector_failures_total", {"detector": "instances"})
            self.failures.log("detector:instances", "checking serving instances failed")

    def drop_partitions(self, partitions: set[int]) -> None:
        """Forget the state of models whose events came from partitions this instance lost.

        Events are keyed by model, so the partition's new owner takes those
        models' state over (from their last checkpoint, and reads on from its
        offsets). Labels go to the same partition number of the labels topic
        as the predictions (co-partitioned topics).
        """
        with self.lock:
            for model in self.models_of(partitions):
                self._drop_model(model)
            self.counters.drop(partitions)

    def models_of(self, partitions: set[int]) -> list[str]:
        """The models whose events come from these partition numbers."""
        return sorted(m for m, p in self._partition_of.items() if p in partitions)

    def snapshot_partition(self, partition: int) -> dict[str, Any]:
        """The state of every model of one partition, as plain data (see :meth:`restore_partition`)."""
        with self.lock:
            return {model: self._snapshot_model(model) for model in self.models_of({partition})}

    def snapshot_counters(self, partition: int) -> list[list[Any]]:
        """The partition's rejection and limit counts, as plain data (:mod:`collector.partition_counters`)."""
        with self.lock:
            return self.counters.export(partition)

    def restore_partition(
        self, partition: int, snapshot: Mapping[str, Any], counters: Sequence[Sequence[Any]] = ()
    ) -> None:
        """Replace the state of a partition's models, and its counts, with a snapshot of them."""
        with self.lock:
            self.drop_partitions({partition})
            self.counters.restore(partition, counters)
            self.counters.current = None
            for model, state in snapshot.items():
                self._restore_model(partition, str(model), state)

    def _snapshot_model(self, model: str) -> dict[str, Any]:
        joins = self.joins.get(model)
        return {
            "versions": {v: s.snapshot() for (m, v), s in self.states.items() if m == model},
            "joins": None if joins is None else joins.to_dict(),
            "features": sorted(self._features.get(model, ())),
            "embeddings": sorted(self._embeddings.get(model, ())),
            "segments": {s: sorted(values) for (m, s), values in self._segment_values.items() if m == model},
            "metrics": self.store.export_where(exclude=DERIVED_METRICS, model=model),
        }

    def _restore_model(self, partition: int, model: str, snapshot: Mapping[str, Any]) -> None:
        self._partition_of[model] = partition
        self.store.restore(snapshot["metrics"])
        self._check_model(model)
        if snapshot["joins"] is not None:
            self.joins[model] = LabelJoinStore.from_dict(snapshot["joins"])
            self._expiry_due = -math.inf  # its early labels may be due, its unmatched ones uncounted
        self._features[model] = set(snapshot["features"])
        self._embeddings[model] = set(snapshot.get("embeddings") or ())
        for segment, values in snapshot["segments"].items():
            self._segment_values[(model, segment)] = set(values)
        for version, state in snapshot["versions"].items():
            self._state(model, str(version), restore=state)

    def _drop_model(self, model: str) -> None:
        for key in [k for k in self.states if k[0] == model]:
            self._retire(key)
        self.store.remove_where(model=model)
        self._partition_of.pop(model, None)
        self.joins.pop(model, None)
        self._early_written.pop(model, None)
        self._versions.pop(model, None)
        self._features.pop(model, None)
        self._embeddings.pop(model, None)
        for key in [k for k in self._segment_values if k[0] == model]:
            del self._segment_values[key]

    def finish(self) -> dict[VersionKey, int]:
        """End of a finite input: held windows are judged (waiting for their calibration), and the
        events left in each trailing partial window (not evaluated) are returned."""
        with self.lock:
            for state in self.states.values():
                state.flush(wait=True)
            return {
                key: state.pending_events() for key, state in self.states.items() if state.pending_events()
            }

    def status(self) -> list[dict[str, object]]:
        with self.lock:
            return [state.status() for state in self.states.values()]

    def _load_references(self) -> dict[VersionKey, Reference]:
        """Registered references: the configuration's files first, then the registry's newest."""
        files: dict[VersionKey, ReferenceFile] = {}
        if self.config.reference_registry is not None:
            files.update(ReferenceRegistry(self.config.reference_registry).reference_files())
        for model, model_config in self.config.models.items():
            for version, reference_file in model_config.references.items():
                files[(model, version)] = reference_file
        references = {}
        for (model, version), reference_file in files.items():
            model_config = self.config.model(model)
            references[(model, version)] = load_reference(
                reference_file, model_config.features, model_config.task
            )
        return references

    def _process_one(self, message: RawMessage) -> None:
        self.counters.current = message.partition
        try:
            self._route(decode(message.value), message)
        except SchemaError as error:
            self._reject(message, error)
        except Exception as exc:
            self.failures.log(
                RejectReason.PROCESSING_ERROR.value,
                "processing the message at %s[%d] offset %d failed; it goes to the dead-letter "
                "queue as processing_error",
                message.topic,
                message.partition,
                message.offset,
            )
            failure = f"{type(exc).__name__}: {str(exc)[:200]}"
            self._reject(message, SchemaError(RejectReason.PROCESSING_ERROR, "", failure))

    def _route(self, event: Prediction | Label | Heartbeat, message: RawMessage) -> None:
        """Hand a valid event to its handler; each counts it as accepted only once it is done."""
        timestamp = event.timestamp
        if self.event_time:
            when = timestamp if timestamp is not None else self.clock
            self._advance(when)
        else:
            when = message.receive_time
            if timestamp is not None:
                self.batch.observe(PROCESSING_DELAY, (), max(0.0, time.time() - timestamp))
        self._partition_of.setdefault(event.model, message.partition)
        if isinstance(event, Prediction):
            self._prediction(event, when)
        elif isinstance(event, Label):
            self._label(event, when)
        else:
            self._heartbeat(event, when)

    def _reject(self, message: RawMessage, error: SchemaError) -> None:
        reason = error.reason.value
        self.counts.rejected[reason] = self.counts.rejected.get(reason, 0) + 1
        self.counters.inc("driftline_events_rejected_total", {"reason": reason})
        self.dlq.write(message, error)

    def _count_limit(self, kind: str) -> None:
        self.counters.inc("driftline_limit_exceeded_total", {"kind": kind})

    def _accept(self, kind: str, model: str, model_version: str) -> None:
        self.counts.accepted[kind] += 1
        self.batch.inc(EVENTS, (model, model_version, kind))

    def _prediction(self, event: Prediction, when: float) -> None:
        state = self._state(event.model, event.model_version)
        event = self._fold(event)
        if event.embeddings:
            state.check_embeddings(event)
        joins = self._join_store(event.model)
        early = joins.add(
            PredictionRecord(
                event.event_id,
                event.model_version,
                when,
                event.prediction,
                event.probabilities,
                event.segments,
            )
        )
        window_before = state.window
        state.add(event, when)
        if self.event_time and state.window is not None and state.window is not window_before:
            self._schedule(state)
        if early is not None:
            self._joined(event.model, early)
        self._joins_touched.add(event.model)
        self._accept("prediction", event.model, event.model_version)
        version = (event.model, event.model_version)
        if event.latency_ms is not None:
            self.batch.observe(LATENCY, version, event.latency_ms / 1000.0)
        if event.error is not None:
            self.batch.inc(PREDICTION_ERRORS, version)
        for segment, value in (event.segments or {}).items():
            self.batch.inc(SEGMENT_EVENTS, (*version, segment, value))

    def _fold(self, event: Prediction) -> Prediction:
        """The event with its feature and embedding names and segment values within the cardinality limits."""
        limits, model = self.config.limits, event.model
        features = _fold_names(self._features.setdefault(model, set()), limits.max_features, event.features)
        if features is not event.features:
            self._count_limit("feature")
        embeddings = event.embeddings
        if embeddings:
            known = self._embeddings.setdefault(model, set())
            embeddings = _fold_names(known, limits.max_embeddings, embeddings)
            if embeddings is not event.embeddings:
                self._count_limit("embedding")
        segments = event.segments
        if segments:
            segments = {
                name: self._fold_segment(event.model, name, value) for name, value in segments.items()
            }
        if features is event.features and embeddings is event.embeddings and segments == event.segments:
            return event
        return replace(event, features=features, segments=segments, embeddings=embeddings or None)

    def _label(self, event: Label, when: float) -> None:
        """Join a label; one whose prediction is not seen yet is held (early) and counted on joining."""
        joins = self.joins.get(event.model)
        if joins is None:  # a model with a join store has passed the model limit already
            self._check_model(event.model)
            joins = self._join_store(event.model)
        result = joins.join_event(event, when)
        version = event.model_version or "unknown"
        if result.prediction is not None:
            version = result.prediction.model_version
        if result.outcome == "joined":
            self._joined(event.model, result)
        elif result.outcome != "held":
            self.batch.inc(LABELS, (event.model, result.outcome))
        self._joins_touched.add(event.model)
        self._accept("label", event.model, version)

    def _joined(self, model: str, result: JoinResult) -> None:
        """Count one joined label and hand it to its model version's health."""
        assert result.prediction is not None
        self.batch.inc(LABELS, (model, "joined"))
        if result.delay_seconds is not None:
            self.batch.observe(LABEL_DELAY, (model,), result.delay_seconds)
        state = self.states.get((model, result.prediction.model_version))
        if state is not None:
            state.health.add_label(result)

    def _count_touched_joins(self) -> None:
        """Count the early labels of the stores this batch touched, and pack their new predictions;
        their expiry lowers ``_expiry_due``."""
        for model in self._joins_touched:
            joins = self.joins[model]
            joins.compact()
            self._count_early(model, joins)
            self._expiry_due = min(self._expiry_due, joins.next_expiry())
        self._joins_touched.clear()

    def _count_early(self, model: str, joins: LabelJoinStore) -> None:
        """Early labels held now (when that changed), and those that left unjoined (now ``unmatched``)."""
        if self._early_written.get(model) != joins.early:
            self.batch.set(LABELS_EARLY, (model,), float(joins.early))
            self._early_written[model] = joins.early
        unmatched = joins.take_unmatched()
        if unmatched:
            self.batch.inc(LABELS, (model, "unmatched"), unmatched)

    def _expire_early(self, now: float) -> None:
        """Expire every model's join store, unless none can drop anything yet.

        Skipping is exact: a store the batch touched lowered ``_expiry_due`` to its own
        next expiry, an untouched one changes only by expiring, and the second of margin
        covers the rounding of ``timestamp + max_age`` against ``now - max_age``.
        """
        if now + _EXPIRY_MARGIN_SECONDS >= self._expiry_due:
            due = math.inf
            for model, joins in self.joins.items():
                joins.expire(now)
                self._count_early(model, joins)
                due = min(due, joins.next_expiry())
            self._expiry_due = due
        self.batch.flush()

    def _join_store(self, model: str) -> LabelJoinStore:
        store = self.joins.get(model)
        if store is None:
            labels = self.config.labels
            store = self.joins[model] = LabelJoinStore(
                labels.max_entries,
                labels.max_age_seconds,
                max_early=labels.max_early,
                max_early_age_seconds=labels.max_early_age_seconds,
            )
            for outcome in ("joined", "unmatched", "expired"):
                self.store.inc("driftline_labels_total", {"model": model, "outcome": outcome}, 0.0)
        return store

    def _heartbeat(self, event: Heartbeat, when: float) -> None:
        self._state(event.model, event.model_version)
        self.instances.observe(event, when)
        self._accept("heartbeat", event.model, event.model_version)

    def _state(
        self, model: str, model_version: str, restore: Mapping[str, Any] | None = None
    ) -> ModelVersionState:
        key = (model, model_version)
        state = self.states.get(key)
        if state is not None:
            return state
        versions = self._check_model(model)
        if len(versions) >= self.config.limits.max_model_versions and restore is None:
            self._count_limit("model_version")
            raise SchemaError(RejectReason.LIMIT, "model_version", f"model {model} has too many versions")
        versions.add(model_version)
        roles = assign_roles(versions, self.config.model(model).champion)
        reference, reference_ids = self._reference_of(model, model_version)
        state = ModelVersionState(
            model,
            model_version,
            self.config,
            self.store,
            reference if restore is None else None,
            self.listeners,
            self.tracer,
            self.failures,
            label_listeners=self.label_listeners,
            role=roles[model_version],
            reference_ids=reference_ids,
            on_automatic=self._save_automatic if self.automatic_references is not None else None,
            calibration=self.calibration,
            threshold_worker=self.threshold_worker,
        )
        if restore is not None:
            state.restore(restore, reference, reference_ids)
            if self.event_time and state.window is not None:
                self._schedule(state)
        self.states[key] = state
        self._set_roles(model, roles)
        self.store.inc(
            "driftline_prediction_errors_total", {"model": model, "model_version": model_version}, 0.0
        )
        return state

    def _set_roles(self, model: str, roles: dict[str, str]) -> None:
        """Give each live version of ``model`` its role (a version came or went)."""
        for version, role in roles.items():
            state = self.states.get((model, version))
            if state is not None and state.role != role:
                state.set_role(role)

    def _reference_of(self, model: str, model_version: str) -> tuple[Reference | None, set[str]]:
        """The registered reference of a version, else its stored automatic one (with its event ids)."""
        registered = self.references.get((model, model_version))
        if registered is not None or self.automatic_references is None:
            return registered, set()
        model_config = self.config.model(model)
        stored = self.automatic_references.load(
            model, model_version, model_config.features, model_config.task
        )
        return stored if stored is not None else (None, set())

    def _save_automatic(self, model: str, model_version: str, reference: Reference, events: Window) -> None:
        assert self.automatic_references is not None
        self.automatic_references.save(model, model_version, reference, events)

    def _check_model(self, model: str) -> set[str]:
        versions = self._versions.get(model)
        if versions is None:
            if len(self._versions) >= self.config.limits.max_models:
                self._count_limit("model")
                raise SchemaError(RejectReason.LIMIT, "model", f"over {self.config.limits.max_models} models")
            versions = self._versions[model] = set()
        return versions

    def _fold_segment(self, model: str, segment: str, value: str) -> str:
        known = self._segment_values.setdefault((model, segment), set())
        if value in known:
            return value
        if len(known) < self.config.limits.max_segment_values:
            known.add(value)
            return value
        self._count_limit("segment_value")
        return OTHER

    def _advance(self, when: float) -> None:
        if when > self.clock:
            self.clock = when
            self._close_due(when)

    def _schedule(self, state: ModelVersionState) -> None:
        assert state.window is not None
        if math.isinf(state.window_config.max_seconds):
            return  # no age rule (replay's default): a deadline would only keep the window alive
        self._sequence += 1
        deadline = state.window.start + state.window_config.max_seconds
        key = (state.model, state.model_version)
        heapq.heappush(self._deadlines, (deadline, self._sequence, key, weakref.ref(state.window)))

    def _close_due(self, now: float) -> None:
        if not self.event_time:
            for state in self.states.values():
                state.tick(now)
            return
        while self._deadlines and self._deadlines[0][0] <= now:
            _, _, key, window = heapq.heappop(self._deadlines)
            due = self.states.get(key)
            if due is not None and due.window is not None and due.window is window():
                due.close_window(now)

    def _retire_idle(self, now: float) -> None:
        retire_after = self.config.defaults.retire_after_seconds
        idle = [
            key
            for key, state in self.states.items()
            if state.last_seen and now - state.last_seen > retire_after
        ]
        for key in idle:
            log.info("retiring %s/%s: no traffic for %.0f s", key[0], key[1], retire_after)
            self._retire(key)

    def _retire(self, key: VersionKey) -> None:
        self.states.pop(key).retire()
        self.instances.forget_model_version(*key)
        versions = self._versions.get(key[0], set())
        versions.discard(key[1])
        self._set_roles(key[0], assign_roles(versions, self.config.model(key[0]).champion))


def _fold_names(known: set[str], limit: int, values: Mapping[str, _V]) -> Mapping[str, _V]:
    """``values`` without the names beyond the first ``limit`` of a model (``known`` grows to it).

    The same mapping when nothing is dropped, so the caller counts the limit once per event.
    """
    if known.issuperset(values):  # the usual event: nothing new, nothing to add
        return values
    if len(known) < limit:
        known.update(list(values)[: limit - len(known)])
    if known.issuperset(values):
        return values
    return {name: value for name, value in values.items() if name in known}
