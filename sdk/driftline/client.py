"""The client that serving code logs predictions, labels and heartbeats through.

The calls on the serving path (``log_prediction``, ``log_label``) only build an
event and put it on a bounded in-memory queue: they never block on I/O and
never raise because the queue is full, the transport is broken or the event is
invalid. For a backfill, ``when_full="block"`` makes them wait for room instead
of dropping, and ``log_predictions`` takes a whole iterable of records. One
background thread encodes, validates and sends the events; what
happens to each one is counted in :attr:`Client.stats`.

>>> from driftline import Client, MemoryTransport, decode
>>> transport = MemoryTransport()
>>> with Client("credit-risk", "3", transport) as client:
...     event_id = client.log_prediction({"age": 42, "region": "north"}, 1,
...                                      probabilities={"0": 0.2, "1": 0.8})
...     client.log_label(event_id, 1)
>>> prediction, label = (decode(raw) for raw in transport.drain(10))
>>> prediction.event_id == event_id == label.event_id
True
>>> client.stats.sent, client.stats.dropped_queue_full
(2, 0)
"""

from __future__ import annotations

import logging
import math
import os
import queue
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from types import TracebackType
from typing import Any, Literal

from driftline.event_ids import new_event_id
from driftline.heartbeat import ProcessProbe, Ticker
from driftline.schema import (
    MAX_ID_CHARS,
    MAX_VERSION_CHARS,
    MODEL_PATTERN,
    Event,
    FeatureValue,
    Heartbeat,
    Label,
    Prediction,
    RejectReason,
    Scalar,
    SchemaError,
    check_dimensions,
    utf8_text,
)
from driftline.transports import Transport
from driftline.wire import encode_checked

logger = logging.getLogger("driftline.client")

GIL_SLICE_SECONDS = 100e-6
"""How long the sender works before it gives the GIL up to the serving threads."""


@dataclass(frozen=True, slots=True)
class ClientStats:
    """A snapshot of what the client did with the events it was given.

    Every event (prediction, label or heartbeat) is counted exactly once in
    ``enqueued``, ``dropped_queue_full`` or ``dropped_closed``; every enqueued
    event ends in exactly one of ``sent``, ``failed`` or ``invalid``, or is
    still ``pending``. So ``enqueued == sent + failed + invalid + pending``.
    """

    enqueued: int
    """Accepted into the queue."""
    sent: int
    """Handed to ``transport.send`` without an exception."""
    dropped_queue_full: int
    """Dropped on the serving path because ``max_queue`` events were pending."""
    dropped_closed: int
    """Logged after ``close()`` began, and dropped."""
    failed: int
    """``transport.send`` raised, or ``close()`` ran out of time before sending it; the event is lost."""
    invalid: int
    """Did not conform to the event schema (e.g. a NaN feature); never sent."""
    pending: int
    """Enqueued and not yet sent, failed or found invalid (includes the one in flight)."""
    invalid_reasons: Mapping[str, int]
    """``invalid`` by the collector's rejection reason (``non_finite``, ``invalid_field``...)."""


class _Outcome(Enum):
    SENT = "sent"
    FAILED = "failed"
    INVALID = "invalid"


_STOP = object()
_NO_LABEL = object()
WhenFull = Literal["drop", "block"]


class Client:
    """Logs one model version's events to a transport from a background thread.

    Args:
        model: the model name, ``[A-Za-z0-9_.-]{1,64}``; also the message key.
        model_version: 1-64 chars.
        transport: where events go (``MemoryTransport``, ``FileTransport``,
            ``driftline.kafka_transport.KafkaTransport``, or your own
            :class:`~driftline.transports.Transport`). The client closes it.
        data_version: the version of the data the model was trained on.
        max_queue: how many events may wait for the sender (including the one
            being sent) before new ones are dropped (or, with ``when_full="block"``,
            before the caller waits).
        when_full: ``"drop"`` (the default, for the serving path: a full queue
            drops the event and counts it) or ``"block"`` (for a backfill: the
            call waits until the sender makes room, so nothing is dropped; it
            returns without queueing only once ``close()`` has begun).
            Heartbeats never wait.
        heartbeat_interval: seconds between heartbeat events; ``None`` sends none.
        instance: the name of this serving process in heartbeats; default
            ``"<hostname>-<pid>"``.

    Constructor arguments are checked and a bad one raises ``ValueError``.
    After construction nothing on the serving path raises.

    >>> from driftline import Client, MemoryTransport
    >>> client = Client("credit-risk", "3", MemoryTransport(), max_queue=100)
    >>> event_id = client.log_prediction({"age": 42}, 0, latency_ms=3.5)
    >>> client.flush(timeout=5.0)
    0
    >>> client.close()
    >>> client.stats.sent
    1
    """

    def __init__(
        self,
        model: str,
        model_version: str,
        transport: Transport,
        *,
        data_version: str = "unknown",
        max_queue: int = 10_000,
        heartbeat_interval: float | None = None,
        instance: str | None = None,
        when_full: WhenFull = "drop",
    ) -> None:
        if not isinstance(model, str) or not MODEL_PATTERN.fullmatch(model):
            raise ValueError(f"model must match [A-Za-z0-9_.-]{{1,64}}, got {model!r}")
        _check_length("model_version", model_version, MAX_VERSION_CHARS)
        _check_length("data_version", data_version, MAX_VERSION_CHARS)
        if isinstance(max_queue, bool) or not isinstance(max_queue, int) or max_queue < 1:
            raise ValueError(f"max_queue must be an int >= 1, got {max_queue!r}")
        if when_full not in ("drop", "block"):
            raise ValueError(f"when_full must be 'drop' or 'block', got {when_full!r}")
        if heartbeat_interval is not None and not (
            math.isfinite(heartbeat_interval) and heartbeat_interval > 0
        ):
            raise ValueError(f"heartbeat_interval must be > 0 seconds, got {heartbeat_interval!r}")
        instance = _default_instance() if instance is None else instance
        _check_length("instance", instance, MAX_ID_CHARS)

        self.model = model
        self.model_version = model_version
        self.transport = transport
        self.data_version = data_version
        self.max_queue = max_queue
        self.when_full = when_full
        self.heartbeat_interval = heartbeat_interval
        self.instance = instance

        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        # Two locks, so that the sender never holds one the serving path waits for:
        # _lock guards what the serving path counts, _progress what the sender counts.
        self._lock = threading.Lock()
        self._offered = {"enqueued": 0, "dropped_queue_full": 0, "dropped_closed": 0}
        self._requests_total = 0
        self._errors_total = 0
        self._closed = False
        self._abandon = threading.Event()
        """Set when close() stops delivering: queued events are then counted failed, not sent."""
        self._progress = threading.Condition(threading.Lock())
        self._processed = 0
        self._outcomes = dict.fromkeys((outcome.value for outcome in _Outcome), 0)
        self._invalid_reasons: dict[str, int] = {}
        self._dimensions: dict[str, int] = {}
        """Each embedding name's vector length, fixed by its first valid event (sender thread only)."""
        self._sent_at_last_flush = 0
        self._log_lock = threading.Lock()
        self._logged: set[str] = set()

        self._sender = threading.Thread(
            target=self._send_loop, name=f"driftline-sender-{model}", daemon=True
        )
        self._sender.start()
        self._probe: ProcessProbe | None = None
        self._ticker: Ticker | None = None
        if heartbeat_interval is not None:
            self._start_heartbeat(heartbeat_interval)

    # --- the serving path -------------------------------------------------

    def log_prediction(
        self,
        features: Mapping[str, FeatureValue],
        prediction: Scalar,
        *,
        probabilities: Mapping[str, float] | None = None,
        latency_ms: float | None = None,
        segments: Mapping[str, str] | None = None,
        error: str | None = None,
        event_id: str | None = None,
        timestamp: float | None = None,
        embeddings: Mapping[str, Any] | None = None,
    ) -> str:
        """Queue a prediction event and return its id (a new uuid4 hex unless given).

        ``timestamp`` is Unix seconds, default now. The mappings are copied, so
        the caller may reuse them. ``embeddings`` maps a name to a vector: a
        list, a tuple, or anything with ``tolist()`` (a 1-d NumPy array), copied
        now as a list of floats; each name's vectors must keep one length.
        Never blocks on I/O and never raises: an event that cannot be queued or
        is invalid is counted in :attr:`stats`.
        """
        event_id = new_event_id() if event_id is None else event_id
        event = Prediction(
            event_id=event_id,
            model=self.model,
            model_version=self.model_version,
            data_version=self.data_version,
            features=_copy(features),
            prediction=prediction,
            timestamp=time.time() if timestamp is None else timestamp,
            probabilities=_copy(probabilities),
            latency_ms=latency_ms,
            segments=_copy(segments),
            error=error,
            embeddings=_vectors(embeddings),
        )
        self._offer(event)
        return event_id

    def log_label(
        self,
        event_id: str,
        label: Scalar,
        *,
        timestamp: float | None = None,
        model_version: str | None = None,
    ) -> None:
        """Queue the ground truth for the prediction logged with ``event_id``.

        ``model_version`` may stay ``None``: the collector takes it from the
        joined prediction. Never blocks on I/O and never raises.
        """
        event = Label(
            event_id=event_id,
            model=self.model,
            label=label,
            timestamp=time.time() if timestamp is None else timestamp,
            model_version=model_version,
        )
        self._offer(event)

    def log_predictions(self, records: Iterable[Mapping[str, Any]]) -> list[str]:
        """Log a history of predictions (a backfill); return their ids in order.

        Each record holds :meth:`log_prediction`'s arguments by name
        (``features`` and ``prediction`` required, ``timestamp`` usually the
        historical one); an optional ``label`` logs the ground truth right after
        the prediction, at ``label_timestamp`` (default: the prediction's
        ``timestamp``). Use a client made with ``when_full="block"`` so that no
        event is dropped. A record that is not such a mapping raises
        ``ValueError`` naming its position; the records before it are queued.
        """
        ids = []
        for position, record in enumerate(records):
            try:
                fields = dict(record)
                label = fields.pop("label", _NO_LABEL)
                label_timestamp = fields.pop("label_timestamp", fields.get("timestamp"))
                event_id = self.log_prediction(fields.pop("features"), fields.pop("prediction"), **fields)
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(
                    f"record {position}: {exc!s}; a record holds features, prediction and "
                    "optionally log_prediction's other arguments, label and label_timestamp"
                ) from exc
            if label is not _NO_LABEL:
                self.log_label(event_id, label, timestamp=label_timestamp)
            ids.append(event_id)
        return ids

    # --- delivery control ---------------------------------------------------

    @property
    def stats(self) -> ClientStats:
        """A consistent snapshot of the counters (see :class:`ClientStats`)."""
        with self._lock, self._progress:
            offered, outcomes = dict(self._offered), dict(self._outcomes)
            processed, invalid_reasons = self._processed, dict(self._invalid_reasons)
        return ClientStats(
            enqueued=offered["enqueued"],
            sent=outcomes["sent"],
            dropped_queue_full=offered["dropped_queue_full"],
            dropped_closed=offered["dropped_closed"],
            failed=outcomes["failed"],
            invalid=outcomes["invalid"],
            pending=offered["enqueued"] - processed,
            invalid_reasons=invalid_reasons,
        )

    def flush(self, timeout: float = 10.0) -> int:
        """Wait until the events queued before this call are sent, then flush the transport.

        Returns how many of them are still undelivered when ``timeout`` seconds
        have passed: those still queued, or what the transport's own ``flush``
        reports. Events counted as ``failed`` or ``invalid`` are not included.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            target = self._offered["enqueued"]
        with self._progress:
            while self._processed < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return target - self._processed
                self._progress.wait(remaining)
            sent = self._outcomes["sent"]
        return self._flush_transport(sent, max(0.0, deadline - time.monotonic()))

    def close(self, timeout: float = 10.0) -> None:
        """Stop the heartbeat, deliver what is queued, stop the sender, close the transport.

        Waits at most about ``timeout`` seconds: delivery gets all but the last
        ``min(1 s, timeout / 4)``, which is kept for stopping. Events still
        queued then are not sent and count as ``failed``, and the transport's
        ``abort()``, when it has one (the Kafka transport does), cuts a blocked
        send short and stops its waiting. Events logged afterwards are dropped and counted in
        ``dropped_closed``. Safe to call twice.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        deadline = time.monotonic() + timeout
        stopping = min(1.0, timeout / 4)
        if self._ticker is not None:
            self._ticker.stop(timeout=max(0.0, deadline - stopping - time.monotonic()))
        undelivered = self.flush(max(0.0, deadline - stopping - time.monotonic()))
        self._abandon.set()
        self._queue.put(_STOP)
        abort = getattr(self.transport, "abort", None)
        if callable(abort):
            abort()
        self._sender.join(max(0.0, deadline - time.monotonic()))
        if self._sender.is_alive():
            logger.warning(
                "driftline client %s: the transport is still busy after %.1f s; "
                "%d events undelivered, transport left open",
                self.model,
                timeout,
                undelivered,
            )
            return
        try:
            self.transport.close()
        except Exception:
            logger.exception("driftline client %s: transport.close() failed", self.model)
        self._log_summary(undelivered)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- internals ------------------------------------------------------------

    def _offer(self, event: Event) -> None:
        """Enqueue, or count why not; in block mode wait for room first (never for a heartbeat)."""
        blocking = self.when_full == "block" and not isinstance(event, Heartbeat)
        first = True
        while not self._try_enqueue(event, blocking, first):
            first = False
            self._wait_for_room()

    def _wait_for_room(self) -> None:
        """Until fewer than ``max_queue`` events are pending, or ``close()`` begins."""
        with self._progress:
            while not self._closed and self._offered["enqueued"] - self._processed >= self.max_queue:
                self._progress.wait(0.1)

    def _try_enqueue(self, event: Event, blocking: bool, first: bool) -> bool:
        """Enqueue or count the drop; ``False`` only when ``blocking`` and the queue is full."""
        with self._lock:
            if first and isinstance(event, Prediction):
                self._requests_total += 1
                self._errors_total += event.error is not None
            if self._closed:
                if isinstance(event, Heartbeat):
                    return True  # a tick that raced with close(): not the caller's event
                kind = "dropped_closed"
            # _processed is read without its lock: it only grows, so a stale value can
            # only make the queue look fuller than it is, never let it overflow.
            elif self._offered["enqueued"] - self._processed >= self.max_queue:
                if blocking:
                    return False
                kind = "dropped_queue_full"
            else:
                self._offered["enqueued"] += 1
                self._queue.put(event)
                return True
            self._offered[kind] += 1
        if self._first(kind):
            logger.warning(
                "driftline client %s: dropping events (%s); further drops are only counted "
                "in client.stats",
                self.model,
                "client closed" if self._closed else f"{self.max_queue} events pending",
            )
        return True

    def _first(self, kind: str) -> bool:
        """True the first time ``kind`` happens."""
        if kind in self._logged:  # the common case, without taking the lock
            return False
        with self._log_lock:
            if kind in self._logged:
                return False
            self._logged.add(kind)
            return True

    def _send_loop(self) -> None:
        """Send what is queued, giving the GIL up whenever a slice of work has run.

        A serving thread back from I/O waits for the GIL while the sender holds
        it; without the yield that is the sender's whole backlog (up to the
        interpreter's 5 ms switch interval). ``time.sleep(0)`` is the yield that
        lets the waiting thread in (a bare ``os.sched_yield`` returns before it
        wakes), but it sleeps for tens of microseconds, so the sender takes it
        once per :data:`GIL_SLICE_SECONDS` of work rather than after every
        event, and only on the serving path while it keeps up: with half of
        ``max_queue`` pending it works through without yielding, since dropping
        events would cost more than a slower request, and a backfill client
        (``when_full="block"``) never yields, since no request waits on it.
        """
        clock = time.perf_counter
        slice_started = clock()
        while True:
            try:
                event = self._queue.get_nowait()
            except queue.Empty:
                event = self._queue.get()  # waits without the GIL: a new slice
                slice_started = clock()
            if event is _STOP:
                return
            self._send_one(event)
            if clock() - slice_started > GIL_SLICE_SECONDS:
                if self._should_give_way():
                    time.sleep(0)
                slice_started = clock()

    def _should_give_way(self) -> bool:
        """A serving client (``when_full="drop"``) with under half of ``max_queue`` pending.

        The count is read without the locks: it is a hint.
        """
        return (
            self.when_full == "drop"
            and 2 * (self._offered["enqueued"] - self._processed) < self.max_queue
        )

    def _send_one(self, event: Event) -> None:
        """Deliver one event and count its outcome."""
        # Once close() has run out of time, what is still queued is not sent.
        if self._abandon.is_set():
            outcome, reason = _Outcome.FAILED, None
        else:
            outcome, reason = self._deliver(event)
        with self._progress:
            self._outcomes[outcome.value] += 1
            if reason is not None:
                self._invalid_reasons[reason] = self._invalid_reasons.get(reason, 0) + 1
            self._processed += 1
            self._progress.notify_all()

    def _deliver(self, event: Event) -> tuple[_Outcome, str | None]:
        """Encode, validate and send one event; never raises. An invalid one comes with its reason.

        Validation is the collector's own limits, checked once as the event is
        converted for writing (:func:`~driftline.wire.encode_checked`), so nothing
        the collector would reject is sent.
        """
        try:
            payload = encode_checked(event)
            if isinstance(event, Prediction):
                check_dimensions(event.embeddings, self._dimensions)
        except Exception as exc:  # SchemaError, or anything odd a caller's object raises
            reason = exc.reason if isinstance(exc, SchemaError) else RejectReason.INVALID_FIELD
            self._log_once(
                "invalid",
                "driftline client %s: dropping an invalid %s event (%s); further invalid "
                "events are only counted in client.stats.invalid",
                self.model,
                event.type,
                exc,
            )
            return _Outcome.INVALID, reason.value
        try:
            self.transport.send(event.model, payload)
        except Exception:
            self._log_once(
                "failed",
                "driftline client %s: transport.send failed; further failures are only "
                "counted in client.stats.failed",
                self.model,
                exc_info=True,
            )
            return _Outcome.FAILED, None
        return _Outcome.SENT, None

    def _flush_transport(self, sent: int, timeout: float) -> int:
        """The transport's undelivered count; if its flush raises, all sent since the last one."""
        try:
            undelivered = self.transport.flush(timeout)
        except Exception:
            self._log_once(
                "flush_failed",
                "driftline client %s: transport.flush failed",
                self.model,
                exc_info=True,
            )
            with self._progress:
                return sent - self._sent_at_last_flush
        with self._progress:
            self._sent_at_last_flush = max(self._sent_at_last_flush, sent)
        return undelivered

    def _log_once(self, kind: str, message: str, *args: object, exc_info: bool = False) -> None:
        if self._first(kind):
            logger.warning(message, *args, exc_info=exc_info)

    def _log_summary(self, undelivered: int) -> None:
        stats = self.stats
        lost = stats.dropped_queue_full + stats.dropped_closed + stats.failed + stats.invalid
        if lost or undelivered:
            logger.warning(
                "driftline client %s closed: %d sent, %d undelivered, %s",
                self.model,
                stats.sent,
                undelivered,
                stats,
            )

    def _start_heartbeat(self, interval: float) -> None:
        self._probe = ProcessProbe()
        if not self._probe.has_psutil:
            logger.warning(
                "driftline client %s: psutil is not installed, so heartbeats carry no "
                "rss_bytes (CPU and counters are still sent); install 'driftline[heartbeat]'",
                self.model,
            )
        self._ticker = Ticker(interval, self._beat, name=f"driftline-heartbeat-{self.model}")
        self._ticker.start()

    def _beat(self) -> None:
        if self._closed or self._probe is None:
            return
        sample = self._probe.sample()
        with self._lock:
            requests_total, errors_total = self._requests_total, self._errors_total
        self._offer(
            Heartbeat(
                model=self.model,
                model_version=self.model_version,
                instance=self.instance,
                timestamp=time.time(),
                cpu_ratio=sample.cpu_ratio,
                rss_bytes=sample.rss_bytes,
                requests_total=requests_total,
                errors_total=errors_total,
                uptime_seconds=sample.uptime_seconds,
            )
        )


def _copy(mapping: Any) -> Any:
    """A shallow copy of a mapping, so the caller may mutate theirs; anything else as is.

    Whatever is not a proper mapping is left for validation to reject on the
    sender thread, so nothing raises on the serving path.
    """
    if not isinstance(mapping, Mapping):
        return mapping
    try:
        return dict(mapping)
    except Exception:
        return mapping


def _vectors(embeddings: Any) -> Any:
    """Each embedding as a list (from ``tolist()`` or the sequence protocol), without importing NumPy.

    Like :func:`_copy`, anything else is left as is for validation to reject.
    """
    if not isinstance(embeddings, Mapping):
        return embeddings
    try:
        return {name: _vector(vector) for name, vector in embeddings.items()}
    except Exception:
        return embeddings


def _vector(vector: Any) -> Any:
    tolist = getattr(vector, "tolist", None)
    if callable(tolist):
        return tolist()
    if isinstance(vector, str | bytes | Mapping):
        return vector
    return list(vector)


def _check_length(name: str, value: object, limit: int) -> None:
    if not isinstance(value, str) or not 1 <= len(value) <= limit:
        raise ValueError(f"{name} must be a string of 1-{limit} chars, got {value!r}")
    if utf8_text(value) != value:
        raise ValueError(f"{name} must be valid Unicode text (no lone surrogates), got {value!r}")


def _default_instance() -> str:
    return f"{socket.gethostname()[:100]}-{os.getpid()}"
