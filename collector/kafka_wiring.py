"""Builds the Kafka pieces from the configuration, so the CLI only calls these.

``collect`` reads ``config.kafka``: one consumer group member over the
predictions and labels topics, and a dead-letter producer on the DLQ topic.
Every Kafka client built from the configuration takes :func:`security_options`
(TLS and SASL), so none of them can connect differently from the others.
``demo --kafka HOST:PORT`` runs the demo through a broker on topics of its own
(a fresh pair per run, so an earlier run's events are never read again).
"""

from __future__ import annotations

import contextlib
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

from driftline.kafka_transport import KafkaTransport
from driftline.transports import Transport
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from collector.config import TLS_FILES, Config, KafkaConfig
from collector.errors import SourceError
from collector.kafka_dlq import KafkaDeadLetterSink
from collector.kafka_source import KafkaSource, OffsetsCallback, PartitionsCallback
from collector.kafka_state_store import KafkaStateStore
from collector.sources import GroupSource, Source
from collector.state_store import LocalStateStore, StateStore
from exporters.store import MetricStore

REACH_TIMEOUT = 4.0
"""Seconds ``driftline collect`` keeps trying to reach a bootstrap server before it gives up."""


def check_reachable(bootstrap_servers: str, timeout: float = REACH_TIMEOUT) -> None:
    """Fail fast, in one clear line, when no bootstrap server accepts a connection.

    kafka-python retries an unreachable bootstrap for about 30 s with a log line
    per attempt; a TCP connection attempt (retried for ``timeout`` seconds, so a
    broker still starting up is waited for) answers the common case, no broker
    running, in seconds.
    """
    addresses = bootstrap_addresses(bootstrap_servers)
    if not addresses:
        raise SourceError("kafka.bootstrap_servers names no server")
    deadline = time.monotonic() + timeout
    while True:
        errors = []
        for host, port in addresses:
            try:
                socket.create_connection((host, port), timeout=1.0).close()
                return
            except OSError as exc:
                reason = exc.strerror or str(exc)
                errors.append(reason if len(addresses) == 1 else f"{host}:{port}: {reason}")
        if time.monotonic() >= deadline:
            raise SourceError(
                f"cannot reach Kafka at {bootstrap_servers} ({'; '.join(errors)}): start a "
                "local broker with `make kafka`, or set kafka.bootstrap_servers"
            )
        time.sleep(0.5)


def bootstrap_addresses(bootstrap_servers: str) -> list[tuple[str, int]]:
    """``(host, port)`` of each comma-separated server; a bare host means port 9092."""
    return [_host_port(server.strip()) for server in bootstrap_servers.split(",") if server.strip()]


def _host_port(server: str) -> tuple[str, int]:
    host, sep, port = server.rpartition(":")
    if not sep or host.endswith(":") or (host.startswith("[") != host.endswith("]")):
        return server.strip("[]"), 9092
    if not port.isdigit():
        raise SourceError(f"kafka.bootstrap_servers: {server!r} has no numeric port")
    return host.strip("[]"), int(port)


def security_options(kafka: KafkaConfig) -> dict[str, Any]:
    """The kafka-python options for TLS and SASL that every client of the collector passes.

    Consumer, dead-letter producer, admin and state-store clients all take these,
    beside ``bootstrap_servers``; the SASL password is revealed only here.
    """
    options: dict[str, Any] = {"security_protocol": kafka.security_protocol}
    if kafka.sasl_plain_password is not None:
        options["sasl_mechanism"] = kafka.sasl_mechanism
        options["sasl_plain_username"] = kafka.sasl_plain_username
        options["sasl_plain_password"] = kafka.sasl_plain_password.get_secret_value()
    for name in TLS_FILES:
        path = getattr(kafka, name)
        if path is not None:
            options[name] = str(path)
    if kafka.ssl_password is not None:
        options["ssl_password"] = kafka.ssl_password.get_secret_value()
    return options


CONFLUENT_KEYS = {
    "security_protocol": "security.protocol",
    "sasl_mechanism": "sasl.mechanism",
    "sasl_plain_username": "sasl.username",
    "sasl_plain_password": "sasl.password",
    "ssl_cafile": "ssl.ca.location",
    "ssl_certfile": "ssl.certificate.location",
    "ssl_keyfile": "ssl.key.location",
    "ssl_password": "ssl.key.password",
}
"""kafka-python's TLS and SASL option names -> librdkafka's, for ``kafka.client: confluent``."""


def confluent_security_options(kafka: KafkaConfig) -> dict[str, Any]:
    """:func:`security_options` under librdkafka's names (the confluent-kafka consumer's)."""
    return {CONFLUENT_KEYS[name]: value for name, value in security_options(kafka).items()}


def build_kafka_source(
    config: Config,
    store: MetricStore,
    on_revoke: PartitionsCallback | None = None,
    on_assign: PartitionsCallback | None = None,
    start_offsets: OffsetsCallback | None = None,
) -> GroupSource:
    """The collector's consumer: predictions and labels topics, group ``config.kafka.group_id``.

    On ``kafka.client``'s library: kafka-python (the default) or confluent-kafka
    (imported only when chosen: it is an optional extra).
    """
    kafka = config.kafka
    topics = [kafka.predictions_topic, kafka.labels_topic]
    common: dict[str, Any] = {
        "store": store,
        "on_revoke": on_revoke,
        "on_assign": on_assign,
        "start_offsets": start_offsets,
        "auto_offset_reset": kafka.auto_offset_reset,
        "max_poll_records": kafka.max_poll_records,
        "commit_stall_seconds": kafka.commit_stall_seconds,
    }
    if kafka.client == "confluent":
        from collector.confluent_source import ConfluentSource

        return ConfluentSource(
            kafka.bootstrap_servers, topics, kafka.group_id, **common,
            options=confluent_security_options(kafka),
        )
    return KafkaSource(kafka.bootstrap_servers, topics, kafka.group_id, **common, **security_options(kafka))


def build_state_store(config: Config) -> StateStore | None:
    """Where ``collect`` checkpoints its state (``config.state``), or None when it does not."""
    state = config.state
    if state.store == "none":
        return None
    if state.store == "kafka":
        return KafkaStateStore(
            config.kafka.bootstrap_servers,
            state.topic,
            replication_factor=state.replication_factor,
            **security_options(config.kafka),
        )
    return LocalStateStore(state.directory)


def build_kafka_dlq(config: Config) -> KafkaDeadLetterSink:
    """The dead-letter producer on ``config.kafka.dlq_topic``."""
    kafka = config.kafka
    return KafkaDeadLetterSink(kafka.bootstrap_servers, kafka.dlq_topic, **security_options(kafka))


def demo_kafka(bootstrap_servers: str) -> tuple[Transport, Callable[[MetricStore], Source]]:
    """The SDK transport and a source factory for ``driftline demo --kafka HOST:PORT``."""
    run = uuid.uuid4().hex[:8]
    predictions, labels = f"driftline.demo-{run}.predictions", f"driftline.demo-{run}.labels"
    # The demo's sender thread may wait for a new topic's metadata on a loaded machine.
    transport = KafkaTransport(bootstrap_servers, predictions, labels, max_block_ms=30_000)

    def source_factory(store: MetricStore) -> Source:
        ensure_topics(bootstrap_servers, [predictions, labels])
        return KafkaSource(
            bootstrap_servers, [predictions, labels], f"driftline-demo-{run}", store=store
        )

    return transport, source_factory


def ensure_topics(bootstrap_servers: str, names: list[str], partitions: int = 1) -> None:
    """Create the topics that do not exist yet (a consumer does not notice new topics quickly)."""
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=30_000)
    except KafkaError as exc:
        raise SourceError(f"cannot reach Kafka at {bootstrap_servers}: {exc}") from exc
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(name, partitions, 1) for name in names if name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another collector was faster
                admin.create_topics(missing, timeout_ms=30_000)
        _wait_for_leaders(admin, names, timeout=30.0)
    except KafkaError as exc:
        raise SourceError(f"cannot create topics {names}: {exc}") from exc
    finally:
        admin.close()


def _wait_for_leaders(admin: KafkaAdminClient, names: list[str], timeout: float) -> None:
    """Wait until every partition of the topics has a leader.

    A consumer that joins its group before a new topic's partitions have leaders
    gets no partition of it from the assignor and is not reassigned later.
    """
    deadline = time.monotonic() + timeout
    while True:
        described = admin.describe_topics(names)
        ready = all(
            topic.get("error_code", 0) == 0
            and topic.get("partitions")
            and all(p.get("leader_id", -1) >= 0 for p in topic["partitions"])
            for topic in described
        )
        if ready and len(described) == len(names):
            return
        if time.monotonic() >= deadline:
            raise SourceError(f"topics {names} have no leader after {timeout:g} s")
        time.sleep(0.2)
