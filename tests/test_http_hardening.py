"""The HTTP server under hostile or heavy clients, on loopback, bounded in count and time."""

from __future__ import annotations

import logging
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from prometheus_client.registry import CollectorRegistry

from collector.config import HttpConfig
from collector.http_auth import exposure_warning
from collector.http_server import Endpoints, HttpServer


def _endpoints(**overrides: Any) -> Endpoints:
    parts: dict[str, Any] = {
        "registry": CollectorRegistry(),
        "models": lambda: [{"model": "m", "model_version": "1"}],
        "not_ready": lambda: None,
    }
    parts.update(overrides)
    return Endpoints(**parts)


@contextmanager
def _serving(endpoints: Endpoints | None = None, **settings: Any) -> Iterator[HttpServer]:
    config = HttpConfig(port=0, **settings)
    server = HttpServer(endpoints or _endpoints(), "127.0.0.1", 0, settings=config).start()
    try:
        yield server
    finally:
        server.stop()


def _connect(server: HttpServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def _exchange(server: HttpServer, request: bytes) -> bytes:
    """Send one raw request and read the whole answer (the server closes after it)."""
    with _connect(server) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """True once the peer closed the connection (EOF or reset) before ``seconds`` passed."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([sock], [], [], left)
        if readable:
            try:
                if sock.recv(65536) == b"":
                    return True
            except ConnectionError:
                return True
    return False


def test_head_answers_like_get_without_a_body() -> None:
    with _serving() as server:
        get = _exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        head = _exchange(server, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        metrics = _exchange(server, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert _status(get) == 200 and get.endswith(b"\r\n\r\nok\n")
    assert _status(head) == 200 and head.endswith(b"\r\n\r\n") and b"Content-Length: 3" in head
    assert _status(metrics) == 200 and metrics.endswith(b"\r\n\r\n")


def test_every_answer_carries_the_security_headers() -> None:
    with _serving() as server:
        for path in (b"/healthz", b"/metrics", b"/reports/", b"/api/v1/models", b"/nope"):
            answer = _exchange(server, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            head = answer.split(b"\r\n\r\n", 1)[0]
            assert b"X-Content-Type-Options: nosniff" in head, path
            assert b"Referrer-Policy: no-referrer" in head, path
            assert b"Content-Security-Policy: default-src 'none'" in head, path
        held = [_connect(server) for _ in range(300)]  # over max_connections: the refusal too
        try:
            time.sleep(0.3)
            refused = _exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        finally:
            for sock in held:
                sock.close()
    assert _status(refused) == 503
    for header in (b"X-Content-Type-Options: nosniff", b"Referrer-Policy", b"Content-Security-Policy"):
        assert header in refused.split(b"\r\n\r\n", 1)[0]


def test_idle_connections_are_closed_after_the_request_timeout(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="collector")
    with _serving(request_timeout_seconds=1.0) as server:
        socks = [_connect(server) for _ in range(200)]
        try:
            start = time.monotonic()
            closed = [_closed_within(sock, 6.0) for sock in socks]
            elapsed = time.monotonic() - start
        finally:
            for sock in socks:
                sock.close()
    assert all(closed), f"{closed.count(False)} of 200 idle connections still open"
    assert elapsed < 6.0
    noted = [r for r in caplog.records if "127.0.0.1" in r.getMessage() or "timed out" in r.getMessage()]
    assert len(noted) == 1 and noted[0].levelno == logging.DEBUG  # once per peer, not once per connection


def test_a_client_sending_a_byte_a_second_is_cut_off_at_the_deadline() -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 30
    with _serving(request_timeout_seconds=2.0) as server, _connect(server) as sock:
        start, cut = time.monotonic(), None
        for byte in request:
            try:
                sock.sendall(bytes([byte]))
            except ConnectionError:
                cut = time.monotonic() - start
                break
            if _closed_within(sock, 1.0):
                cut = time.monotonic() - start
                break
    assert cut is not None and 1.5 <= cut <= 4.0, cut


def test_200_concurrent_healthz_requests_are_all_answered_quickly() -> None:
    with _serving() as server:
        barrier = threading.Barrier(200, timeout=30)

        def one(_: int) -> tuple[int, float]:
            barrier.wait()
            start = time.monotonic()
            answer = _exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            return _status(answer), time.monotonic() - start

        with ThreadPoolExecutor(max_workers=200) as pool:
            results = list(pool.map(one, range(200)))
    statuses = [status for status, _ in results]
    latencies = sorted(latency for _, latency in results)
    assert statuses == [200] * 200
    p99 = latencies[int(0.99 * len(latencies)) - 1]
    assert p99 < 1.0, f"p99 {p99:.2f} s"


def test_connections_over_the_limit_are_refused_at_once() -> None:
    with _serving(max_connections=4, request_timeout_seconds=5.0) as server:
        held = [_connect(server) for _ in range(4)]
        time.sleep(0.2)  # let the server accept them
        start = time.monotonic()
        answer = _exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        refused_in = time.monotonic() - start
        for sock in held:
            sock.close()
        time.sleep(0.2)
        after = _exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert _status(answer) == 503 and refused_in < 1.0
    assert _status(after) == 200


def test_an_oversized_request_is_rejected() -> None:
    with _serving(max_request_bytes=4096) as server:
        answer = _exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8000 + b"\r\n\r\n")
        small = _exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Ok: " + b"a" * 2000 + b"\r\n\r\n")
    assert _status(answer) == 431
    assert _status(small) == 200


def test_clients_disconnecting_mid_response_are_logged_once_at_debug(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    reset = threading.Event()

    def wait_for_the_reset() -> None:
        reset.wait(5)
        time.sleep(0.05)

    with _serving(_endpoints(on_scrape=wait_for_the_reset)) as server:
        caplog.set_level(logging.DEBUG, logger="collector")
        for _ in range(10):
            reset.clear()
            sock = _connect(server)
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()  # a reset, not a polite close
            reset.set()
            time.sleep(0.1)
        time.sleep(0.3)
        still = _exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    records = [r for r in caplog.records if r.name.startswith("collector")]
    assert _status(still) == 200
    assert [r for r in records if r.levelno >= logging.WARNING] == []
    disconnects = [r for r in records if "disconnected" in r.getMessage()]
    assert len(disconnects) == 1 and disconnects[0].levelno == logging.DEBUG
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception" not in err, err


def test_a_slow_report_render_never_delays_metrics_and_extra_renders_are_refused() -> None:
    release = threading.Event()
    started = threading.Semaphore(0)

    def slow_report(model: str, version: str, window: int | None) -> str:
        started.release()
        release.wait(20)
        return "<!doctype html><title>r</title>"

    with _serving(_endpoints(reports=_Reports(slow_report)), report_workers=1) as server:
        path = b"GET /reports/m/1/latest HTTP/1.1\r\nHost: x\r\n\r\n"
        with ThreadPoolExecutor(max_workers=2) as pool:
            pending = [pool.submit(_exchange, server, path) for _ in range(2)]
            assert started.acquire(timeout=10)
            time.sleep(0.3)  # the second one is queued behind the first
            start = time.monotonic()
            refused = _exchange(server, path)
            metrics = _exchange(server, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            elapsed = time.monotonic() - start
            release.set()
            answers = [future.result(timeout=30) for future in pending]
    assert _status(refused) == 503 and b"Retry-After" in refused
    assert _status(metrics) == 200 and elapsed < 1.0
    assert [_status(answer) for answer in answers] == [200, 200]
    assert b"Content-Security-Policy: sandbox allow-scripts" in answers[0]


def test_path_segments_are_percent_decoded_so_any_version_is_reachable() -> None:
    seen: list[tuple[str, str, int | None]] = []

    def report(model: str, version: str, window: int | None) -> str:
        seen.append((model, version, window))
        return "<!doctype html><title>r</title>"

    with _serving(_endpoints(reports=_Reports(report))) as server:
        answer = _exchange(server, b"GET /reports/m/a%2Fb%3Fc%23d/latest HTTP/1.1\r\nHost: x\r\n\r\n")
        numbered = _exchange(server, b"GET /reports/m/a%2Fb%3Fc%23d/7 HTTP/1.1\r\nHost: x\r\n\r\n")
        escaped = _exchange(server, b"GET /reports/m/a/b/latest HTTP/1.1\r\nHost: x\r\n\r\n")
        not_a_window = [
            _exchange(server, b"GET /reports/m/1/" + window + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            for window in (b"-1", b"1.5", b"%C2%B2", b"first", b"9" * 19)
        ]
    assert _status(answer) == 200 and _status(numbered) == 200
    assert seen == [("m", "a/b?c#d", None), ("m", "a/b?c#d", 7)]
    assert _status(escaped) == 404
    assert [_status(answer) for answer in not_a_window] == [404] * 5


class _Reports:
    """Report pages from a render function, with a fixed index."""

    def __init__(self, render: Callable[[str, str, int | None], str]) -> None:
        self._render = render

    def index_page(self) -> str:
        return "<!doctype html><title>index</title>"

    def render(self, model: str, model_version: str, window: int | None = None) -> str | None:
        return self._render(model, model_version, window)


@pytest.mark.parametrize(
    ("host", "warned"),
    [("127.0.0.1", False), ("::1", False), ("localhost", False), ("0.0.0.0", True), ("10.1.2.3", True)],
)
def test_listening_beyond_loopback_without_auth_warns(host: str, warned: bool) -> None:
    assert (exposure_warning(host, "none") is not None) is warned
    assert exposure_warning(host, "bearer") is None
