"""The collector's read-only HTTP endpoints (docs/contracts.md#http).

``/metrics``, ``/healthz``, ``/readyz``, ``/api/v1/models``, ``/api/v1/model-groups``,
``/api/v1/models/<model>/<model_version>/windows``,
``/reports/`` and ``/reports/<model>/<model_version>/<window>`` (a window index
or ``latest``), for GET and HEAD. Started
explicitly, on a background thread, bound to a configurable address
(127.0.0.1 by default). The socket side (limits, deadlines, TLS) is
:mod:`collector.http_transport`; authentication is :mod:`collector.http_auth`.

Path segments are percent-decoded one by one after the path is split on
``/``, so a model version holding ``/``, ``?`` or ``#`` (percent-encoded in
every link) names one segment and cannot reach another path.
"""

from __future__ import annotations

import json
import logging
import re
import ssl
import threading
from collections.abc import Callable
from typing import Protocol
from urllib.parse import unquote

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from collector.config import HttpConfig
from collector.errors import ConfigError, DriftlineError
from collector.http_auth import Authenticator, exposure_warning
from collector.http_transport import QUIET_ERRORS, BoundedHandler, BoundedHTTPServer
from collector.model_groups import group_versions
from collector.render_pool import RenderBusy, RenderPool
from exporters.pages import render

log = logging.getLogger(__name__)

NotReadyReason = Callable[[], str | None]
"""Why the collector is not ready (``reason: explanation``), or None when it is."""
WindowRows = Callable[[str, str], list[dict[str, object]] | None]

TEXT = "text/plain; charset=utf-8"
HTML = "text/html; charset=utf-8"
# Driftline's own pages load nothing and run nothing; Evidently's need inline scripts, so they
# run sandboxed, in an opaque origin that can reach neither the collector's cookies nor its API.
OWN_CSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
REPORT_CSP = "sandbox allow-scripts"
PUBLIC = frozenset({"/healthz", "/readyz"})
WINDOW = re.compile(r"[0-9]{1,18}")


class ReportPages(Protocol):
    """The report index and the kept reports (exporters.html_report.HtmlReportWriter)."""

    def index_page(self) -> str: ...

    def render(self, model: str, model_version: str, window: int | None = None) -> str | None:
        """A kept window's page (None: the latest), or None when that window has no kept report."""


class Endpoints:
    """What the handler serves; each part is a callable so the server holds no pipeline state."""

    def __init__(
        self,
        registry: CollectorRegistry,
        models: Callable[[], list[dict[str, object]]],
        not_ready: NotReadyReason,
        reports: ReportPages | None = None,
        on_scrape: Callable[[], None] | None = None,
        windows: WindowRows | None = None,
    ) -> None:
        self.registry = registry
        self.models = models
        self.not_ready = not_ready
        self.reports = reports
        self.on_scrape = on_scrape
        self.windows = windows


class HttpServer:
    """The endpoints on a bounded threading server, stopped with :meth:`stop` (safe twice).

    ``settings`` gives the limits, authentication and TLS (``http`` in the
    configuration); ``host`` and ``port`` are taken from the arguments.
    """

    def __init__(
        self,
        endpoints: Endpoints,
        host: str = "127.0.0.1",
        port: int = 9108,
        *,
        settings: HttpConfig | None = None,
    ) -> None:
        settings = settings or HttpConfig()
        self._auth = Authenticator.from_config(settings.auth)
        self._renders = RenderPool(settings.report_workers, settings.report_timeout_seconds)
        tls = _tls_context(settings)
        try:
            self._server = BoundedHTTPServer(
                (host, port),
                _handler_class(endpoints, self._auth, self._renders),
                max_connections=settings.max_connections,
                backlog=settings.backlog,
                request_timeout=settings.request_timeout_seconds,
                max_request_bytes=settings.max_request_bytes,
                tls=tls,
            )
        except OSError as exc:
            self._renders.close()
            raise DriftlineError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
        self._scheme = "https" if tls is not None else "http"
        self.warning = exposure_warning(host, settings.auth.mode)
        self._thread: threading.Thread | None = None

    @classmethod
    def from_config(cls, endpoints: Endpoints, settings: HttpConfig) -> HttpServer:
        return cls(endpoints, settings.host, settings.port, settings=settings)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = str(self._server.server_address[0])
        return f"{self._scheme}://{host}:{self.port}"

    def start(self) -> HttpServer:
        if self.warning is not None:
            log.warning("%s", self.warning)
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
        self._renders.close()
        self._thread.join(timeout=5)
        self._thread = None


def _tls_context(settings: HttpConfig) -> ssl.SSLContext | None:
    tls = settings.tls
    if tls.cert_file is None or tls.key_file is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"http.tls: cannot load the certificate {tls.cert_file} with key {tls.key_file}: {exc}"
        ) from exc
    return context


def _handler_class(
    endpoints: Endpoints, auth: Authenticator, renders: RenderPool
) -> type[BoundedHandler]:
    class Handler(BoundedHandler):
        head = False
        csp = OWN_CSP

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            try:
                self._route(path)
            except QUIET_ERRORS:
                raise  # the client went away: the server notes it once per peer
            except Exception:
                log.exception("error serving %s", path)
                self._send(500, TEXT, b"internal error\n")

        def do_HEAD(self) -> None:
            self.head = True
            self.do_GET()

        def _route(self, path: str) -> None:
            if path not in PUBLIC and not auth.allows(self.headers.get("Authorization")):
                self._send(401, TEXT, b"authentication required\n", {"WWW-Authenticate": auth.challenge})
            elif path == "/metrics":
                if endpoints.on_scrape is not None:
                    endpoints.on_scrape()
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(endpoints.registry))
            elif path == "/healthz":
                self._send(200, TEXT, b"ok\n")
            elif path == "/readyz":
                reason = endpoints.not_ready()
                if reason is None:
                    self._send(200, TEXT, b"ready\n")
                else:
                    self._send(503, TEXT, f"not ready: {reason}\n".encode())
            elif path == "/api/v1/models":
                body = json.dumps({"models": endpoints.models()}, default=str, indent=2).encode()
                self._send(200, "application/json", body)
            elif path == "/api/v1/model-groups":
                groups = {"models": group_versions(endpoints.models())}
                self._send(200, "application/json", json.dumps(groups, default=str, indent=2).encode())
            elif path in {"/reports", "/reports/"} and endpoints.reports is not None:
                self._send(200, HTML, _utf8(endpoints.reports.index_page()))
            elif path.startswith("/api/v1/models/"):
                self._windows([unquote(part) for part in path.removeprefix("/api/v1/models/").split("/")])
            elif path.startswith("/reports/"):
                self._report([unquote(part) for part in path.removeprefix("/reports/").split("/")])
            else:
                self._send(404, TEXT, b"not found\n")

        def _windows(self, parts: list[str]) -> None:
            rows = None
            if len(parts) == 3 and parts[2] == "windows" and endpoints.windows is not None:
                rows = endpoints.windows(parts[0], parts[1])
            if rows is None:
                self._send(404, TEXT, b"not found\n")
                return
            body = json.dumps({"model": parts[0], "model_version": parts[1], "rows": rows}, indent=2)
            self._send(200, "application/json", body.encode())

        def _report(self, parts: list[str]) -> None:
            reports = endpoints.reports
            if len(parts) != 3 or not (parts[2] == "latest" or WINDOW.fullmatch(parts[2])) or reports is None:
                self._send(404, TEXT, b"not found\n")
                return
            model, version, window = parts[0], parts[1], None if parts[2] == "latest" else int(parts[2])
            try:
                page = renders.render(lambda: reports.render(model, version, window))
            except RenderBusy:
                self._send(503, TEXT, b"busy rendering other reports, retry\n", {"Retry-After": "5"})
                return
            except TimeoutError:  # the render runs on; its slot frees when it ends
                self._send(503, TEXT, b"the report took too long to render\n", {"Retry-After": "30"})
                return
            except ImportError as exc:  # an install without the report renderer: say how to fix it
                self._send(503, HTML, render("unavailable.html", reason=str(exc)).encode())
                return
            if page is None:
                self._send(404, TEXT, b"no kept report for this window of this model version\n")
                return
            self.csp = REPORT_CSP
            self._send(200, HTML, _utf8(page))

        def _send(
            self, status: int, content_type: str, body: bytes, headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if not self.head:
                self.wfile.write(body)

        def end_headers(self) -> None:
            """Every answer, errors from the standard library included, carries these."""
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header("Content-Security-Policy", self.csp)
            super().end_headers()

    return Handler


def _utf8(page: str) -> bytes:
    """The page as UTF-8, a lone surrogate written as ``\\udXXX`` rather than a 500."""
    return page.encode("utf-8", "backslashreplace")
