"""Kafka throughput: the collector against a raw kafka-python consume-and-decode loop.

Both read the same topic (fresh consumer groups, from the beginning) in the
same run:

* baseline: ``KafkaConsumer.poll`` + ``driftline.schema.decode`` per message,
  nothing else: the floor for any Python consumer of this wire format;
* collector: ``KafkaSource`` -> ``Pipeline`` (default configuration: the
  walking-skeleton detectors, windows of 1,000, automatic reference of 5,000)
  -> commit after every batch, through ``collector.runner.run``.

It prints events/s for each and the ratio collector / baseline. The events are
seeded predictions (12 features, probabilities, segments) for 4 models, keyed
by model on a 4-partition topic; producing them is not timed.

Run (starts its own broker with deploy/kafka/kafka.sh unless --bootstrap is given):
``.venv/bin/python bench/kafka_throughput.py [--full]`` (quick: 20,000 events, 1 round;
``--full``: 50,000 events, 2 rounds)
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import harness  # noqa: E402
from driftline.schema import Prediction, decode, encode  # noqa: E402
from kafka import KafkaConsumer, KafkaProducer  # noqa: E402
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402

from collector.config import Config  # noqa: E402
from collector.dlq import MemoryDeadLetterSink  # noqa: E402
from collector.kafka_source import KafkaSource  # noqa: E402
from collector.pipeline import Pipeline  # noqa: E402
from collector.runner import run  # noqa: E402
from collector.sources import RawMessage  # noqa: E402
from exporters.store import MetricStore  # noqa: E402

MODELS = ("credit-risk", "churn", "fraud", "pricing")
PARTITIONS = 4


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def local_broker() -> Iterator[str]:
    """A throwaway broker from deploy/kafka/kafka.sh on free ports."""
    state = Path(tempfile.mkdtemp(prefix="driftline-kafka-bench-"))
    port = free_port()
    env = {**os.environ, "KAFKA_PORT": str(port), "KAFKA_CONTROLLER_PORT": str(free_port()),
           "KAFKA_STATE_DIR": str(state)}
    script = str(ROOT / "deploy" / "kafka" / "kafka.sh")
    subprocess.run(["bash", script, "start"], env=env, check=True, stdout=subprocess.DEVNULL)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run(["bash", script, "stop"], env=env, check=False, stdout=subprocess.DEVNULL)
        shutil.rmtree(state, ignore_errors=True)


def events(count: int, seed: int) -> Iterator[tuple[str, bytes]]:
    rng = random.Random(seed)
    for i in range(count):
        model = MODELS[i % len(MODELS)]
        features: dict[str, float | str] = {f"x{j}": rng.gauss(j, 1.0) for j in range(10)}
        features["region"] = rng.choice(["eu", "us", "apac"])
        features["plan"] = rng.choice(["free", "pro"])
        p = rng.random()
        event = Prediction(
            event_id=f"e{i}", model=model, model_version="1", features=features,
            prediction=int(p >= 0.5), probabilities={"0": 1 - p, "1": p},
            timestamp=time.time(), latency_ms=rng.uniform(1, 20),
            segments={"region": str(features["region"])},
        )
        yield model, encode(event)


def fill_topic(bootstrap: str, topic: str, count: int, seed: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=256 * 1024)
    for model, payload in events(count, seed):
        producer.send(topic, value=payload, key=model.encode())
    producer.flush(timeout=120)
    producer.close()


def raw_loop(bootstrap: str, topics: Sequence[str], count: int) -> float:
    """Events/s of a fresh group's poll + decode over ``topics`` (the baseline of the Kafka benches)."""
    consumer = KafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=f"raw-{uuid.uuid4().hex}",
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             max_poll_records=2000)
    read, started = 0, 0.0
    while read < count:
        records = consumer.poll(timeout_ms=500, max_records=2000)
        if records and not started:
            started = time.perf_counter()
        for messages in records.values():
            for record in messages:
                decode(record.value)
                read += 1
    elapsed = time.perf_counter() - started
    consumer.close(autocommit=False)
    return count / elapsed


class _TimedSource(KafkaSource):
    """Notes when the first records arrive, as the baseline does (group join not timed)."""

    started = 0.0

    def next_batch(self, max_items: int, timeout: float) -> list[RawMessage]:
        batch = super().next_batch(max_items, timeout)
        if batch and not self.started:
            self.started = time.perf_counter()
        return batch


def collector_loop(bootstrap: str, topic: str, count: int) -> float:
    """Events/s of KafkaSource -> Pipeline -> commit through the service's run loop."""
    store = MetricStore()
    pipeline = Pipeline(Config(), store, MemoryDeadLetterSink(), event_time=False)
    source = _TimedSource(bootstrap, [topic], f"collector-{uuid.uuid4().hex}", store=store)
    stop = threading.Event()

    def on_batch() -> None:
        if pipeline.counts.total >= count:
            stop.set()

    run(source, pipeline, stop, batch_size=2000, on_batch=on_batch)
    elapsed = time.perf_counter() - source.started
    source.close()
    processed = pipeline.counts.total
    if processed != count:
        raise SystemExit(f"the collector processed {processed} events, expected {count}")
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, help="events on the topic (quick 20,000, full 50,000)")
    parser.add_argument("--rounds", type=int, help="rounds, best kept (quick 1, full 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    args, chosen = harness.parse(
        parser, quick={"events": 20_000, "rounds": 1}, full={"events": 50_000, "rounds": 2}
    )
    run_record = harness.BenchRun("kafka_throughput", args, chosen)
    with local_broker() if args.bootstrap is None else _given(args.bootstrap) as bootstrap:
        topic = f"bench.throughput.{uuid.uuid4().hex[:8]}"
        fill_topic(bootstrap, topic, args.events, args.seed)
        print(f"{args.events} events on {topic} ({PARTITIONS} partitions) at {bootstrap}")
        raw, collector = [], []
        for round_ in range(args.rounds):
            raw.append(raw_loop(bootstrap, [topic], args.events))
            collector.append(collector_loop(bootstrap, topic, args.events))
            print(f"round {round_ + 1}: raw {raw[-1]:,.0f} events/s, "
                  f"collector {collector[-1]:,.0f} events/s, ratio {collector[-1] / raw[-1]:.3f}")
        run_record.figure("rounds", {"raw": raw, "collector": collector})
        run_record.compare("collector: source + pipeline + commit (best round)", max(collector), max(raw),
                           "poll + decode (best round)", "events/s")
    run_record.write()


@contextmanager
def _given(bootstrap: str) -> Iterator[str]:
    yield bootstrap


if __name__ == "__main__":
    main()
