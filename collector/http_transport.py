"""The socket side of the HTTP endpoints: the standard library's threading server, bounded.

Each connection gets a thread, but only up to ``max_connections`` at once: one
more is answered ``503`` (or, over TLS, closed) at accept time, never queued.
Every request has one deadline for all of it (TLS handshake, request line and
headers), enforced on each read by :class:`DeadlineReader`, so a client that
sends a byte a second is cut off like an idle one. The request line and
headers are bounded in bytes; the endpoints take no body and HTTP/1.0 closes
each connection after its answer. Clients that go away mid-answer are noted
at DEBUG, once per peer address, never as tracebacks.

The standard library is kept (rather than waitress, cheroot or uvicorn)
because none of those bounds the whole request in time either (their timeouts
are per read or per idle period), and these few bounds are all the endpoints
need; see docs/operations.md.
"""

from __future__ import annotations

import io
import logging
import socket
import ssl
import sys
import threading
import time
from collections import OrderedDict
from contextlib import suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)

_BUSY = (
    b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 27\r\nRetry-After: 1\r\nConnection: close\r\n"
    b"X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n"
    b"Content-Security-Policy: default-src 'none'\r\n\r\ntoo many connections, retry\n"
)
_PEERS_REMEMBERED = 1024


class RequestTooLarge(Exception):
    """The request line and headers went over ``max_request_bytes``."""


class DeadlinePassed(Exception):
    """The request was not all read by its deadline (deliberately not a TimeoutError: the
    standard handler would log each one; here they are noted once per peer)."""


QUIET_ERRORS = (ConnectionError, TimeoutError, DeadlinePassed, ssl.SSLError)


class DeadlineReader(io.RawIOBase):
    """Reads a socket until a deadline and a byte budget, whichever runs out first."""

    def __init__(self, sock: socket.socket, deadline: float, budget: int) -> None:
        self._sock, self._deadline, self._left = sock, deadline, budget

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlinePassed("request not read by its deadline")
        if self._left <= 0:
            raise RequestTooLarge
        self._sock.settimeout(remaining)
        try:
            count = self._sock.recv_into(memoryview(buffer)[: self._left])
        except TimeoutError:
            raise DeadlinePassed("request not read by its deadline") from None
        self._left -= count
        return count


class _OncePerPeer:
    """Remembers the last peers it saw, so each is logged once (bounded, oldest forgotten)."""

    def __init__(self) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, peer: str) -> bool:
        with self._lock:
            if peer in self._seen:
                return False
            self._seen[peer] = None
            if len(self._seen) > _PEERS_REMEMBERED:
                self._seen.popitem(last=False)
            return True


class BoundedHTTPServer(ThreadingHTTPServer):
    """A thread per connection, at most ``max_connections`` of them; the rest refused at once."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        *,
        max_connections: int,
        backlog: int,
        request_timeout: float,
        max_request_bytes: int,
        tls: ssl.SSLContext | None,
    ) -> None:
        self.request_queue_size = backlog  # read by server_activate, inside the base constructor
        self.request_timeout = request_timeout
        self.max_request_bytes = max_request_bytes
        self.tls = tls
        self._slots = threading.BoundedSemaphore(max_connections)
        self._disconnected = _OncePerPeer()
        self._refused = _OncePerPeer()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self._refuse(request, client_address)
            return
        thread = threading.Thread(
            target=self._serve, args=(request, client_address), name="driftline-http-conn", daemon=True
        )
        try:
            thread.start()
        except RuntimeError:  # the interpreter cannot start one more thread
            self._slots.release()
            self._refuse(request, client_address)

    def _serve(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _refuse(self, request: socket.socket, client_address: Any) -> None:
        if self.tls is None:
            with suppress(OSError):
                request.setblocking(False)
                request.send(_BUSY)
        self.shutdown_request(request)
        if self._refused.first_time(str(client_address[0])):
            log.warning("http: refused a connection from %s: over http.max_connections", client_address[0])

    def note_disconnect(self, client_address: Any, error: BaseException) -> None:
        """A client that went away (reset, timeout, TLS failure): DEBUG, once per peer address."""
        peer = str(client_address[0])
        if self._disconnected.first_time(peer):
            log.debug("http: client %s disconnected: %s (logged once per peer)", peer, error)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, QUIET_ERRORS):
            self.note_disconnect(client_address, error)
        else:
            log.error("http: unexpected error serving %s", client_address[0], exc_info=True)


class BoundedHandler(BaseHTTPRequestHandler):
    """Reads each request under the server's deadline and byte budget; TLS is negotiated here."""

    server: BoundedHTTPServer

    def setup(self) -> None:
        deadline = time.monotonic() + self.server.request_timeout
        self.requestline, self.request_version, self.command = "", "HTTP/1.0", ""
        if self.server.tls is not None:  # in this connection's thread, never in the accept loop
            self.request.settimeout(self.server.request_timeout)
            self.request = self.server.tls.wrap_socket(self.request, server_side=True)
        super().setup()
        self.rfile.close()
        self.rfile = io.BufferedReader(
            DeadlineReader(self.connection, deadline, self.server.max_request_bytes)
        )

    def handle(self) -> None:
        try:
            super().handle()
        except RequestTooLarge:
            self.close_connection = True
            self.send_error(431, "request line and headers over http.max_request_bytes")
        except QUIET_ERRORS as error:
            self.server.note_disconnect(self.client_address, error)

    def parse_request(self) -> bool:
        parsed = super().parse_request()
        self.connection.settimeout(self.server.request_timeout)  # now for writing the answer
        return parsed

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            if isinstance(self.connection, ssl.SSLSocket):
                self.connection.close()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http: " + format, *args)
