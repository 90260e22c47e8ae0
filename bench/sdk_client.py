"""Serving-path cost of driftline.Client.log_prediction, against logging synchronously.

The baseline is what a service would do without the client: build the event,
serialize it with json.dumps and append it to a file, inline in the request.
The client does the same work (plus schema validation) on its sender thread,
so the serving thread pays only for building the event and queueing it.

    .venv/bin/python bench/sdk_client.py [--full] [--events N] [--seed 0]

(quick: 5,000 calls; ``--full``: 20,000).

Prints microseconds per call (mean, p50, p99, max) for each and the ratios
of the client's mean and p50 to the baseline's, all measured in this run.
"after I/O" times each call together with a small read before it (a 64-byte
``pread``, whose system call gives the GIL up as a request's I/O does): the
sender thread may take the GIL then, and the call includes the wait to get it
back, which the sender bounds by giving the GIL up once per slice of work
while under half of its queue is pending (the queue here is twice the calls:
a burst it absorbs). The plain "delivered" loop is an overload instead (calls
outpace the sender, its queue as large as the calls): past half full the
sender stops yielding to catch up.
"broker down" is a Client on the Kafka transport whose broker is stopped
(a loopback port nothing listens on): the sender keeps retrying the
bootstrap, the queue fills and the serving path only drops (goal: p99 under
1 ms); ``close(timeout=2)`` must still return in about 2 s.
Then the sender thread's own work per event (its loop through a backlog: encode,
validate, hand to a transport that discards, count, give the GIL up once per
slice), in CPU time, against
``json.dumps`` of the same event (the baseline's serialization), for plain
Python features and again for the same features as NumPy scalars
(``np.float32``, ``np.int64``; ``json.dumps`` then needs an ``.item()`` hook). In
these loops the sender thread competes with the caller for the GIL, so the
client's mean includes the sender's share; in a real service the sender
mostly runs while requests wait on I/O.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import harness
from driftline import Client, FileTransport, Prediction


def make_requests(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    regions = ["north", "south", "east", "west"]
    return [
        {
            "age": rng.randint(18, 90),
            "income": rng.lognormvariate(10, 0.5),
            "region": rng.choice(regions),
            "vip": rng.random() < 0.1,
            **{f"f{i}": rng.gauss(0, 1) for i in range(8)},
        }
        for _ in range(count)
    ]


def time_calls(
    requests: list[dict[str, Any]], call: Callable[[dict[str, Any]], None]
) -> list[float]:
    timings = []
    clock = time.perf_counter_ns
    for features in requests:
        started = clock()
        call(features)
        timings.append((clock() - started) / 1000)
    return timings


def no_io() -> None:
    return None


def baseline(
    requests: list[dict[str, Any]], path: Path, io: Callable[[], None] = no_io
) -> list[float]:
    with path.open("ab") as out:

        def call(features: dict[str, Any]) -> None:
            io()
            event = {
                "type": "prediction",
                "schema_version": 1,
                "event_id": uuid.uuid4().hex,
                "model": "credit-risk",
                "model_version": "3",
                "features": features,
                "prediction": 1,
                "timestamp": time.time(),
                "probabilities": {"0": 0.3, "1": 0.7},
                "latency_ms": 2.5,
            }
            out.write(json.dumps(event, separators=(",", ":")).encode() + b"\n")

        return time_calls(requests, call)


def with_client(
    requests: list[dict[str, Any]], path: Path, io: Callable[[], None] = no_io, room: int = 1
) -> tuple[list[float], float, Any]:
    """``room`` times the calls is the queue's size: with 2 the backlog never reaches half of it."""
    client = Client("credit-risk", "3", FileTransport(path), max_queue=room * len(requests) + 1)

    def call(features: dict[str, Any]) -> None:
        io()
        client.log_prediction(features, 1, probabilities={"0": 0.3, "1": 0.7}, latency_ms=2.5)

    timings = time_calls(requests, call)
    started = time.perf_counter()
    client.close(timeout=60.0)
    return timings, time.perf_counter() - started, client.stats


def small_read(folder: Path) -> Callable[[], None]:
    """A request's I/O in miniature: a 64-byte ``pread``, which gives the GIL up for its
    system call, so that the sender thread can take it and the caller must get it back."""
    path = folder / "request-io"
    path.write_bytes(b"x" * 64)
    descriptor = os.open(path, os.O_RDONLY)

    def read() -> None:
        os.pread(descriptor, 64, 0)

    return read


def dropping(requests: list[dict[str, Any]]) -> list[float]:
    """The full-queue path: the transport hangs, so every call after the first few drops."""
    release = threading.Event()

    class Hanging:
        def send(self, key: str, payload: bytes) -> None:
            release.wait(60.0)

        def flush(self, timeout: float) -> int:
            return 0

        def close(self) -> None:
            return None

    client = Client("credit-risk", "3", Hanging(), max_queue=10)

    def call(features: dict[str, Any]) -> None:
        client.log_prediction(features, 1, probabilities={"0": 0.3, "1": 0.7}, latency_ms=2.5)

    timings = time_calls(requests, call)
    release.set()
    client.close(timeout=10.0)
    return timings


def broker_down(requests: list[dict[str, Any]]) -> tuple[list[float], float]:
    """The client on a Kafka transport whose broker is down; returns timings and close() time."""
    from driftline.kafka_transport import KafkaTransport

    with socket.socket() as probe:  # a port nothing listens on: connections are refused
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    client = Client("credit-risk", "3", KafkaTransport(address))

    def call(features: dict[str, Any]) -> None:
        client.log_prediction(features, 1, probabilities={"0": 0.3, "1": 0.7}, latency_ms=2.5)

    timings = time_calls(requests, call)
    started = time.perf_counter()
    client.close(timeout=2.0)
    return timings, time.perf_counter() - started


class _GatedDiscard:
    """A transport that drops every payload once ``gate`` is set, so that a backlog can build."""

    def __init__(self) -> None:
        self.gate = threading.Event()

    def send(self, key: str, payload: bytes) -> None:
        self.gate.wait(60.0)

    def flush(self, timeout: float) -> int:
        return 0

    def close(self) -> None:
        return None


def sender_cost(requests: list[dict[str, Any]]) -> tuple[float, float]:
    """CPU microseconds per event of the sender thread's loop, and of json.dumps of the same event.

    The events are queued behind a held transport, then released: the sender
    thread works through the backlog as it does in a burst (encode, validate,
    count, give the GIL up once per slice) while this thread only waits.
    """
    transport = _GatedDiscard()
    # A queue twice the backlog: the sender stays under half full, so it yields once per slice.
    client = Client("credit-risk", "3", transport, max_queue=2 * len(requests) + 1)
    events = [
        Prediction(
            event_id=uuid.uuid4().hex,
            model="credit-risk",
            model_version="3",
            features=features,
            prediction=1,
            timestamp=time.time(),
            probabilities={"0": 0.3, "1": 0.7},
            latency_ms=2.5,
        )
        for features in requests
    ]
    for event in events:
        client._offer(event)
    started = time.process_time()
    transport.gate.set()
    deadline = time.monotonic() + 120.0
    while client.stats.pending:  # polled, not flush(): a waiter woken per event would cost CPU too
        if time.monotonic() > deadline:
            raise SystemExit("the sender did not work through its backlog")
        time.sleep(0.005)
    sender = time.process_time() - started
    client.close()
    plain = [
        {"type": "prediction", "schema_version": 1, "event_id": e.event_id, "model": e.model,
         "model_version": e.model_version, "features": e.features, "prediction": e.prediction,
         "timestamp": e.timestamp, "probabilities": e.probabilities, "latency_ms": e.latency_ms}
        for e in events
    ]
    started = time.process_time()
    for event in plain:
        json.dumps(event, separators=(",", ":"), default=_item)
    dumps = time.process_time() - started
    return sender / len(events) * 1e6, dumps / len(events) * 1e6


def numpy_requests(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same features as a NumPy row's scalars: numbers as np.float32 (ints as np.int64), as
    ``dict(zip(names, row))`` gives them (imported here: the SDK never imports NumPy)."""
    import numpy as np

    def scalar(value: object) -> object:
        if isinstance(value, bool | str):
            return value
        return np.int64(value) if isinstance(value, int) else np.float32(value)

    return [{name: scalar(value) for name, value in features.items()} for features in requests]


def _item(value: Any) -> Any:
    """json.dumps' hook for a NumPy scalar, as the baseline would write one."""
    return value.item()


def summary(name: str, timings: list[float]) -> dict[str, float]:
    ordered = sorted(timings)
    figures = {
        "mean": statistics.fmean(ordered),
        "p50": ordered[len(ordered) // 2],
        "p99": ordered[int(len(ordered) * 0.99)],
        "max": ordered[-1],
    }
    print(
        f"{name:<34} mean {figures['mean']:7.2f} us   p50 {figures['p50']:7.2f} us"
        f"   p99 {figures['p99']:8.2f} us   max {figures['max']:9.1f} us"
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, help="calls per path (quick 5,000, full 20,000)")
    parser.add_argument("--seed", type=int, default=0)
    args, chosen = harness.parse(parser, quick={"events": 5_000}, full={"events": 20_000})
    run = harness.BenchRun("sdk_client", args, chosen)
    requests = make_requests(args.events, args.seed)
    with tempfile.TemporaryDirectory() as folder:
        base = summary("baseline: inline json + file write", baseline(requests, Path(folder) / "a"))
        timings, drain, stats = with_client(requests, Path(folder) / "b")
        client = summary("client.log_prediction (file)", timings)
        full = summary("client.log_prediction (queue full)", dropping(requests))
        down_timings, down_close = broker_down(requests)
        down = summary("client.log_prediction (broker down)", down_timings)
        lines = sum(1 for _ in (Path(folder) / "b").open("rb"))
        io = small_read(Path(folder))
        io_base = summary("baseline after I/O", baseline(requests, Path(folder) / "c", io))
        burst = with_client(requests, Path(folder) / "d", io, room=2)[0]
        io_client = summary("client.log_prediction after I/O", burst)
    print(f"client: {stats.sent} sent, {lines} lines written, close() drained in {drain:.2f} s")
    if lines != len(requests):
        raise SystemExit(f"the client wrote {lines} events, expected {len(requests)}")
    run.figure("close_drain_seconds", round(drain, 2))
    run.figure("broker_down_close_seconds", round(down_close, 2))
    for statistic in ("p50", "p99", "mean"):
        run.compare(f"log_prediction {statistic}, delivered", client[statistic], base[statistic],
                    "inline json + file write", "us")
    for statistic in ("p50", "p99", "mean"):
        run.compare(f"I/O then log_prediction {statistic}", io_client[statistic], io_base[statistic],
                    "I/O then inline json + file write", "us")
    for statistic in ("p50", "mean"):
        run.compare(f"log_prediction {statistic}, queue full", full[statistic], base[statistic],
                    "inline json + file write", "us")
    run.compare("log_prediction p99, broker down (goal < 1000 us)", down["p99"], base["p99"],
                "inline json + file write", "us")
    sender, dumps = sender_cost(requests)
    run.compare("sender thread's work per event (CPU)", sender, dumps, "json.dumps of the event", "us")
    sender, dumps = sender_cost(numpy_requests(requests))
    run.compare("sender thread's work per event, NumPy scalar features (CPU)", sender, dumps,
                "json.dumps of the event, .item() hook", "us")
    run.write()


if __name__ == "__main__":
    main()
