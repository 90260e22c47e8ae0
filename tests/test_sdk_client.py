"""driftline.Client: delivery, never blocking or raising on the serving path, stats, heartbeat."""

from __future__ import annotations

import doctest
import json
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import driftline
import driftline.client
import driftline.heartbeat
import driftline.schema
import driftline.transports
import driftline.wire
import numpy as np
import pytest
from driftline import (
    Client,
    FileTransport,
    Heartbeat,
    Label,
    MemoryTransport,
    Prediction,
    RejectReason,
    decode,
)
from driftline.heartbeat import ProcessProbe, Ticker

CLIENT_LOGGER = "driftline.client"


class BlockingTransport:
    """A transport whose send waits until ``release`` is set (a broker that hangs)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.received: list[bytes] = []
        self.closed = False

    def send(self, key: str, payload: bytes) -> None:
        self.started.set()
        self.release.wait(10.0)
        self.received.append(payload)

    def flush(self, timeout: float) -> int:
        return 0

    def close(self) -> None:
        self.closed = True


class RaisingTransport:
    """A transport whose send raises for the first ``failures`` messages, then works."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        self.received: list[bytes] = []

    def send(self, key: str, payload: bytes) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"broker unreachable (call {self.calls})")
        self.received.append(payload)

    def flush(self, timeout: float) -> int:
        return 0

    def close(self) -> None:
        return None


class BufferingTransport(MemoryTransport):
    """A memory transport whose flush reports a fixed number undelivered, or raises."""

    def __init__(self, undelivered: int = 0, flush_error: bool = False) -> None:
        super().__init__()
        self.undelivered = undelivered
        self.flush_error = flush_error

    def flush(self, timeout: float) -> int:
        if self.flush_error:
            raise TimeoutError("flush timed out")
        return self.undelivered


@pytest.fixture
def make_client() -> Iterator[Callable[..., Client]]:
    """Build clients that are closed (and their blocking transports released) after the test."""
    clients: list[Client] = []

    def make(transport: Any, **kwargs: Any) -> Client:
        client = Client(kwargs.pop("model", "credit-risk"), kwargs.pop("model_version", "3"),
                        transport, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        if isinstance(client.transport, BlockingTransport):
            client.transport.release.set()
        client.close(timeout=5.0)


def drain_events(transport: MemoryTransport) -> list[Any]:
    return [decode(raw) for raw in transport.drain(1_000_000)]


def count_messages(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(text in record.getMessage() for record in caplog.records)


# --- delivery ----------------------------------------------------------------------------


def test_prediction_reaches_the_transport_and_decodes(make_client: Callable[..., Client]) -> None:
    transport = MemoryTransport()
    client = make_client(transport, data_version="2026-05")
    before = time.time()
    event_id = client.log_prediction(
        {"age": 42, "region": "north", "vip": True, "phone": None},
        1,
        probabilities={"0": 0.25, "1": 0.75},
        latency_ms=3.5,
        segments={"region": "north"},
    )
    assert client.flush(timeout=5.0) == 0
    [event] = drain_events(transport)
    assert isinstance(event, Prediction)
    assert event.event_id == event_id
    assert len(event_id) == 32 and int(event_id, 16) >= 0  # uuid4 hex
    assert (event.model, event.model_version, event.data_version) == ("credit-risk", "3", "2026-05")
    assert event.features == {"age": 42, "region": "north", "vip": True, "phone": None}
    assert (event.prediction, event.probabilities) == (1, {"0": 0.25, "1": 0.75})
    assert (event.latency_ms, event.segments, event.error) == (3.5, {"region": "north"}, None)
    assert event.timestamp is not None and before <= event.timestamp <= time.time()


def test_given_event_id_and_timestamp_are_kept(make_client: Callable[..., Client]) -> None:
    transport = MemoryTransport()
    client = make_client(transport)
    returned = client.log_prediction({"x": 1.0}, 0.5, event_id="req-17", timestamp=1767225600.0,
                                     error="timeout")
    client.flush(timeout=5.0)
    [event] = drain_events(transport)
    assert returned == event.event_id == "req-17"
    assert (event.timestamp, event.error) == (1767225600.0, "timeout")


def test_label_reaches_the_transport(make_client: Callable[..., Client]) -> None:
    transport = MemoryTransport()
    client = make_client(transport)
    client.log_label("req-17", "approve")
    client.log_label("req-18", 0, timestamp=1767229200.0, model_version="2")
    client.flush(timeout=5.0)
    first, second = drain_events(transport)
    assert isinstance(first, Label) and isinstance(second, Label)
    assert (first.event_id, first.label, first.model, first.model_version) == (
        "req-17", "approve", "credit-risk", None,
    )
    assert first.timestamp is not None and abs(first.timestamp - time.time()) < 60
    assert (second.event_id, second.label, second.timestamp, second.model_version) == (
        "req-18", 0, 1767229200.0, "2",
    )


def test_event_ids_are_unique(make_client: Callable[..., Client]) -> None:
    client = make_client(MemoryTransport())
    ids = {client.log_prediction({"x": i}, i) for i in range(2_000)}
    assert len(ids) == 2_000


def test_the_caller_may_reuse_its_dicts(make_client: Callable[..., Client]) -> None:
    transport = BlockingTransport()
    client = make_client(transport)
    features = {"x": 1}
    client.log_prediction(features, 0)
    features["x"] = 2
    features["y"] = 3
    transport.release.set()
    client.flush(timeout=5.0)
    assert decode(transport.received[0]).features == {"x": 1}  # type: ignore[union-attr]


def test_numpy_scalars_are_sent_as_plain_values(make_client: Callable[..., Client]) -> None:
    transport = MemoryTransport()
    client = make_client(transport)
    features: dict[str, Any] = {"x": np.float32(0.5), "n": np.int64(7)}
    prediction: Any = np.int64(1)
    client.log_prediction(features, prediction, probabilities={"1": np.float64(0.9)})
    client.flush(timeout=5.0)
    [event] = drain_events(transport)
    assert (event.features, event.prediction, event.probabilities) == (
        {"x": 0.5, "n": 7}, 1, {"1": 0.9},
    )
    assert client.stats.sent == 1


def test_many_serving_threads_deliver_every_event_once(make_client: Callable[..., Client]) -> None:
    transport = MemoryTransport()
    client = make_client(transport)
    ids: list[list[str]] = [[] for _ in range(8)]

    def serve(slot: int) -> None:
        for i in range(500):
            ids[slot].append(client.log_prediction({"thread": slot, "i": i}, i % 2))

    threads = [threading.Thread(target=serve, args=(slot,)) for slot in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert client.flush(timeout=10.0) == 0
    received = [event.event_id for event in drain_events(transport)]
    assert sorted(received) == sorted(i for slot in ids for i in slot)
    assert len(set(received)) == 4_000
    stats = client.stats
    assert (stats.enqueued, stats.sent, stats.dropped_queue_full) == (4000, 4000, 0)
    assert stats.pending == 0


# --- never blocking, never raising --------------------------------------------------------


def test_a_full_queue_drops_and_counts_without_blocking(
    make_client: Callable[..., Client], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=CLIENT_LOGGER)
    transport = BlockingTransport()
    client = make_client(transport, max_queue=10)
    client.log_prediction({"x": 0}, 0)
    assert transport.started.wait(5.0), "the sender never picked up the first event"

    started = time.perf_counter()
    for i in range(1_000):
        client.log_prediction({"x": i}, 0)
    elapsed = time.perf_counter() - started

    # A blocking call would wait for the transport (10 s); 1,000 calls take a few ms.
    assert elapsed < 0.1, f"1000 calls took {elapsed * 1000:.1f} ms"
    stats = client.stats
    # Of the 1 + 1,000 events, 10 are accepted (one in flight, nine queued) and 991 dropped.
    assert (stats.enqueued, stats.dropped_queue_full, stats.pending) == (10, 991, 10)
    assert count_messages(caplog, "dropping events") == 1

    transport.release.set()
    assert client.flush(timeout=5.0) == 0
    assert len(transport.received) == 10
    assert (client.stats.sent, client.stats.pending) == (10, 0)


def test_a_full_queue_counts_exactly_under_many_threads(make_client: Callable[..., Client]) -> None:
    transport = BlockingTransport()
    client = make_client(transport, max_queue=25)

    def serve() -> None:
        for _ in range(250):
            client.log_label("e", 1)

    threads = [threading.Thread(target=serve) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = client.stats
    assert (stats.enqueued, stats.dropped_queue_full) == (25, 975)


def test_a_raising_transport_is_counted_and_logged_once(
    make_client: Callable[..., Client], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=CLIENT_LOGGER)
    transport = RaisingTransport(failures=30)
    client = make_client(transport)
    for i in range(50):
        client.log_prediction({"x": i}, 0)  # never raises
    assert client.flush(timeout=5.0) == 0
    stats = client.stats
    assert (stats.failed, stats.sent, stats.enqueued) == (30, 20, 50)
    assert len(transport.received) == 20  # the sender survived the failures
    assert count_messages(caplog, "transport.send failed") == 1
    [record] = [r for r in caplog.records if "transport.send failed" in r.getMessage()]
    assert record.exc_info is not None and record.exc_info[0] is ConnectionError


@pytest.mark.parametrize(
    ("features", "kwargs"),
    [
        ({"x": math.nan}, {}),
        ({"x": math.inf}, {}),
        ({"x": [1, 2]}, {}),
        ([1, 2], {}),
        ({"x": 1}, {"probabilities": {"1": 1.5}}),
        ({"x": 1}, {"latency_ms": -1.0}),
        ({"x": 1}, {"event_id": ""}),
        ({"x": 1}, {"timestamp": 1767225600000.0}),
        ({"x": object()}, {}),
    ],
    ids=["nan", "inf", "list-value", "not-a-mapping", "probability", "latency", "empty-id",
         "milliseconds", "object"],
)
def test_an_invalid_event_is_counted_not_raised(
    make_client: Callable[..., Client],
    caplog: pytest.LogCaptureFixture,
    features: Any,
    kwargs: dict[str, Any],
) -> None:
    caplog.set_level(logging.WARNING, logger=CLIENT_LOGGER)
    transport = MemoryTransport()
    client = make_client(transport)
    for _ in range(3):
        client.log_prediction(features, 1, **kwargs)
    good = client.log_prediction({"x": 1.0}, 1)
    assert client.flush(timeout=5.0) == 0
    assert [event.event_id for event in drain_events(transport)] == [good]
    stats = client.stats
    assert (stats.invalid, stats.sent, stats.enqueued) == (3, 1, 4)
    assert count_messages(caplog, "dropping an invalid prediction event") == 1


def test_the_invalid_event_log_names_reason_and_field(
    make_client: Callable[..., Client], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=CLIENT_LOGGER)
    client = make_client(MemoryTransport())
    client.log_prediction({"income": math.nan}, 1)
    client.flush(timeout=5.0)
    assert count_messages(caplog, f"{RejectReason.NON_FINITE.value}: features.income") == 1


POISON_CASES = [
    ({"x": 10**400}, {}, "non_finite"),
    ({"x": -(10**400)}, {}, "non_finite"),
    ({"x": 10**5000}, {}, "invalid_field"),
    ({"x": 1}, {"latency_ms": 10**400}, "non_finite"),
    ({"x": 1}, {"probabilities": {"1": 10**400}}, "non_finite"),
    ({"x": 1}, {"timestamp": 10**400}, "non_finite"),
    ({"\ud800": 1}, {}, "invalid_field"),
    ({"x": "a\udfff"}, {}, "invalid_field"),
    ({"x": 1}, {"segments": {"region": "\ud800"}}, "invalid_field"),
    ({"x": 1}, {"error": "\ud800"}, "invalid_field"),
    ({"x": 1}, {"event_id": "\ud800"}, "invalid_field"),
]


@pytest.mark.parametrize(
    ("features", "kwargs", "reason"),
    POISON_CASES,
    ids=["feature-over-float64", "feature-under-float64", "feature-4301-digits", "latency",
         "probability", "timestamp", "feature-name-surrogate", "feature-value-surrogate",
         "segment-surrogate", "error-surrogate", "event-id-surrogate"],
)
def test_the_sdk_refuses_what_the_collector_would_reject_counted_by_reason(
    make_client: Callable[..., Client], features: Any, kwargs: dict[str, Any], reason: str
) -> None:
    transport = MemoryTransport()
    client = make_client(transport)
    client.log_prediction(features, 1, **kwargs)
    client.log_prediction(features, 1, **kwargs)
    good = client.log_prediction({"x": 1.0}, 1)
    assert client.flush(timeout=5.0) == 0
    assert [event.event_id for event in drain_events(transport)] == [good]
    stats = client.stats
    assert (stats.invalid, stats.sent, dict(stats.invalid_reasons)) == (2, 1, {reason: 2})


def test_a_prediction_too_big_to_encode_is_refused_not_raised(
    make_client: Callable[..., Client],
) -> None:
    """A label over 4,300 digits makes json.dumps itself raise: still counted, never sent."""
    transport = MemoryTransport()
    client = make_client(transport)
    client.log_label("e1", 10**5000)
    assert client.flush(timeout=5.0) == 0
    assert transport.drain(10) == []
    assert dict(client.stats.invalid_reasons) == {"invalid_field": 1}


# --- flush and close -------------------------------------------------------------------------


def test_flush_returns_the_undelivered_count_when_the_transport_is_stuck(
    make_client: Callable[..., Client],
) -> None:
    transport = BlockingTransport()
    client = make_client(transport)
    for i in range(5):
        client.log_prediction({"x": i}, 0)
    started = time.monotonic()
    assert client.flush(timeout=0.1) == 5
    assert 0.09 <= time.monotonic() - started < 2.0
    transport.release.set()
    assert client.flush(timeout=5.0) == 0
    assert len(transport.received) == 5


def test_flush_reports_what_the_transport_has_not_delivered(
    make_client: Callable[..., Client],
) -> None:
    client = make_client(BufferingTransport(undelivered=3))
    client.log_prediction({"x": 1}, 0)
    assert client.flush(timeout=5.0) == 3


def test_a_raising_transport_flush_counts_everything_sent_since_the_last_flush(
    make_client: Callable[..., Client], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=CLIENT_LOGGER)
    transport = BufferingTransport()
    client = make_client(transport)
    client.log_prediction({"x": 1}, 0)
    assert client.flush(timeout=5.0) == 0
    transport.flush_error = True
    for i in range(4):
        client.log_prediction({"x": i}, 0)
    assert client.flush(timeout=5.0) == 4
    assert client.flush(timeout=5.0) == 4
    assert count_messages(caplog, "transport.flush failed") == 1


def test_close_delivers_closes_the_transport_and_is_safe_twice(
    make_client: Callable[..., Client],
) -> None:
    transport = BlockingTransport()
    transport.release.set()
    client = make_client(transport)
    for i in range(20):
        client.log_prediction({"x": i}, 0)
    client.close(timeout=5.0)
    client.close(timeout=5.0)
    assert transport.closed
    assert len(transport.received) == 20
    assert client.log_prediction({"x": 1}, 0)  # after close: still returns an id, never raises
    client.log_label("e", 1)
    stats = client.stats
    assert (stats.sent, stats.dropped_closed, stats.pending) == (20, 2, 0)


def test_close_gives_up_on_a_stuck_transport_after_the_timeout(
    make_client: Callable[..., Client], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=CLIENT_LOGGER)
    transport = BlockingTransport()
    client = make_client(transport)
    client.log_prediction({"x": 1}, 0)
    started = time.monotonic()
    client.close(timeout=0.2)
    assert time.monotonic() - started < 2.0
    assert not transport.closed  # the sender is still inside send()
    assert count_messages(caplog, "still busy") == 1


def test_the_context_manager_flushes_and_closes() -> None:
    transport = BufferingTransport()
    closed: list[bool] = []
    transport.close = lambda: closed.append(True)  # type: ignore[method-assign]
    with Client("credit-risk", "3", transport) as client:
        ids = [client.log_prediction({"x": i}, i % 2) for i in range(100)]
    assert [event.event_id for event in drain_events(transport)] == ids
    assert closed == [True]
    assert client.stats.sent == 100


def test_file_transport_writes_json_lines_that_decode(tmp_path: Path) -> None:
    path = tmp_path / "out" / "events.jsonl"
    with Client("credit-risk", "3", FileTransport(path)) as client:
        ids = [client.log_prediction({"x": float(i), "c": "a"}, i % 2) for i in range(3)]
        client.log_label(ids[0], 1)
    lines = path.read_bytes().splitlines()
    events: list[Any] = [decode(line) for line in lines]
    assert [type(event) for event in events] == [Prediction, Prediction, Prediction, Label]
    assert [event.event_id for event in events] == [*ids, ids[0]]
    assert all(json.loads(line)["schema_version"] == 1 for line in lines)


# --- heartbeat ----------------------------------------------------------------------------------


def wait_for_heartbeat(
    transport: MemoryTransport, accept: Callable[[Heartbeat], bool], timeout: float = 5.0
) -> Heartbeat:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in drain_events(transport):
            if isinstance(event, Heartbeat) and accept(event):
                return event
        time.sleep(0.01)
    raise AssertionError("no matching heartbeat arrived")


def test_heartbeat_fields_are_present_and_in_range(make_client: Callable[..., Client]) -> None:
    transport = MemoryTransport()
    client = make_client(transport, heartbeat_interval=0.05)
    client.log_prediction({"x": 1}, 0)
    client.log_prediction({"x": 2}, 1, error="timeout")
    client.log_prediction({"x": 3}, 1)
    beat = wait_for_heartbeat(transport, lambda b: b.requests_total == 3)
    assert (beat.model, beat.model_version) == ("credit-risk", "3")
    assert beat.instance == f"{socket.gethostname()[:100]}-{os.getpid()}"
    assert (beat.requests_total, beat.errors_total) == (3, 1)
    assert beat.cpu_ratio is not None and 0.0 <= beat.cpu_ratio <= 1.0
    assert beat.rss_bytes is not None and beat.rss_bytes > 1_000_000
    assert beat.uptime_seconds is not None and 0.0 < beat.uptime_seconds < 60.0
    assert beat.timestamp is not None and abs(beat.timestamp - time.time()) < 60
    later = wait_for_heartbeat(transport, lambda b: True)
    assert later.uptime_seconds is not None and later.uptime_seconds > beat.uptime_seconds


def test_heartbeat_without_psutil_sends_what_it_can_and_says_so_once(
    make_client: Callable[..., Client],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.WARNING, logger=CLIENT_LOGGER)
    monkeypatch.setattr(driftline.heartbeat, "_psutil_process", lambda: None)
    transport = MemoryTransport()
    client = make_client(transport, heartbeat_interval=0.05, instance="pod-7")
    first = wait_for_heartbeat(transport, lambda b: True)
    wait_for_heartbeat(transport, lambda b: True)
    assert (first.instance, first.rss_bytes) == ("pod-7", None)
    assert first.cpu_ratio is not None and 0.0 <= first.cpu_ratio <= 1.0
    assert count_messages(caplog, "psutil is not installed") == 1
    client.close(timeout=5.0)
    assert count_messages(caplog, "psutil is not installed") == 1


def test_no_heartbeat_unless_asked(make_client: Callable[..., Client]) -> None:
    transport = MemoryTransport()
    client = make_client(transport)
    time.sleep(0.2)
    client.flush(timeout=5.0)
    assert len(transport) == 0
    names = {thread.name for thread in threading.enumerate()}
    assert "driftline-heartbeat-credit-risk" not in names


def test_close_stops_the_heartbeat(make_client: Callable[..., Client]) -> None:
    transport = MemoryTransport()
    client = make_client(transport, heartbeat_interval=0.02)
    wait_for_heartbeat(transport, lambda b: True)
    client.close(timeout=5.0)
    transport.drain(1_000_000)
    time.sleep(0.1)
    assert len(transport) == 0
    assert client.stats.dropped_closed == 0


def test_probe_cpu_ratio_follows_busy_work() -> None:
    probe = ProcessProbe()
    probe.sample()
    time.sleep(0.2)
    idle = probe.sample().cpu_ratio
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:
        sum(range(1000))
    busy = probe.sample().cpu_ratio
    cores = len(os.sched_getaffinity(0))
    assert 0.0 <= idle < 0.5 / cores
    assert 0.1 / cores < busy <= 1.0  # low bar: the VM is shared, the busy loop may wait


def test_ticker_survives_a_failing_action() -> None:
    calls: list[int] = []

    def action() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first tick fails")

    ticker = Ticker(0.01, action, name="test-ticker")
    ticker.start()
    deadline = time.monotonic() + 5.0
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    ticker.stop(timeout=1.0)
    ticker.stop(timeout=1.0)
    assert len(calls) >= 3


# --- construction and docs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "bad"),
    [
        ({"model": ""}, "model"),
        ({"model": "credit risk"}, "model"),
        ({"model": "m" * 65}, "model"),
        ({"model_version": ""}, "model_version"),
        ({"model_version": "v" * 65}, "model_version"),
        ({"data_version": ""}, "data_version"),
        ({"max_queue": 0}, "max_queue"),
        ({"max_queue": 1.5}, "max_queue"),
        ({"heartbeat_interval": 0}, "heartbeat_interval"),
        ({"heartbeat_interval": -1.0}, "heartbeat_interval"),
        ({"heartbeat_interval": math.nan}, "heartbeat_interval"),
        ({"instance": ""}, "instance"),
        ({"instance": "i" * 129}, "instance"),
        ({"model_version": "v\ud800"}, "model_version"),
        ({"data_version": "\udfff"}, "data_version"),
        ({"instance": "host-\ud800"}, "instance"),
    ],
)
def test_bad_constructor_arguments_raise_value_error_naming_them(
    kwargs: dict[str, Any], bad: str
) -> None:
    arguments: dict[str, Any] = {"model": "credit-risk", "model_version": "3"} | kwargs
    with pytest.raises(ValueError, match=bad):
        Client(arguments.pop("model"), arguments.pop("model_version"), MemoryTransport(),
               **arguments)


def test_client_is_exported() -> None:
    assert driftline.Client is Client
    assert "Client" in driftline.__all__ and "ClientStats" in driftline.__all__


@pytest.mark.parametrize(
    "module",
    [driftline.client, driftline.heartbeat, driftline.schema, driftline.transports, driftline.wire],
    ids=lambda module: module.__name__,
)
def test_docstring_examples_run(module: Any) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0
    assert result.failed == 0
