"""Soak: a million events through Kafka into `driftline collect` with every detector on.

The goal (issue 12, item 8): the collector's resident memory after the first
100,000 events grows by less than 10% by the end.

What it does, in one run:

* starts a throwaway broker with ``deploy/kafka/kafka.sh`` on free loopback
  ports in a temporary folder (stopped and removed at the end), unless
  ``--bootstrap`` names one;
* runs the real collector, ``python -m collector.cli collect --config FILE``,
  as a subprocess, with every detector on: calibrated drift with an
  automatic reference, data quality, model health (latency, errors,
  confidence, heartbeats), fairness over two segments, realized performance,
  CBPE and concept drift (ADWIN); windows of 1,000 events, count-based (a
  ``max_seconds`` far longer than the run);
* produces a seeded stream with kafka-python's producer (keyed by model, as
  the SDK's ``KafkaTransport`` does): predictions of 4 model versions (3
  models, one with a challenger) with 6 numerical and 3 categorical
  features, probabilities, two segments, latency and a few errors; labels
  for 30% of them; heartbeats of 2 serving instances per version; a drift
  in two features, and a changed concept, from the middle of the stream on;
* keeps the backlog under two chunks of 10,000 events (a chunk goes out
  once the collector has counted every event before the last chunk), the
  labels two chunks behind their predictions (the producer waits
  on the collector's ``driftline_events_total``), so a label is produced
  after its prediction was read: a pre-filled topic would let the labels
  topic be read ahead of the predictions and leave them unmatched;
* samples the collector's RSS (psutil on the child pid) and
  ``driftline_events_total`` from its ``/metrics`` every few seconds;
* afterwards reads the same topics with a raw kafka-python consume loop
  (poll + the collector's ``collector.fast_decode.decode`` per message, fresh group): the
  baseline for the throughput ratio.

It prints the RSS at 100,000 events and at the end (a ratio against the
10% goal), both throughputs and their ratio, and writes them with every RSS
sample to ``bench/results/soak.json`` (``bench/harness.py``). ``--profile``
runs the same stream through an in-process ``Pipeline`` under tracemalloc
instead and prints what grew after the mark.

Run: ``.venv/bin/python bench/soak.py [--full] [--events N] [--label-entries N] [--collector-env NAME=VALUE]``
(quick, as in ``make bench``: 200,000 events; ``--full``: 1,000,000). Exit
status 1 when memory grows by 10% or more, or a detector's metric family has
no series at the end.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "sdk"))

import harness  # noqa: E402
import psutil  # noqa: E402
import yaml  # noqa: E402
from driftline.schema import Heartbeat, Label, Prediction, encode  # noqa: E402
from kafka import KafkaProducer  # noqa: E402
from kafka_throughput import raw_loop  # noqa: E402

from collector import fast_decode  # noqa: E402
from collector.config import parse_config  # noqa: E402
from collector.dlq import MemoryDeadLetterSink  # noqa: E402
from collector.kafka_wiring import ensure_topics  # noqa: E402
from collector.pipeline import Pipeline  # noqa: E402
from collector.sources import RawMessage  # noqa: E402
from exporters.store import MetricStore  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.kafka_fixture import local_broker  # noqa: E402

VERSIONS = (("credit-risk", "1"), ("credit-risk", "2"), ("churn", "4"), ("fraud", "7"))
"""Model versions, in the proportion they serve traffic (credit-risk 2 is a challenger)."""
SHARES = (0.4, 0.1, 0.3, 0.2)
NUMERICAL = ("n0", "n1", "n2", "n3", "n4", "n5")
CATEGORIES = {"c0": ("a", "b", "c", "d"), "c1": ("x", "y", "z"), "c2": ("p", "q")}
REGIONS = ("north", "south", "east", "west")
PLANS = ("free", "pro")
PARTITIONS = 4
LABEL_SHARE = 0.3
HEARTBEAT_EVERY = 500
"""One heartbeat per this many predictions (per stream, alternating versions and instances)."""
CHUNK = 10_000
LAG = 2
"""Labels are produced this many chunks after their predictions."""
EXPECTED = (
    "driftline_feature_drift_score", "driftline_dataset_drift_share", "driftline_prediction_drift_score",
    "driftline_feature_missing_ratio", "driftline_feature_out_of_range_ratio",
    "driftline_prediction_latency_seconds", "driftline_prediction_errors_total",
    "driftline_low_confidence_ratio", "driftline_instance_up",
    "driftline_fairness_parity_difference", "driftline_segment_accuracy", "driftline_performance",
    "driftline_concept_drift_detected", "driftline_labels_total",
)
"""Families every detector's output appears in; the run fails when one has no series."""
MARK = 100_000
GOAL = 0.10


@contextmanager
def broker(bootstrap: str | None) -> Iterator[str]:
    """The given broker, or a throwaway one on free ports (tests/kafka_fixture.py's, stopped at the end)."""
    if bootstrap is not None:
        yield bootstrap
        return
    with local_broker("driftline-kafka-soak-") as started:
        yield started.bootstrap


@dataclass(frozen=True)
class Topics:
    predictions: str
    labels: str
    dlq: str


def config_yaml(bootstrap: str, topics: Topics, port: int, label_entries: int | None) -> str:
    """Every detector on; count-based windows (the wall-clock limit is never reached).

    ``label_entries`` sets ``labels.max_entries`` (the label join store's
    predictions per model); ``None`` keeps the collector's default.
    """
    labels = "" if label_entries is None else f"labels: {{max_entries: {label_entries}}}\n"
    model = ("    task: binary_classification\n"
             "    segments: [region, plan]\n"
             "    reference_labels: 500\n"
             "    concept_drift: {detector: adwin}\n")
    models = "".join(f"  {name}:\n{model}" for name in sorted({name for name, _ in VERSIONS}))
    return (
        "kafka:\n"
        f"  bootstrap_servers: '{bootstrap}'\n"
        f"  group_id: soak-{uuid.uuid4().hex[:8]}\n"
        f"  predictions_topic: {topics.predictions}\n"
        f"  labels_topic: {topics.labels}\n"
        f"  dlq_topic: {topics.dlq}\n"
        "  commit_stall_seconds: 600\n"
        "http:\n"
        f"  port: {port}\n"
        "defaults:\n"
        "  window: {events: 1000, max_seconds: 1000000, min_events: 100}\n"
        "  reference: {auto_events: 5000}\n"
        "  drift: {mode: calibrated, alpha: 0.01, persistence: 1, pooled_windows: 4, seed: 0}\n"
        "  retire_after_seconds: 1000000\n"
        "instances: {heartbeat_timeout_seconds: 1000000, forget_after_seconds: 1000000}\n"
        + labels
        + "models:\n"
        + models
    )


class Stream:
    """The seeded events, produced in chunks; the labels of a chunk follow ``LAG`` chunks later."""

    def __init__(self, total: int, seed: int) -> None:
        self.total = total
        self.rng = random.Random(seed)
        self.drift_at = total // 2
        self.produced = 0
        self.counts: dict[str, int] = {"prediction": 0, "label": 0, "heartbeat": 0}
        self._held: list[list[Label]] = []
        self._serial = 0

    @property
    def last_labels_due(self) -> bool:
        """Every prediction is out: the next chunk is the held labels alone."""
        return self.total - self.produced == sum(map(len, self._held))

    def chunk(self, size: int) -> list[Prediction | Label | Heartbeat]:
        """The labels held ``LAG`` chunks ago, then new events: ``size`` in all, counting the newly held.

        Once every prediction is out, the labels still held, all at once.
        """
        events: list[Prediction | Label | Heartbeat] = []
        if self.last_labels_due:
            events.extend(label for labels in self._held for label in labels)
            self._held.clear()
        elif len(self._held) == LAG:
            events.extend(self._held.pop(0))
        held: list[Label] = []
        limit = min(size, self.total - self.produced - sum(map(len, self._held)))
        while len(events) + len(held) < limit:
            events.append(self._next(held))
        if len(events) + len(held) > limit:
            held.pop()  # the last prediction's label would overshoot the total
        self._held.append(held)
        self.produced += len(events)
        for event in events:
            self.counts[event.type] += 1
        return events

    def _next(self, held: list[Label]) -> Prediction | Heartbeat:
        self._serial += 1
        name, version = self.rng.choices(VERSIONS, SHARES)[0]
        if self._serial % HEARTBEAT_EVERY == 0:
            return self._heartbeat(name, version)
        prediction, label = self._prediction(name, version)
        if label is not None:
            held.append(label)
        return prediction

    def _prediction(self, name: str, version: str) -> tuple[Prediction, Label | None]:
        rng = self.rng
        drifted = self.produced >= self.drift_at and name in ("credit-risk", "fraud")
        features: dict[str, float | str] = {
            f: rng.gauss(1.0 if drifted and f in ("n0", "n1") else 0.0, 1.0) for f in NUMERICAL
        }
        for f, values in CATEGORIES.items():
            weights = list(reversed(range(1, len(values) + 1))) if drifted and f == "c0" else None
            features[f] = rng.choices(values, weights)[0]
        score = 1.0 / (1.0 + math.exp(-(features["n0"] + 0.5 * features["n2"])))  # type: ignore[operator]
        event_id = f"{name}-{version}-{self._serial}"
        error = "timeout" if rng.random() < 0.002 else None
        prediction = Prediction(
            event_id=event_id, model=name, model_version=version, features=features,
            prediction=int(score >= 0.5), probabilities={"0": 1.0 - score, "1": score},
            timestamp=time.time(), latency_ms=rng.lognormvariate(1.5, 0.4),
            segments={"region": rng.choice(REGIONS), "plan": rng.choice(PLANS)}, error=error,
        )
        if rng.random() >= LABEL_SHARE:
            return prediction, None
        truth = score if not drifted else 1.0 - score  # the concept changes with the drift
        label = Label(event_id=event_id, model=name, label=int(rng.random() < truth),
                      timestamp=time.time(), model_version=version)
        return prediction, label

    def _heartbeat(self, name: str, version: str) -> Heartbeat:
        instance = f"{name}-{version}-pod-{self._serial // HEARTBEAT_EVERY % 2}"
        return Heartbeat(model=name, model_version=version, instance=instance, timestamp=time.time(),
                         cpu_ratio=self.rng.uniform(0.1, 0.6), rss_bytes=3e8 + self.rng.uniform(0, 1e7),
                         requests_total=float(self._serial), errors_total=float(self._serial // 500),
                         uptime_seconds=float(self._serial) / 100.0)


@dataclass
class Sample:
    seconds: float
    events: int
    rss_bytes: int


@dataclass
class Observer:
    """Scrapes the collector's /metrics and samples its RSS."""

    pid: int
    metrics_url: str
    samples: list[Sample] = field(default_factory=list)
    series: int = 0
    started: float = field(default_factory=time.perf_counter)

    def events_total(self) -> int:
        with urllib.request.urlopen(self.metrics_url, timeout=30) as response:
            text = response.read().decode()
        lines = [line for line in text.splitlines() if line and not line.startswith("#")]
        self.series = len(lines)
        return int(sum(float(line.rsplit(" ", 1)[1]) for line in lines
                       if line.startswith("driftline_events_total{")))

    def sample(self) -> Sample:
        events = self.events_total()
        rss = psutil.Process(self.pid).memory_info().rss
        sample = Sample(round(time.perf_counter() - self.started, 2), events, rss)
        self.samples.append(sample)
        return sample


def produce(bootstrap: str, topics: Topics, stream: Stream, observer: Observer,
            failure: list[BaseException]) -> None:
    """Produce the stream in chunks, each once the collector has counted every event before the last one."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=256 * 1024)
    before_last = 0
    try:
        while stream.produced < stream.total:
            wait_for = stream.produced if stream.last_labels_due else before_last
            while observer.events_total() < wait_for:
                time.sleep(1.0)
            before_last = stream.produced
            for event in stream.chunk(CHUNK):
                topic = topics.labels if event.type == "label" else topics.predictions
                producer.send(topic, value=encode(event), key=event.model.encode())
            producer.flush(timeout=120)
    except BaseException as error:  # reported by the main thread
        failure.append(error)
    finally:
        producer.close()


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the collector exited with {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"the collector was not ready within {timeout:.0f} s")


def run_collector(bootstrap: str, topics: Topics, stream: Stream, folder: Path,
                  args: argparse.Namespace) -> tuple[Observer, float, Coverage]:
    """Soak the collector; returns its observer, its events/s and what its exposition shows at the end."""
    port = free_port()
    config = folder / "soak.yaml"
    config.write_text(config_yaml(bootstrap, topics, port, args.label_entries), encoding="utf-8")
    path = os.pathsep.join([str(ROOT), str(ROOT / "sdk")])
    env = {**os.environ, **dict(args.collector_env), "PYTHONPATH": path}
    log = (folder / "collector.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "collector.cli", "collect", "--config", str(config)],
                               cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base + "/healthz", process, 60)
        observer = Observer(process.pid, base + "/metrics")
        failure: list[BaseException] = []
        producer = threading.Thread(target=produce, args=(bootstrap, topics, stream, observer, failure),
                                    daemon=True)
        producer.start()
        first = 0.0
        while True:
            sample = observer.sample()
            if sample.events and not first:
                first = time.perf_counter()
            if sample.events >= stream.total:
                break
            if failure:
                raise SystemExit(f"producing failed: {failure[0]!r}")
            if process.poll() is not None:
                raise SystemExit(f"the collector exited with {process.returncode}")
            rss = sample.rss_bytes / 2**20
            print(f"  {sample.seconds:8.1f} s  {sample.events:>9,} events  rss {rss:7.1f} MiB", flush=True)
            time.sleep(args.interval)
        elapsed = time.perf_counter() - first
        producer.join(timeout=60)
        return observer, stream.total / elapsed, coverage(observer.metrics_url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@dataclass(frozen=True)
class Coverage:
    """What the final exposition shows of the detectors' work."""

    rejected: int
    labels: dict[str, int]
    performance_sources: list[str]
    missing_families: list[str]


def coverage(url: str) -> Coverage:
    with urllib.request.urlopen(url, timeout=30) as response:
        text = response.read().decode()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    families = {line.split("{", 1)[0].split(" ", 1)[0].removesuffix("_bucket").removesuffix("_count")
                .removesuffix("_sum") for line in lines}
    labels: dict[str, int] = {}
    for line in lines:
        if line.startswith("driftline_labels_total{"):
            outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
            labels[outcome] = labels.get(outcome, 0) + int(float(line.rsplit(" ", 1)[1]))
    sources = sorted({line.split('source="', 1)[1].split('"', 1)[0] for line in lines
                      if line.startswith("driftline_performance{")})
    rejected = int(sum(float(line.rsplit(" ", 1)[1]) for line in lines
                       if line.startswith("driftline_events_rejected_total{")))
    return Coverage(rejected, labels, sources, [name for name in EXPECTED if name not in families])


def rss_at(samples: list[Sample], events: int) -> int:
    """The RSS of the first sample at or after ``events`` events."""
    return next(s.rss_bytes for s in samples if s.events >= events)


def profile(stream: Stream, label_entries: int | None, top: int = 15) -> None:
    """The same stream through an in-process ``Pipeline`` (no Kafka) under tracemalloc.

    Prints what grew between the RSS mark and the end, by source line, and
    the label join stores' sizes: where the collector's memory goes.
    """
    topics = Topics("p", "l", "d")
    config = parse_config(yaml.safe_load(config_yaml("127.0.0.1:9", topics, 0, label_entries)))
    pipeline = Pipeline(config, MetricStore(), MemoryDeadLetterSink(), event_time=False)
    tracemalloc.start()
    marked: tracemalloc.Snapshot | None = None
    while stream.produced < stream.total:
        batch = [RawMessage(encode(event), topics.labels if event.type == "label" else topics.predictions,
                            0, 0, time.time()) for event in stream.chunk(CHUNK)]
        for start in range(0, len(batch), 2000):
            pipeline.process(batch[start:start + 2000])
        if marked is None and stream.produced >= MARK:
            marked = tracemalloc.take_snapshot()
            print(f"snapshot at {stream.produced:,} events: {traced_mib():.1f} MiB traced")
    end = tracemalloc.take_snapshot()
    print(f"at the end ({stream.produced:,} events): {traced_mib():.1f} MiB traced")
    assert marked is not None
    for stat in end.compare_to(marked, "lineno")[:top]:
        print(f"  {stat.size_diff / 2**20:+8.1f} MiB {stat.count_diff:+9,} blocks  {stat.traceback[0]}")
    for model, join in sorted(pipeline.joins.items()):
        print(f"  label join store {model}: {len(join):,} predictions, {len(join._tombstones):,} tombstones")


def traced_mib() -> float:
    return tracemalloc.get_traced_memory()[0] / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, help="events in all (quick 200,000; full 1,000,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--label-entries", type=int, help="labels.max_entries (default: the collector's)")
    parser.add_argument("--profile", action="store_true",
                        help="no Kafka: the stream through an in-process Pipeline under tracemalloc")
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    parser.add_argument("--collector-env", type=env_setting, action="append", default=[],
                        metavar="NAME=VALUE",
                        help="set in the collector's environment, e.g. MALLOC_MMAP_THRESHOLD_=131072 "
                             "as deploy/Dockerfile does (repeatable)")
    args, chosen = harness.parse(parser, quick={"events": 200_000}, full={"events": 1_000_000})
    if args.events <= MARK:
        parser.error(f"--events must exceed {MARK:,} (the RSS mark)")
    stream = Stream(args.events, args.seed)
    if args.profile:
        profile(stream, args.label_entries)
        return 0
    run_record = harness.BenchRun("soak", args, chosen)
    observer, collector_rate, raw_rate, covered = soak(stream, args)
    growth = record(run_record, stream, observer, collector_rate, raw_rate, covered)
    run_record.figure("label_entries", args.label_entries)
    run_record.figure("collector_env", dict(args.collector_env))
    run_record.write()
    return 0 if growth < GOAL and not covered.missing_families else 1


def env_setting(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not name or not equals:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def soak(stream: Stream, args: argparse.Namespace) -> tuple[Observer, float, float, Coverage]:
    """The collector's soak, then the raw loop over the same topics."""
    suffix = uuid.uuid4().hex[:8]
    topics = Topics(f"soak.predictions.{suffix}", f"soak.labels.{suffix}", f"soak.dlq.{suffix}")
    with (broker(args.bootstrap) as bootstrap,
          tempfile.TemporaryDirectory(prefix="driftline-soak-") as folder):
        ensure_topics(bootstrap, [topics.predictions, topics.labels], PARTITIONS)
        print(f"soak: {stream.total:,} events on {topics.predictions} + {topics.labels} at {bootstrap}",
              flush=True)
        try:
            observer, collector_rate, covered = run_collector(bootstrap, topics, stream, Path(folder), args)
        except SystemExit:
            print((Path(folder) / "collector.log").read_text(errors="replace")[-4000:], file=sys.stderr)
            raise
        topic_names = [topics.predictions, topics.labels]
        baseline = raw_loop(bootstrap, topic_names, stream.total, fast_decode.decode).events_per_second
        return observer, collector_rate, baseline, covered


def record(run_record: harness.BenchRun, stream: Stream, observer: Observer, collector_rate: float,
           raw_rate: float, covered: Coverage) -> float:
    """Print and record the figures; returns the RSS growth after the mark."""
    samples = observer.samples
    mark, end = rss_at(samples, MARK) / 2**20, samples[-1].rss_bytes / 2**20
    counts = ", ".join(f"{n:,} {kind}s" for kind, n in stream.counts.items())
    print(f"events: {stream.total:,} ({counts}); rejected {covered.rejected}")
    sources = ", ".join(covered.performance_sources)
    print(f"labels by outcome: {covered.labels}; performance sources: {sources}")
    print(f"detector families without series: {', '.join(covered.missing_families) or 'none'}")
    print(f"/metrics series at the end: {observer.series:,}")
    run_record.compare(f"RSS at the end (max {max(s.rss_bytes for s in samples) / 2**20:.1f} MiB)", end, mark,
                       f"RSS at {MARK:,} events", "MiB")
    growth = end / mark - 1
    print(f"growth {growth:+.1%} against the goal of < {GOAL:.0%}: {'within' if growth < GOAL else 'OVER'}")
    run_record.compare("collector throughput", collector_rate, raw_rate, "raw kafka-python poll+decode",
                       "events/s")
    for name, value in (("counts", stream.counts), ("growth", growth), ("goal", GOAL),
                        ("coverage", asdict(covered)), ("metrics_series_end", observer.series),
                        ("samples", [asdict(sample) for sample in samples])):
        run_record.figure(name, value)
    return growth


if __name__ == "__main__":
    raise SystemExit(main())
