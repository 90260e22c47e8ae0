"""A connection check before the collector starts: TLS and SASL problems in one line.

kafka-python retries a refused login or a failed TLS handshake until its
bootstrap timeout and logs several lines per attempt (60 lines in 30 s for a
wrong password). :func:`verify_connection` connects once with the collector's
security settings, keeps kafka-python's log records to itself meanwhile, and
turns a failure into one :class:`~collector.errors.SourceError` naming the
cause, never the password.
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
    if isinstance(cause, REFUSALS):
        raise SourceError(
            f"Kafka at {kafka.bootstrap_servers} refused the {kafka.sasl_mechanism} login of "
            f"user {kafka.sasl_plain_username!r}: {cause}"
        )
    raise SourceError(
        f"cannot connect to Kafka at {kafka.bootstrap_servers} with "
        f"{kafka.security_protocol} within {timeout:g} s: {cause}"
    )


@contextlib.contextmanager
def _captured_kafka_logs() -> Iterator[list[logging.LogRecord]]:
    """Hold kafka-python's log records back (and hand them over) for the duration."""
    handler = _KeepRecords()
    logger = logging.getLogger("kafka")
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


class _KeepRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _cause(records: list[logging.LogRecord]) -> KafkaError | None:
    """The last refusal kafka-python logged, else the last connection error it logged.

    Its closing "Bootstrap failed: KafkaTimeoutError" says only that time ran out.
    """
    errors = [
        arg
        for record in records
        for arg in (record.args if isinstance(record.args, tuple) else ())
        if isinstance(arg, KafkaError) and not isinstance(arg, KafkaTimeoutError)
    ]
    refusals = [error for error in errors if isinstance(error, REFUSALS)]
    return (refusals or errors or [None])[-1]
