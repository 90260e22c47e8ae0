"""One SASL login read to its last byte: a broker's refusal is never lost to its close.

A broker that refuses a login sends its SaslAuthenticate response and closes the
socket. kafka-python reads whatever is buffered and, when the close arrives in
the same read (a loaded machine), drops the response and reports only "socket
disconnected". :func:`sasl_refusal` logs in once more on a blocking socket and
reads each response frame by its length before anything else, so the refusal is
always read when the broker sent one.

It speaks the two requests a login needs (SaslHandshake v1, SaslAuthenticate v1)
and lets kafka-python's own mechanism classes (PLAIN, SCRAM) make the tokens.
"""

from __future__ import annotations

import socket
import ssl
import struct
from typing import Any

from kafka.net.sasl import get_sasl_mechanism

from collector.config import KafkaConfig
from collector.kafka_wiring import bootstrap_addresses

SASL_HANDSHAKE = 17
SASL_AUTHENTICATE = 36
CLIENT_ID = b"driftline-login-check"


def sasl_refusal(kafka: KafkaConfig, options: dict[str, Any], timeout: float) -> str | None:
    """The broker's words if it refuses the configured SASL login, else None.

    ``options`` are the kafka-python security options (mechanism, user, password,
    TLS files). None also when no broker answered or the exchange went wrong for
    another reason: the caller keeps the error it already has.
    """
    if "sasl_mechanism" not in options:
        return None
    for host, port in bootstrap_addresses(kafka.bootstrap_servers):
        try:
            with _connect(host, port, kafka.security_protocol == "SASL_SSL", options, timeout) as sock:
                return _login(sock, host, options)
        except (OSError, ValueError, struct.error):
            continue
    return None


def _connect(host: str, port: int, tls: bool, options: dict[str, Any], timeout: float) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout)
    if not tls:
        return sock
    context = ssl.create_default_context(cafile=options.get("ssl_cafile"))
    if options.get("ssl_certfile"):
        context.load_cert_chain(
            options["ssl_certfile"], options.get("ssl_keyfile"), options.get("ssl_password")
        )
    return context.wrap_socket(sock, server_hostname=host)


def _login(sock: socket.socket, host: str, options: dict[str, Any]) -> str | None:
    mechanism_name: str = options["sasl_mechanism"]
    error_code = _handshake(sock, mechanism_name)
    if error_code != 0:
        return f"the broker does not take SASL mechanism {mechanism_name} (error code {error_code})"
    mechanism = get_sasl_mechanism(mechanism_name)(host=host, **options)
    correlation_id = 1
    while not mechanism.is_done():
        correlation_id += 1
        token: bytes = mechanism.auth_bytes()
        _send(sock, SASL_AUTHENTICATE, correlation_id, struct.pack(">i", len(token)) + token)
        error_code, message, auth_bytes = _authenticate_response(_receive(sock))
        if error_code != 0:
            return message or f"error code {error_code}"
        mechanism.receive(auth_bytes)
    return None


def _handshake(sock: socket.socket, mechanism: str) -> int:
    name = mechanism.encode()
    _send(sock, SASL_HANDSHAKE, 1, struct.pack(">h", len(name)) + name)
    (error_code,) = struct.unpack_from(">h", _receive(sock))
    return int(error_code)


def _send(sock: socket.socket, api_key: int, correlation_id: int, body: bytes) -> None:
    """A request with header v1 (key, version 1, correlation id, client id), length-framed."""
    header = struct.pack(">hhih", api_key, 1, correlation_id, len(CLIENT_ID)) + CLIENT_ID
    message = header + body
    sock.sendall(struct.pack(">i", len(message)) + message)


def _receive(sock: socket.socket) -> bytes:
    """One response frame's body, after its 4-byte correlation id (response header v0)."""
    (size,) = struct.unpack(">i", _exactly(sock, 4))
    return _exactly(sock, size)[4:]


def _exactly(sock: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    while size > 0:
        chunk = sock.recv(size)
        if not chunk:
            raise ValueError("the broker closed the connection mid-response")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _authenticate_response(body: bytes) -> tuple[int, str | None, bytes]:
    """SaslAuthenticate v1: error code, nullable error message, auth bytes (then session lifetime)."""
    error_code, message_size = struct.unpack_from(">hh", body)
    offset = 4
    message = None
    if message_size >= 0:
        message = body[offset : offset + message_size].decode("utf-8", "replace")
        offset += message_size
    (bytes_size,) = struct.unpack_from(">i", body, offset)
    offset += 4
    return int(error_code), message, body[offset : offset + max(bytes_size, 0)]
