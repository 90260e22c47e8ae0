"""``driftline status`` against a real running collector (pipeline + HTTP server on a socket)
and a real Prometheus evaluating a rule on the collector's scrape."""

from __future__ import annotations

import functools
import io
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from driftline.schema import Label, encode

from collector.cli import main
from collector.config import Config, HttpConfig
from collector.dlq import MemoryDeadLetterSink
from collector.errors import DriftlineError
from collector.http_server import Endpoints, HttpServer
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from collector.status import authorization_header, fetch_alerts, performance_text
from exporters.prometheus import build_registry
from exporters.store import MetricStore
from tests.conftest import free_port, require_binary
from tests.streams import predictions
from tests.test_alerting_e2e import Processes, _wait_for

REFERENCE, WINDOW = 5000, 1000


def _events(model_version: str, seed: int, shifted: tuple[str, ...] = ()) -> list[RawMessage]:
    """A reference and one window of predictions; a label for each window prediction, every
    tenth one wrong, so the realized accuracy of the label window is exactly 0.9."""
    stream = list(predictions(REFERENCE, seed=seed, model_version=model_version))
    stream += predictions(
        WINDOW, seed=seed + 1, start=REFERENCE, model_version=model_version, shifted=shifted
    )
    labels = [
        Label(
            event_id=p.event_id,
            model="m",
            label=int(p.prediction) if i % 10 else 1 - int(p.prediction),
            timestamp=p.timestamp,
        )
        for i, p in enumerate(stream[REFERENCE:])
    ]
    events = [*stream, *labels]
    return [RawMessage(encode(e), "t", 0, i, 0.0) for i, e in enumerate(events)]


@pytest.fixture(scope="module")
def collector() -> Iterator[tuple[str, Pipeline]]:
    store = MetricStore()
    pipeline = Pipeline(Config(), store, MemoryDeadLetterSink(), event_time=True)
    pipeline.process(_events("1", seed=31))
    pipeline.process(_events("2", seed=41, shifted=("n1", "n2", "n3", "n4", "n5", "c0", "c1")))
    server = HttpServer(Endpoints(build_registry(store), pipeline.status, lambda: None), "127.0.0.1", 0)
    server.start()
    try:
        yield server.url, pipeline
    finally:
        server.stop()


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def _status(*args: str, env: dict[str, str] | None = None) -> Result:
    """``driftline status ARGS`` in this process (the console script is run once, below)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COLUMNS", "250")
        for name in ("DRIFTLINE_TOKEN", "DRIFTLINE_PASSWORD"):
            patch.delenv(name, raising=False)
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        with redirect_stdout(stdout), redirect_stderr(stderr):
            code = main(["status", *args])
    return Result(code, stdout.getvalue(), stderr.getvalue())


def _rows(stdout: str) -> dict[str, list[str]]:
    """Table rows of model ``m`` by version: the cells between the box-drawing separators."""
    rows = {}
    for line in stdout.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if cells and cells[0] == "m":
            rows[cells[1]] = cells
    return rows


def test_status_tables_each_version_of_a_running_collector(collector: tuple[str, Pipeline]) -> None:
    url, pipeline = collector
    result = _status("--url", url)
    assert result.returncode == 0, result.stderr
    assert f"Driftline collector at {url}: 2 model versions" in result.stdout
    rows = _rows(result.stdout)
    shares = {s.model_version: s.last_report.drift.share for s in pipeline.states.values() if s.last_report}
    ids = {s.model_version: s.reference.reference_id for s in pipeline.states.values() if s.reference}
    assert ids["1"].startswith("auto-") and ids["2"].startswith("auto-")  # a hash of each reference's data
    assert rows["1"] == [
        *("m", "1", "champion", "d1", ids["1"], "6000", "1"),
        f"{shares['1']:.2f}",
        "accuracy 0.900 (realized)",
    ]
    assert shares["1"] < 0.5 and shares["2"] >= 0.5
    assert rows["2"][:7] == ["m", "2", "challenger", "d1", ids["2"], "6000", "1"]
    assert rows["2"][7] == f"{shares['2']:.2f} drift"
    assert rows["2"][8] == "accuracy 0.900 (realized)"


def test_the_console_script_prints_the_same_table(collector: tuple[str, Pipeline]) -> None:
    env = {**os.environ, "COLUMNS": "250"}
    env.pop("DRIFTLINE_TOKEN", None)
    result = subprocess.run(
        [sys.executable, "-m", "collector.cli", "status", "--url", collector[0]],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == _status("--url", collector[0]).stdout


def test_an_unreachable_collector_is_one_line_on_stderr_and_exit_2() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = _status("--url", url, "--timeout", "2")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"error: cannot reach the collector at {url}/api/v1/models: [Errno 111] Connection refused"
    ]


def test_a_server_that_is_not_a_collector_is_a_clear_error() -> None:
    with _not_a_collector(b"<html>hello</html>") as url:
        result = _status("--url", url)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: the collector at {url}/api/v1/models did not answer JSON"


@contextmanager
def _not_a_collector(body: bytes) -> Iterator[str]:
    """Some other web server, answering ``body`` to every GET."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def _authenticated(pipeline: Pipeline, auth: dict[str, str]) -> Iterator[str]:
    """The same collector's endpoints behind the server's own ``http.auth``."""
    endpoints = Endpoints(build_registry(MetricStore()), pipeline.status, lambda: None)
    settings = HttpConfig.model_validate({"auth": auth})
    server = HttpServer(endpoints, "127.0.0.1", 0, settings=settings)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def test_bearer_token_reaches_a_collector_with_authentication(
    collector: tuple[str, Pipeline], tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    with _authenticated(collector[1], {"mode": "bearer", "token": "s3cret-token"}) as url:
        refused = _status("--url", url)
        by_file = _status("--url", url, "--token-file", str(token_file))
        by_env = _status("--url", url, env={"DRIFTLINE_TOKEN": "s3cret-token"})
        wrong = _status("--url", url, env={"DRIFTLINE_TOKEN": "s3cret-tokeN"})
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        f"error: the collector at {url}/api/v1/models answered 401 Unauthorized "
        "(pass --token-file, $DRIFTLINE_TOKEN or --user)"
    )
    assert by_file.returncode == 0 and by_env.returncode == 0, by_file.stderr + by_env.stderr
    assert _rows(by_file.stdout)["1"][4].startswith("auto-") and _rows(by_env.stdout)["2"][5] == "6000"
    assert wrong.returncode == 2 and "answered 401" in wrong.stderr


def test_basic_credentials_reach_a_collector_with_authentication(
    collector: tuple[str, Pipeline], tmp_path: Path
) -> None:
    password_file = tmp_path / "password"
    password_file.write_text("pa ss\n")
    auth = {"mode": "basic", "username": "ops", "password": "pa ss"}
    with _authenticated(collector[1], auth) as url:
        by_file = _status("--url", url, "--user", "ops", "--password-file", str(password_file))
        by_env = _status("--url", url, "--user", "ops", env={"DRIFTLINE_PASSWORD": "pa ss"})
        wrong = _status("--url", url, "--user", "ops", env={"DRIFTLINE_PASSWORD": "nope"})
        bearer = _status("--url", url, env={"DRIFTLINE_TOKEN": "pa ss"})
    assert by_file.returncode == 0 and by_env.returncode == 0, by_file.stderr + by_env.stderr
    assert set(_rows(by_file.stdout)) == {"1", "2"} and set(_rows(by_env.stdout)) == {"1", "2"}
    assert wrong.returncode == 2 and "answered 401" in wrong.stderr
    assert bearer.returncode == 2 and "answered 401" in bearer.stderr


def test_authorization_header_sources() -> None:
    assert authorization_header(None, None, None, {}) is None
    assert authorization_header(None, None, None, {"DRIFTLINE_TOKEN": "t"}) == "Bearer t"
    assert authorization_header(None, "u", None, {"DRIFTLINE_PASSWORD": "p"}) == "Basic dTpw"
    with pytest.raises(DriftlineError, match=r"--user needs a password: --password-file or \$DRIFTLINE_PA"):
        authorization_header(None, "u", None, {})
    with pytest.raises(DriftlineError, match="--password-file needs --user"):
        authorization_header(None, None, Path("p"), {})
    with pytest.raises(DriftlineError, match="cannot read the credential"):
        authorization_header(Path("/nonexistent/token"), None, None, {})


def test_performance_prefers_realized_then_estimated() -> None:
    both = {"performance": {"realized": {"accuracy": 0.81}, "estimated": {"accuracy": 0.9}}}
    assert performance_text(both) == "accuracy 0.810 (realized)"
    estimated = {"performance": {"realized": None, "estimated": {"accuracy": 0.9, "f1": 0.7}}}
    assert performance_text(estimated) == "accuracy 0.900 (estimated)"
    assert performance_text({"performance": {"realized": {"mae": 1.25}}}) == "mae 1.250 (realized)"
    assert performance_text({}) == "-"


RULES = """
groups:
  - name: status-test
    rules:
      - alert: StatusTestDrift
        expr: driftline_dataset_drift_detected == 1
      - alert: StatusTestPlatform
        expr: vector(1)
"""


def test_alerts_firing_in_a_real_prometheus_are_shown_per_version(
    collector: tuple[str, Pipeline], tmp_path: Path
) -> None:
    prometheus_bin = require_binary("prometheus")
    url = collector[0]
    port = free_port()
    (tmp_path / "rules.yml").write_text(RULES)
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "rule_files: [rules.yml]\n"
        f"scrape_configs: [{{job_name: collector, static_configs: [{{targets: ['{url.removeprefix('http://')}']}}]}}]\n"
    )
    prometheus = f"http://127.0.0.1:{port}"
    processes = Processes(tmp_path)
    try:
        processes.start(
            "prometheus",
            [
                prometheus_bin,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
        )
        _wait_for(
            "both test alerts firing",
            functools.partial(_firing, prometheus, {("m", "2"), ("", "")}),
            timeout=60,
            diagnose=lambda: processes.log("prometheus"),
        )
        result = _status("--url", url, "--prometheus", prometheus)
    finally:
        processes.stop()
    assert result.returncode == 0, result.stderr
    rows = _rows(result.stdout)
    assert rows["2"][-1] == "StatusTestDrift" and rows["1"][-1] == "none"
    assert "other alerts firing: StatusTestPlatform" in result.stdout
    down = _status("--url", url, "--prometheus", prometheus, "--timeout", "2")
    assert down.returncode == 2
    assert down.stderr.startswith(f"error: cannot reach Prometheus at {prometheus}/api/v1/alerts")


def _firing(prometheus: str, keys: set[tuple[str, str]]) -> bool:
    try:
        return keys <= set(fetch_alerts(prometheus, 2.0))
    except DriftlineError:
        return False
