"""A minimal OTLP/HTTP endpoint on loopback for the exporter tests: decodes and keeps every request."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, Protocol, TypeVar

from tests.conftest import free_port


class _Message(Protocol):
    def ParseFromString(self, data: bytes) -> Any: ...

    def SerializeToString(self) -> bytes: ...


RequestT = TypeVar("RequestT", bound=_Message)


@dataclass
class Receiver(Generic[RequestT]):
    """What the endpoint received; set ``status`` to make it answer with an error."""

    url: str
    status: int = 200
    requests: list[RequestT] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    tenants: list[str | None] = field(default_factory=list)


@contextmanager
def otlp_receiver(
    request_type: type[RequestT], response_type: type[_Message]
) -> Iterator[Receiver[RequestT]]:
    """Serve on a free loopback port until the block ends."""
    port = free_port()
    state: Receiver[RequestT] = Receiver(url=f"http://127.0.0.1:{port}")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            request = request_type()
            request.ParseFromString(self.rfile.read(int(self.headers["Content-Length"])))
            state.paths.append(self.path)
            state.tenants.append(self.headers.get("x-tenant"))
            state.requests.append(request)
            reply = response_type().SerializeToString()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
