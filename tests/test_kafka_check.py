"""How the connection check reads kafka-python's log of a failed connection (no broker needed)."""

from __future__ import annotations

import logging

from kafka.errors import KafkaConnectionError, KafkaTimeoutError, SaslAuthenticationFailedError
from kafka.protocol.sasl import SaslAuthenticateResponse

from collector.kafka_check import _captured_kafka_logs, _cause

REFUSAL = SaslAuthenticateResponse(
    error_code=58,
    error_message="Authentication failed: Invalid username or password",
    auth_bytes=b"",
    session_lifetime_ms=0,
)


def test_a_refusal_read_together_with_the_disconnect_is_still_a_refusal() -> None:
    """On a loaded machine the broker's refusal and its closing of the socket arrive in one
    read: kafka-python fails the connection with "socket disconnected" before its SASL step
    sees the refusal, so only its debug record of the response tells the real cause."""
    connection = logging.getLogger("kafka.net.connection")
    manager = logging.getLogger("kafka.net.manager")
    with _captured_kafka_logs() as records:
        connection.debug("%s: Response %d (%s ms): %s", "<conn>", 3, 1.5, REFUSAL)
        manager.warning(
            "Bootstrap connection to %s failed: %s (backoff %.2f secs)",
            "bootstrap-0",
            KafkaConnectionError("socket disconnected"),
            0.05,
        )
        manager.error("Bootstrap failed: %s", KafkaTimeoutError("Unable to bootstrap"))
    cause = _cause(records)
    assert isinstance(cause, SaslAuthenticationFailedError)
    assert str(cause) == (
        "[Error 58] SaslAuthenticationFailedError: "
        "Authentication failed: Invalid username or password"
    )


def test_only_errors_and_sasl_responses_are_kept_never_a_request() -> None:
    """The debug log holds the PLAIN request, password included: the check must not keep it."""
    connection = logging.getLogger("kafka.net.connection")
    with _captured_kafka_logs() as records:
        connection.debug("%s: Request %d: %s", "<conn>", 3, b"\x00alice\x00s3cret")
        connection.debug("%s: Response %d (%s ms): %s", "<conn>", 3, 1.5, REFUSAL)
    assert [record.args for record in records] == [("<conn>", 3, 1.5, REFUSAL)]


def test_without_a_refusal_the_last_connection_error_is_the_cause() -> None:
    manager = logging.getLogger("kafka.net.manager")
    with _captured_kafka_logs() as records:
        manager.warning("failed: %s", KafkaConnectionError("Connection refused"))
        manager.error("Bootstrap failed: %s", KafkaTimeoutError("Unable to bootstrap"))
    cause = _cause(records)
    assert isinstance(cause, KafkaConnectionError)
    assert "Connection refused" in str(cause)
