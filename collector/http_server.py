"""The collector's read-only HTTP endpoints (docs/contracts.md#http).

``/metrics``, ``/healthz``, ``/readyz``, ``/api/v1/models``, ``/reports/`` and
``/reports/<model>/<model_version>/latest``. Started explicitly, on a
background thread, bound to a configurable address (127.0.0.1 by default).
"""

from __future__ import annotations

import html
import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from collector.errors import DriftlineError

log = logging.getLogger(__name__)

ReportRenderer = Callable[[str, str], str | None]


class Endpoints:
    """What the handler serves; each part is a callable so the server holds no pipeline state."""

    def __init__(
        self,
        registry: CollectorRegistry,
        models: Callable[[], list[dict[str, object]]],
        ready: Callable[[], bool],
        report: ReportRenderer | None = None,
        on_scrape: Callable[[], None] | None = None,
    ) -> None:
        self.registry = registry
        self.models = models
        self.ready = ready
        self.report = report
        self.on_scrape = on_scrape


class HttpServer:
    """A threading HTTP server for the endpoints, stopped with :meth:`stop` (safe twice)."""

    def __init__(self, endpoints: Endpoints, host: str = "127.0.0.1", port: int = 9108) -> None:
        handler = _handler_class(endpoints)
        try:
            self._server = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise DriftlineError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = str(self._server.server_address[0])
        return f"http://{host}:{self.port}"

    def start(self) -> HttpServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="driftline-http", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._thread = None


def _handler_class(endpoints: Endpoints) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = unquote(self.path.split("?", 1)[0])
            try:
                self._route(path)
            except Exception:
                log.exception("error serving %s", path)
                self._send(500, "text/plain; charset=utf-8", b"internal error\n")

        def _route(self, path: str) -> None:
            if path == "/metrics":
                if endpoints.on_scrape is not None:
                    endpoints.on_scrape()
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(endpoints.registry))
            elif path == "/healthz":
                self._send(200, "text/plain; charset=utf-8", b"ok\n")
            elif path == "/readyz":
                ready = endpoints.ready()
                self._send(
                    200 if ready else 503,
                    "text/plain; charset=utf-8",
                    b"ready\n" if ready else b"not ready\n",
                )
            elif path == "/api/v1/models":
                body = json.dumps({"models": endpoints.models()}, default=str, indent=2).encode()
                self._send(200, "application/json", body)
            elif path in {"/reports", "/reports/"}:
                self._send(
                    200, "text/html; charset=utf-8", _report_index(endpoints.models()).encode()
                )
            elif path.startswith("/reports/"):
                self._report(path.removeprefix("/reports/").strip("/").split("/"))
            else:
                self._send(404, "text/plain; charset=utf-8", b"not found\n")

        def _report(self, parts: list[str]) -> None:
            if len(parts) != 3 or parts[2] != "latest" or endpoints.report is None:
                self._send(404, "text/plain; charset=utf-8", b"not found\n")
                return
            try:
                page = endpoints.report(parts[0], parts[1])
            except ImportError as exc:  # an install without the report renderer: say how to fix it
                self._send(503, "text/html; charset=utf-8", _unavailable_page(str(exc)).encode())
                return
            if page is None:
                self._send(
                    404,
                    "text/plain; charset=utf-8",
                    b"no evaluated window for this model version yet\n",
                )
                return
            self._send(200, "text/html; charset=utf-8", page.encode())

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("http: " + format, *args)

    return Handler


def _report_index(models: list[dict[str, object]]) -> str:
    rows = []
    for status in models:
        model, version = (
            html.escape(str(status["model"])),
            html.escape(str(status["model_version"])),
        )
        rows.append(f'<li><a href="/reports/{model}/{version}/latest">{model} / {version}</a></li>')
    items = "\n".join(rows) or "<li>no model versions yet</li>"
    return f"<!doctype html><title>Driftline reports</title><h1>Drift reports</h1><ul>\n{items}\n</ul>\n"


def _unavailable_page(reason: str) -> str:
    return (
        "<!doctype html><title>Driftline report unavailable</title><h1>Report unavailable</h1>"
        f"<p>{html.escape(reason)}</p>\n"
    )
