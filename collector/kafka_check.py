"""A connection check before the collector starts: TLS and SASL problems in one line.

kafka-python retries a refused login or a failed TLS handshake until its
bootstrap timeout and logs several lines per attempt (60 lines in 30 s for a
wrong password). :func:`verify_connection` connects once with the collector's
security settings, keeps kafka-python's log records to itself meanwhile, and
turns a failure into one :class:`~collector.errors.SourceError` naming the
cause, never the password.

A broker that refuses a login sends its SaslAuthenticate response and closes
the socket. When both arrive in one read (a loaded machine), kafka-python fails
the connection with "socket disconnected" and drops the refusal. So when the
check fails without a refusal and SASL is on, :func:`~collector.sasl_probe.sasl_refusal`
logs in once more reading every response to its end, and a refusal it reads wins.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from kafka import KafkaConsumer
from kafka.errors import (
    AuthorizationError,
    KafkaError,
    KafkaTimeoutError,
    SaslAuthenticationFailedError,
    UnsupportedSaslMechanismError,
)

from collector.config import KafkaConfig
from collector.errors import SourceError
from collector.kafka_wiring import security_options
from collector.sasl_probe import sasl_refusal

REFUSALS = (SaslAuthenticationFailedError, UnsupportedSaslMechanismError, AuthorizationError)


def verify_connection(kafka: KafkaConfig, timeout: float = 15.0) -> None:
    """Connect once with the TLS and SASL settings; one clear SourceError if that fails.

    With ``PLAINTEXT`` it does nothing (there is nothing to refuse).
    """
    if kafka.security_protocol == "PLAINTEXT":
        return
    with _captured_kafka_logs() as records:
        try:
            KafkaConsumer(
                bootstrap_servers=kafka.bootstrap_servers,
                bootstrap_timeout_ms=int(timeout * 1000),
                client_id="driftline-connection-check",
                **security_options(kafka),
            ).close()
            return
        except KafkaError as exc:
            failure = exc
    cause = _cause(records) or failure
    refusal = str(cause) if isinstance(cause, REFUSALS) else _probed_refusal(kafka, timeout)
    if refusal is not None:
        raise SourceError(
            f"Kafka at {kafka.bootstrap_servers} refused the {kafka.sasl_mechanism} login of "
            f"user {kafka.sasl_plain_username!r}: {refusal}"
        )
    raise SourceError(
        f"cannot connect to Kafka at {kafka.bootstrap_servers} with "
        f"{kafka.security_protocol} within {timeout:g} s: {cause}"
    )


def _probed_refusal(kafka: KafkaConfig, timeout: float) -> str | None:
    """The broker's refusal from one more login read to its end (SASL only), kafka-python's logs held."""
    with _captured_kafka_logs():
        return sasl_refusal(kafka, security_options(kafka), timeout)


@contextlib.contextmanager
def _captured_kafka_logs() -> Iterator[list[logging.LogRecord]]:
    """Hold kafka-python's log records back (and hand them over) for the duration."""
    handler = _KeepRecords()
    logger = logging.getLogger("kafka")
    propagate, level = logger.propagate, logger.level
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
        logger.setLevel(level)


class _KeepRecords(logging.Handler):
    """Keeps the records that carry an error, drops the rest."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if any(isinstance(arg, KafkaError) for arg in _args(record)):
            self.records.append(record)


def _args(record: logging.LogRecord) -> tuple[object, ...]:
    return record.args if isinstance(record.args, tuple) else ()


def _cause(records: list[logging.LogRecord]) -> KafkaError | None:
    """The last refusal kafka-python logged, else the last connection error it logged.

    The closing "Bootstrap failed: KafkaTimeoutError" says only that time ran out.
    """
    errors = [
        arg
        for record in records
        for arg in _args(record)
        if isinstance(arg, KafkaError) and not isinstance(arg, KafkaTimeoutError)
    ]
    refusals = [error for error in errors if isinstance(error, REFUSALS)]
    return (refusals or errors or [None])[-1]
