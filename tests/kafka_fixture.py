"""A real Kafka broker for the integration tests.

The session fixture ``kafka_broker`` uses the broker named by
``DRIFTLINE_KAFKA_BOOTSTRAP`` if set, otherwise starts one with
``deploy/kafka/kafka.sh`` on free loopback ports in a temporary folder and
stops it at the end. Without Java or the Kafka jars the tests skip on a
laptop and fail under ``CI=true`` (``tests.conftest.require``).
``local_broker(prefix, sasl_users={...}, tls=make_tls_files(folder))`` starts
one that also listens with SASL_PLAINTEXT (PLAIN and SCRAM) on
``sasl_bootstrap`` for those users and with SSL on ``ssl_bootstrap``.
The fixture ``collector`` runs the service loop on a configuration's Kafka
source (either client library) in a thread.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from collector.config import Config
from collector.kafka_wiring import build_kafka_dlq, build_kafka_source, ensure_topics
from collector.pipeline import Pipeline
from collector.runner import run
from collector.sources import GroupSource
from exporters.store import MetricStore
from tests.conftest import free_port, require
from tests.tls_files import self_signed

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "deploy" / "kafka" / "kafka.sh"
LIB = ROOT / "deploy" / "kafka" / "lib"


@dataclass
class KafkaBroker:
    """A broker the tests may use; ``managed`` brokers can also be stopped and restarted."""

    bootstrap: str
    state_dir: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    sasl_bootstrap: str | None = None
    """The SASL_PLAINTEXT listener, when the broker was started with SASL users."""
    ssl_bootstrap: str | None = None
    """The SSL listener, when the broker was started with TLS files."""

    @property
    def managed(self) -> bool:
        return self.state_dir is not None

    def start(self) -> None:
        self._script("start")

    def stop(self) -> None:
        self._script("stop")

    def _script(self, command: str) -> None:
        if not self.managed:
            raise RuntimeError("an external broker (DRIFTLINE_KAFKA_BOOTSTRAP) is not ours to stop")
        result = subprocess.run(
            ["bash", str(SCRIPT), command],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"kafka.sh {command} failed: {result.stdout}{result.stderr}")


@dataclass(frozen=True)
class TlsFiles:
    """A broker certificate for 127.0.0.1 that is its own certificate authority."""

    ca: Path
    """The certificate (PEM): what a client passes as ``ssl_cafile``."""
    server: Path
    """The broker's unencrypted PKCS#8 key and certificate in one PEM file."""


def make_tls_files(folder: Path, name: str = "test-ca") -> TlsFiles:
    """A fresh self-signed certificate and the broker's PEM keystore made from it."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = self_signed(folder, name)
    server = folder / f"{name}-server.pem"
    server.write_text(key.read_text() + cert.read_text(), encoding="ascii")
    return TlsFiles(ca=cert, server=server)


def require_local_kafka() -> None:
    """Skip (laptop) or fail (CI) when a broker cannot be started here."""
    require(shutil.which("java") is not None, "java is not on PATH (Kafka needs Java 17+)")
    require(
        any(LIB.glob("kafka_2.13-*.jar")),
        f"the Kafka jars are missing in {LIB}: run deploy/kafka/kafka.sh fetch",
    )


def start_local_broker(
    state_dir: Path, sasl_users: dict[str, str] | None = None, tls: TlsFiles | None = None
) -> KafkaBroker:
    """Start a fresh broker on free loopback ports with its state in ``state_dir``.

    ``sasl_users`` (name -> password) adds a SASL_PLAINTEXT listener that knows
    them; ``tls`` adds an SSL listener with that certificate.
    """
    require_local_kafka()
    port, controller_port, sasl_port, ssl_port = _distinct_free_ports(4)
    env = {
        "KAFKA_PORT": str(port),
        "KAFKA_CONTROLLER_PORT": str(controller_port),
        "KAFKA_STATE_DIR": str(state_dir),
    }
    if sasl_users:
        env["KAFKA_SASL_PORT"] = str(sasl_port)
        env["KAFKA_SASL_USERS"] = " ".join(f"{name}:{pw}" for name, pw in sasl_users.items())
    if tls:
        env["KAFKA_SSL_PORT"] = str(ssl_port)
        env["KAFKA_SSL_PEM"] = str(tls.server)
    broker = KafkaBroker(
        bootstrap=f"127.0.0.1:{port}",
        state_dir=state_dir,
        env=env,
        sasl_bootstrap=f"127.0.0.1:{sasl_port}" if sasl_users else None,
        ssl_bootstrap=f"127.0.0.1:{ssl_port}" if tls else None,
    )
    broker.start()
    return broker


def _distinct_free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


@contextmanager
def local_broker(
    prefix: str, sasl_users: dict[str, str] | None = None, tls: TlsFiles | None = None
) -> Iterator[KafkaBroker]:
    """A broker of its own in a fresh temporary folder, stopped and removed afterwards."""
    state_dir = Path(tempfile.mkdtemp(prefix=prefix))
    broker = start_local_broker(state_dir, sasl_users, tls)
    try:
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[KafkaBroker]:
    external = os.environ.get("DRIFTLINE_KAFKA_BOOTSTRAP")
    if external:
        yield KafkaBroker(bootstrap=external)
        return
    with local_broker("driftline-kafka-test-") as broker:
        yield broker


def unique_topic(prefix: str) -> str:
    """A topic name no other test (or earlier run on the same broker) uses."""
    return f"test.{prefix}.{uuid.uuid4().hex[:10]}"


def create_topics(bootstrap: str, names: list[str], partitions: int = 1) -> None:
    """Create topics up front, so partition counts are known and no consumer races auto-creation."""
    ensure_topics(bootstrap, names, partitions)


@dataclass
class RunningCollector:
    store: MetricStore
    pipeline: Pipeline
    source: GroupSource

    def events(self, model: str, model_version: str, kind: str) -> float:
        labels = {"model": model, "model_version": model_version, "type": kind}
        value = self.store.get("driftline_events_total", labels)
        return float(value) if isinstance(value, float) else 0.0

    def events_any_version(self, model: str, kind: str) -> float:
        """Labels count under their prediction's version once joined, ``unknown`` before."""
        for snapshot in self.store.snapshot():
            if snapshot.metric.name == "driftline_events_total":
                return sum(
                    value
                    for (m, _version, k), value in snapshot.samples.items()
                    if m == model and k == kind and isinstance(value, float)
                )
        return 0.0

    def rejected(self, reason: str) -> float:
        value = self.store.get("driftline_events_rejected_total", {"reason": reason})
        return float(value) if isinstance(value, float) else 0.0


@pytest.fixture
def collector() -> Iterator[Callable[[Config], RunningCollector]]:
    """Runs the real runner loop on the configured Kafka source in a thread; stops it at teardown."""
    stops: list[tuple[threading.Event, threading.Thread]] = []

    def start(config: Config) -> RunningCollector:
        store = MetricStore()
        pipeline = Pipeline(config, store, build_kafka_dlq(config), event_time=False)
        source = build_kafka_source(config, store)
        stop = threading.Event()

        def loop() -> None:
            try:
                run(source, pipeline, stop, poll_timeout=0.2)
            finally:
                source.close()
                pipeline.dlq.close()

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        stops.append((stop, thread))
        return RunningCollector(store, pipeline, source)

    yield start
    for stop, thread in stops:
        stop.set()
        thread.join(timeout=30)
