"""SDK backfill throughput: a history sent through ``Client(when_full="block").log_predictions``.

Events per second into the file and the Kafka transports, each against a
baseline in the same run that writes the same events without the client
(``json.dumps`` per event appended to a file; ``KafkaProducer.send`` per event
then ``flush``). The client does more per event (builds the event, encodes and
validates it with the collector's schema on its sender thread), and the
caller waits for room whenever ``max_queue`` events are pending, so every
event is delivered: the counts printed prove it.

    .venv/bin/python bench/sdk_backfill.py [--full] [--events N] [--seed 0] [--no-kafka]

(quick: 10,000 events; ``--full``: 50,000).

Kafka runs on a throwaway broker from deploy/kafka/kafka.sh unless
``--bootstrap HOST:PORT`` is given.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from driftline import Client, FileTransport
from driftline.kafka_transport import KafkaTransport
from kafka import KafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness
from kafka_throughput import local_broker

T0 = 1_700_000_000.0


def make_records(count: int, seed: int) -> list[dict[str, Any]]:
    """A seeded history: 12 features, probabilities, a segment, one event every 523 s."""
    rng = random.Random(seed)
    records = []
    for i in range(count):
        p = rng.random()
        records.append(
            {
                "features": {
                    **{f"f{j}": rng.gauss(0, 1) for j in range(10)},
                    "region": rng.choice(["north", "south", "east", "west"]),
                    "vip": rng.random() < 0.1,
                },
                "prediction": int(p >= 0.5),
                "probabilities": {"0": 1 - p, "1": p},
                "segments": {"channel": rng.choice(["web", "app"])},
                "timestamp": T0 + 523.0 * i,
            }
        )
    return records


HEADER = {"type": "prediction", "schema_version": 1, "model": "credit-risk", "model_version": "3"}


def as_event(record: dict[str, Any]) -> bytes:
    """What the baseline writes: the event's JSON, built inline (no validation)."""
    event = {**HEADER, "event_id": uuid.uuid4().hex, "data_version": "unknown", **record}
    return json.dumps(event, separators=(",", ":")).encode()


def rate(count: int, run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return count / (time.perf_counter() - started)


def file_baseline(records: list[dict[str, Any]], path: Path) -> float:
    def run() -> None:
        with path.open("ab") as out:
            for record in records:
                out.write(as_event(record) + b"\n")

    return rate(len(records), run)


def client_backfill(records: list[dict[str, Any]], transport: Any) -> tuple[float, Any]:
    client = Client("credit-risk", "3", transport, when_full="block")

    def run() -> None:
        client.log_predictions(records)
        client.close(timeout=600.0)

    return rate(len(records), run), client.stats


def kafka_baseline(records: list[dict[str, Any]], bootstrap: str, topic: str) -> float:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)

    def run() -> None:
        for record in records:
            producer.send(topic, key=b"credit-risk", value=as_event(record))
        producer.flush(600)

    try:
        return rate(len(records), run)
    finally:
        producer.close()


def report(
    run: harness.BenchRun, name: str, baseline: float, client: float, stats: Any, delivered: int
) -> None:
    run.figure(f"{name}_delivered", delivered)
    print(
        f"{name}: client sent {stats.sent}, dropped {stats.dropped_queue_full}, "
        f"invalid {stats.invalid}, failed {stats.failed}; delivered {delivered}"
    )
    run.compare(f"{name}: client (block) backfill", client, baseline, "writes without the client", "events/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, help="events (quick 10,000, full 50,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bootstrap", help="an existing broker (default: start one)")
    parser.add_argument("--no-kafka", action="store_true", help="measure the file transport only")
    args, chosen = harness.parse(parser, quick={"events": 10_000}, full={"events": 50_000})
    run = harness.BenchRun("sdk_backfill", args, chosen)
    records = make_records(args.events, args.seed)
    with tempfile.TemporaryDirectory() as folder:
        base = file_baseline(records, Path(folder) / "baseline.jsonl")
        client, stats = client_backfill(records, FileTransport(Path(folder) / "client.jsonl"))
        lines = sum(1 for _ in (Path(folder) / "client.jsonl").open("rb"))
    report(run, "file", base, client, stats, lines)
    if not args.no_kafka and args.bootstrap:
        run_kafka(run, records, args.bootstrap)
    elif not args.no_kafka:
        with local_broker() as bootstrap:
            run_kafka(run, records, bootstrap)
    run.write()


def run_kafka(run: harness.BenchRun, records: list[dict[str, Any]], bootstrap: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    base = kafka_baseline(records, bootstrap, f"bench.baseline.{suffix}")
    transport = KafkaTransport(bootstrap, f"bench.predictions.{suffix}", f"bench.labels.{suffix}")
    client, stats = client_backfill(records, transport)
    report(run, "kafka", base, client, stats, stats.sent - transport.failed_total)


if __name__ == "__main__":
    main()
