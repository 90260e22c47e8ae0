"""Kafka throughput: the collector against raw consume loops, on both client libraries.

Every loop reads the same topic (fresh consumer groups, from the beginning) in
the same run, for each client library (kafka-python, the default, and
confluent-kafka, ``kafka.client: confluent``, when installed):

* raw bytes: the client's consume loop touching each message's value, nothing
  else: what the client library itself costs;
* SDK decode: the same loop + ``driftline.schema.decode`` (the reference
  decoder) per message;
* baseline: the same loop + ``collector.fast_decode.decode`` (the collector's
  decoder) per message: the floor for the collector on that client;
* collector: ``KafkaSource`` or ``ConfluentSource`` -> ``Pipeline`` (default
  configuration: the walking-skeleton detectors, windows of 1,000, automatic
  reference of 5,000) -> commit after every batch, through ``collector.runner.run``,
  from a fresh pipeline: with 5,000 events per model at the quick size, that is
  each model's reference and its fit;
* collector, steady state: the same after the pipeline took, in memory and
  untimed, every model's reference and first two windows (other event ids).

It prints events/s and CPU microseconds per event (the process's CPU time, every
thread, librdkafka's included) for each, the ratio collector / baseline per
client, and confluent / kafka-python per loop. The events are seeded
predictions (12 features, probabilities, segments) for 4 models, keyed by model
on a 4-partition topic; producing them is not timed.

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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import harness  # noqa: E402
from driftline.schema import Prediction, decode, encode  # noqa: E402
from kafka import KafkaConsumer, KafkaProducer  # noqa: E402
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402

from collector import fast_decode  # noqa: E402
from collector.config import Config, confluent_installed, parse_config  # noqa: E402
from collector.dlq import MemoryDeadLetterSink  # noqa: E402
from collector.kafka_wiring import build_kafka_source  # noqa: E402
from collector.pipeline import Pipeline  # noqa: E402
from collector.runner import run  # noqa: E402
from collector.sources import GroupSource, RawMessage  # noqa: E402
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


def events(count: int, seed: int, prefix: str = "e") -> Iterator[tuple[str, bytes]]:
    rng = random.Random(seed)
    for i in range(count):
        model = MODELS[i % len(MODELS)]
        features: dict[str, float | str] = {f"x{j}": rng.gauss(j, 1.0) for j in range(10)}
        features["region"] = rng.choice(["eu", "us", "apac"])
        features["plan"] = rng.choice(["free", "pro"])
        p = rng.random()
        event = Prediction(
            event_id=f"{prefix}{i}", model=model, model_version="1", features=features,
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


@dataclass(frozen=True)
class Rate:
    """One timed loop: wall-clock events/s and process CPU per event, from the first records on."""

    events_per_second: float
    cpu_us_per_event: float


class _Clock:
    """Started when the first records arrive (the group join is not timed), as in every loop here."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0

    def start_once(self) -> None:
        if not self.wall:
            self.wall, self.cpu = time.perf_counter(), time.process_time()

    def rate(self, count: int) -> Rate:
        wall, cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        return Rate(count / wall, cpu / count * 1e6)


def raw_loop(bootstrap: str, topics: Sequence[str], count: int, decoder: Callable[[bytes], object]) -> Rate:
    """A fresh kafka-python group's poll over ``topics``, each value passed to ``decoder``."""
    consumer = KafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=f"raw-{uuid.uuid4().hex}",
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             max_poll_records=2000)
    read, clock = 0, _Clock()
    while read < count:
        records = consumer.poll(timeout_ms=500, max_records=2000)
        if records:
            clock.start_once()
        for messages in records.values():
            for record in messages:
                decoder(record.value)
                read += 1
    rate = clock.rate(count)
    consumer.close(autocommit=False)
    return rate


def confluent_raw_loop(
    bootstrap: str, topics: Sequence[str], count: int, decoder: Callable[[bytes], object]
) -> Rate:
    """The same loop on confluent-kafka: ``Consumer.consume(2000)``, each value passed to ``decoder``."""
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"raw-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe(list(topics))
    read, clock = 0, _Clock()
    while read < count:
        messages = consumer.consume(num_messages=2000, timeout=0.5)
        if messages:
            clock.start_once()
        for message in messages:
            if message.error() is None:
                value = message.value()
                decoder(value if isinstance(value, bytes) else b"")
                read += 1
    rate = clock.rate(count)
    consumer.close()
    return rate


def touch(value: bytes) -> int:
    """The raw-bytes loop's work per message: read the value's length."""
    return len(value)


class _Timed:
    """A source whose clock starts when its first records arrive, as the raw loops' do."""

    def __init__(self, source: GroupSource) -> None:
        self.source = source
        self.clock = _Clock()

    def next_batch(self, max_items: int, timeout: float) -> list[RawMessage]:
        batch = self.source.next_batch(max_items, timeout)
        if batch:
            self.clock.start_once()
        return batch

    def commit(self) -> None:
        self.source.commit()

    def snapshot(self) -> dict[str, dict[int, int]]:
        return self.source.snapshot()

    @property
    def exhausted(self) -> bool:
        return False

    def close(self) -> None:
        self.source.close()


def warm_up(count: int, seed: int) -> list[RawMessage]:
    """Messages that complete every model's automatic reference and its first windows (not timed)."""
    now, payloads = time.time(), [payload for _, payload in events(count, seed, "w")]
    return [RawMessage(payload, "warm-up", 0, i, now) for i, payload in enumerate(payloads)]


def collector_loop(
    bootstrap: str, topic: str, count: int, client: str, warm: Sequence[RawMessage] = ()
) -> Rate:
    """Events/s of the Kafka source of ``client`` -> Pipeline -> commit through the service's run loop.

    With ``warm``, the pipeline takes those messages first, in memory and untimed:
    the steady state, once references are fitted and the first thresholds calibrated.
    """
    store = MetricStore()
    pipeline = Pipeline(Config(), store, MemoryDeadLetterSink(), event_time=False)
    for start in range(0, len(warm), 2000):
        pipeline.process(warm[start : start + 2000])
    total = count + len(warm)
    kafka = {"client": client, "bootstrap_servers": bootstrap, "group_id": f"collector-{uuid.uuid4().hex}",
             "predictions_topic": topic, "labels_topic": topic}
    source = _Timed(build_kafka_source(parse_config({"kafka": kafka}), store))
    stop = threading.Event()

    def on_batch() -> None:
        if pipeline.counts.total >= total:
            stop.set()

    run(source, pipeline, stop, batch_size=2000, on_batch=on_batch)
    rate = source.clock.rate(count)
    source.close()
    processed = pipeline.counts.total
    if processed != total or pipeline.counts.rejected:
        raise SystemExit(f"the collector on {client} processed {processed} events, expected {total}")
    return rate


BASELINE = "poll + collector decode"
STEADY = "collector, steady state"
LOOPS = ("raw bytes", "poll + SDK decode", BASELINE, "collector", STEADY)
WARM_UP = len(MODELS) * (5000 + 2 * 1000)
"""Every model's automatic reference (5,000) and its first two windows (1,000 each)."""


def one_round(bootstrap: str, topic: str, count: int, client: str) -> dict[str, Rate]:
    """The five loops of one client library over the topic."""
    raw = confluent_raw_loop if client == "confluent" else raw_loop
    return {
        "raw bytes": raw(bootstrap, [topic], count, touch),
        "poll + SDK decode": raw(bootstrap, [topic], count, decode),
        BASELINE: raw(bootstrap, [topic], count, fast_decode.decode),
        "collector": collector_loop(bootstrap, topic, count, client),
        STEADY: collector_loop(bootstrap, topic, count, client, warm_up(WARM_UP, seed=1)),
    }


def _best(rounds: list[dict[str, Rate]], loop: str) -> Rate:
    return max((r[loop] for r in rounds), key=lambda rate: rate.events_per_second)


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
        clients = ["kafka-python", *(["confluent"] if confluent_installed() else [])]
        if len(clients) == 1:
            print("confluent-kafka is not installed: kafka-python only (pip install '.[confluent]')")
        rounds: dict[str, list[dict[str, Rate]]] = {client: [] for client in clients}
        for round_ in range(args.rounds):
            for client in clients:
                rates = one_round(bootstrap, topic, args.events, client)
                rounds[client].append(rates)
                print(f"round {round_ + 1}, {client}: " + ", ".join(
                    f"{loop} {r.events_per_second:,.0f} events/s ({r.cpu_us_per_event:.1f} CPU us/event)"
                    for loop, r in rates.items()))
        for client in clients:
            run_record.figure(f"rounds {client}", [
                {loop: [rate.events_per_second, rate.cpu_us_per_event] for loop, rate in r.items()}
                for r in rounds[client]])
            best = {loop: _best(rounds[client], loop) for loop in LOOPS}
            run_record.compare(f"{client} collector: source + pipeline + commit (best round)",
                               best["collector"].events_per_second, best[BASELINE].events_per_second,
                               f"{client} {BASELINE} (best round)", "events/s")
            run_record.compare(f"{client} collector, steady state (best round)",
                               best[STEADY].events_per_second, best[BASELINE].events_per_second,
                               f"{client} {BASELINE} (best round)", "events/s")
            run_record.compare(f"{client} collector CPU per event (best round)",
                               best["collector"].cpu_us_per_event, best[BASELINE].cpu_us_per_event,
                               f"{client} {BASELINE}, CPU per event", "us")
        if "confluent" in rounds:
            for loop in LOOPS:
                run_record.compare(f"confluent {loop} (best round)",
                                   _best(rounds["confluent"], loop).events_per_second,
                                   _best(rounds["kafka-python"], loop).events_per_second,
                                   f"kafka-python {loop} (best round)", "events/s")
    run_record.write()


@contextmanager
def _given(bootstrap: str) -> Iterator[str]:
    yield bootstrap


if __name__ == "__main__":
    main()
