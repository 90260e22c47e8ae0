"""The connection check's reading of a failed connection, against a scripted SASL broker.

The scripted broker on loopback stands in for a real one only to make the race
of a loaded machine happen every time: it sends its refusal and closes the
socket in one go. The real broker's refusals are tested in test_kafka_security.py.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from kafka.errors import KafkaConnectionError, KafkaTimeoutError
from pydantic import SecretStr

from collector import kafka_check
from collector.config import KafkaConfig
from collector.errors import SourceError
from collector.kafka_check import _captured_kafka_logs, _cause, verify_connection
from collector.kafka_wiring import security_options
from collector.sasl_probe import sasl_refusal

USER, PASSWORD = "alice", "s3cret-Pa55"
REFUSAL_TEXT = "Authentication failed: Invalid username or password"


def _frame(correlation_id: int, body: bytes) -> bytes:
    message = struct.pack(">i", correlation_id) + body
    return struct.pack(">i", len(message)) + message


def _read_frame(conn: socket.socket) -> bytes:
    size = struct.unpack(">i", conn.recv(4, socket.MSG_WAITALL))[0]
    return conn.recv(size, socket.MSG_WAITALL)


class ScriptedBroker:
    """Answers one SASL login: handshake accepted, then ``error_code`` with the refusal text
    and the close in one send (or success). Keeps the authenticate request it received."""

    def __init__(self, error_code: int) -> None:
        self.error_code = error_code
        self.auth_requests: list[bytes] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        with conn:
            request = _read_frame(conn)
            correlation_id = struct.unpack_from(">i", request, 4)[0]
            mechanisms = struct.pack(">ih", 1, 5) + b"PLAIN"
            conn.sendall(_frame(correlation_id, struct.pack(">h", 0) + mechanisms))
            request = _read_frame(conn)
            self.auth_requests.append(request)
            correlation_id = struct.unpack_from(">i", request, 4)[0]
            text = REFUSAL_TEXT.encode() if self.error_code else b""
            body = struct.pack(">hh", self.error_code, len(text)) + text + struct.pack(">iq", 0, 0)
            conn.sendall(_frame(correlation_id, body))

    def close(self) -> None:
        self.thread.join(timeout=10)
        self.server.close()


@pytest.fixture
def refusing_broker() -> Iterator[ScriptedBroker]:
    broker = ScriptedBroker(error_code=58)
    yield broker
    broker.close()


def _kafka(port: int) -> KafkaConfig:
    return KafkaConfig(
        bootstrap_servers=f"127.0.0.1:{port}",
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_plain_username=USER,
        sasl_plain_password=SecretStr(PASSWORD),
    )


def test_a_refusal_sent_together_with_the_close_is_read(refusing_broker: ScriptedBroker) -> None:
    kafka = _kafka(refusing_broker.port)
    assert sasl_refusal(kafka, security_options(kafka), timeout=10) == REFUSAL_TEXT
    token = f"{USER}\x00{USER}\x00{PASSWORD}".encode()  # kafka-python's PLAIN: authzid, user, password
    assert refusing_broker.auth_requests[0].endswith(struct.pack(">i", len(token)) + token)


def test_an_accepted_login_is_no_refusal() -> None:
    broker = ScriptedBroker(error_code=0)
    try:
        kafka = _kafka(broker.port)
        assert sasl_refusal(kafka, security_options(kafka), timeout=10) is None
    finally:
        broker.close()


def test_without_a_broker_or_without_sasl_there_is_no_refusal() -> None:
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        port = placeholder.getsockname()[1]
    kafka = _kafka(port)
    assert sasl_refusal(kafka, security_options(kafka), timeout=2) is None
    plain = KafkaConfig(bootstrap_servers=f"127.0.0.1:{port}")
    assert sasl_refusal(plain, security_options(plain), timeout=2) is None


def test_a_refusal_kafka_python_lost_to_the_disconnect_is_still_named(
    refusing_broker: ScriptedBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kafka-python drops a response read together with the close and reports only the
    disconnect; its consumer is replaced by one failing that way, as on a loaded machine."""

    def disconnected(**_: Any) -> None:
        logging.getLogger("kafka.net.transport").error("%s: socket disconnected", "<conn>")
        raise KafkaConnectionError("socket disconnected")

    monkeypatch.setattr(kafka_check, "KafkaConsumer", disconnected)
    with pytest.raises(SourceError) as failure:
        verify_connection(_kafka(refusing_broker.port), timeout=5)
    message = str(failure.value)
    assert message == (
        f"Kafka at 127.0.0.1:{refusing_broker.port} refused the PLAIN login of user "
        f"'{USER}': {REFUSAL_TEXT}"
    )
    assert PASSWORD not in message


def test_only_error_records_are_kept_never_a_request() -> None:
    """The debug log holds the PLAIN request, password included: the check must not keep it."""
    connection = logging.getLogger("kafka.net.connection")
    with _captured_kafka_logs() as records:
        connection.debug("%s: Request %d: %s", "<conn>", 3, b"\x00alice\x00s3cret")
        connection.error("%s: failed: %s", "<conn>", KafkaConnectionError("socket disconnected"))
    assert len(records) == 1
    assert isinstance(records[0].args, tuple) and records[0].args[0] == "<conn>"


def test_without_a_refusal_the_last_connection_error_is_the_cause() -> None:
    manager = logging.getLogger("kafka.net.manager")
    with _captured_kafka_logs() as records:
        manager.warning("failed: %s", KafkaConnectionError("Connection refused"))
        manager.error("Bootstrap failed: %s", KafkaTimeoutError("Unable to bootstrap"))
    cause = _cause(records)
    assert isinstance(cause, KafkaConnectionError)
    assert "Connection refused" in str(cause)
