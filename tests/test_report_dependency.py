"""Reports work in the plain install, and an install without Evidently says how to fix it."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest
from driftline.schema import encode

from collector.config import Config
from collector.dlq import MemoryDeadLetterSink
from collector.http_server import Endpoints, HttpServer
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from exporters.evidently_preset import EVIDENTLY_INSTALL
from exporters.html_report import HtmlReportWriter
from exporters.prometheus import build_registry
from exporters.store import MetricStore
from tests.http_client import http_get as _get
from tests.streams import predictions

ROOT = Path(__file__).resolve().parent.parent


def test_evidently_is_a_runtime_dependency_pinned_as_the_install_hint_says() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = [re.sub(r"\s", "", requirement) for requirement in project["dependencies"]]
    hinted = re.findall(r"'([^']+)'", EVIDENTLY_INSTALL)
    assert hinted == ["evidently==0.7.23", "pandas<3"]
    assert "evidently==0.7.23" in runtime
    assert any(r.startswith("pandas") and "<3" in r for r in runtime)
    assert not any("evidently" in r for r in project["optional-dependencies"]["dev"])


def test_the_image_installs_the_runtime_dependencies() -> None:
    """The Dockerfile (which compose builds) installs the service with its dependencies."""
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert re.search(r"^RUN pip install \. ", dockerfile, re.MULTILINE)
    assert "--no-deps" not in dockerfile
    assert "dockerfile: deploy/Dockerfile" in (ROOT / "docker-compose.yml").read_text()


def test_a_report_without_evidently_answers_503_naming_the_pip_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, reports = MetricStore(), HtmlReportWriter()
    pipeline = Pipeline(Config(), store, MemoryDeadLetterSink(), event_time=True, listeners=(reports,))
    events = predictions(6000, seed=14)
    pipeline.process([RawMessage(encode(e), "t", 0, i, 0.0) for i, e in enumerate(events)])
    server = HttpServer(
        Endpoints(build_registry(store), pipeline.status, lambda: None, reports), "127.0.0.1", 0
    ).start()
    try:
        for module in ("evidently", "evidently.presets"):
            monkeypatch.setitem(sys.modules, module, None)  # what an install without Evidently sees
        status, content_type, page = _get(server.url + "/reports/m/1/latest")
        assert status == 503 and content_type.startswith("text/html")
        assert "pip install &#39;evidently==0.7.23&#39; &#39;pandas&lt;3&#39;" in page  # Jinja2-escaped
        assert _get(server.url + "/metrics")[0] == 200
        monkeypatch.undo()
        status, _, page = _get(server.url + "/reports/m/1/latest")
        assert status == 200 and "Driftline: m / 1, window 1" in page
    finally:
        server.stop()
