"""The HTTP endpoints on a real socket, and ``driftline demo`` as a user runs it."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from driftline.schema import encode

from collector.config import Config
from collector.dlq import MemoryDeadLetterSink
from collector.http_server import Endpoints, HttpServer
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from exporters.html_report import HtmlReportWriter
from exporters.prometheus import build_registry
from exporters.store import MetricStore
from tests.conftest import require_binary
from tests.http_client import http_get as _get
from tests.streams import predictions


def test_endpoints_serve_metrics_health_models_and_reports() -> None:
    store, reports = MetricStore(), HtmlReportWriter()
    pipeline = Pipeline(Config(), store, MemoryDeadLetterSink(), event_time=True, listeners=(reports,))
    reason: dict[str, str | None] = {"value": "not_joined: not yet a member of consumer group g"}
    endpoints = Endpoints(build_registry(store), pipeline.status, lambda: reason["value"], reports)
    server = HttpServer(endpoints, "127.0.0.1", 0).start()
    try:
        assert _get(server.url + "/healthz")[0] == 200
        assert _get(server.url + "/readyz")[::2] == (
            503, "not ready: not_joined: not yet a member of consumer group g\n"
        )
        reason["value"] = None
        assert _get(server.url + "/readyz")[::2] == (200, "ready\n")
        assert _get(server.url + "/reports/m/1/latest")[0] == 404
        messages = [RawMessage(encode(e), "t", 0, i, 0.0) for i, e in enumerate(predictions(6000, seed=12))]
        pipeline.process(messages)
        status, content_type, body = _get(server.url + "/metrics")
        assert status == 200 and content_type.startswith("text/plain")
        assert 'driftline_windows_total{model="m",model_version="1"} 1.0' in body
        models = json.loads(_get(server.url + "/api/v1/models")[2])["models"]
        assert models[0]["model"] == "m" and models[0]["windows_evaluated"] == 1
        n3 = models[0]["last_window"]["features"]["n3"]
        assert n3["flag_value"] >= 0.0 and n3["threshold"] > 0.0 and isinstance(n3["drifted"], bool)
        assert n3["pooled_flag_value"] is None and n3["pooled_threshold"] is None  # one window, no pool yet
        assert models[0]["thresholds"]["n3"]["pooled_windows"] == 4
        index = _get(server.url + "/reports/")[2]
        assert 'href="/reports/m/1/latest"' in index
        status, content_type, page = _get(server.url + "/reports/m/1/latest")
        assert status == 200 and content_type.startswith("text/html")
        assert "Driftline: m / 1, window 1" in page and "n3" in page and len(page) > 100_000
        assert _get(server.url + "/nope")[0] == 404
    finally:
        server.stop()
        server.stop()


def test_scrape_of_a_running_collector_passes_promtool() -> None:
    promtool = require_binary("promtool")
    store = MetricStore()
    pipeline = Pipeline(Config(), store, MemoryDeadLetterSink(), event_time=True)
    pipeline.process(
        [RawMessage(encode(e), "t", 0, i, 0.0) for i, e in enumerate(predictions(6000, seed=13))]
    )
    server = HttpServer(
        Endpoints(build_registry(store), pipeline.status, lambda: None), "127.0.0.1", 0
    ).start()
    try:
        scrape = _get(server.url + "/metrics")[2]
    finally:
        server.stop()
    result = subprocess.run([promtool, "check", "metrics"], input=scrape.encode(), capture_output=True)
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), result.stderr


def test_demo_detects_exactly_the_injected_features() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "collector.cli", "demo", "--duration", "20", "--http-port", "0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    reported = [line for line in lines if line.startswith("Drifted features reported by the collector:")]
    assert reported == ["Drifted features reported by the collector: income, purpose, utilization"]
    assert "Drift first detected in window 5 (injected from window 5)." in lines
    assert "window 10: 1000 events" in result.stdout
    assert "15000 predictions sent, 15000 processed, 10 windows evaluated, 0 events rejected" in result.stdout
    assert "not delivered" not in result.stdout
    realized, estimated = (
        _performance(lines, f"{source} performance") for source in ("Realized", "Estimated")
    )
    assert set(realized) == set(estimated) == {"accuracy", "f1", "roc_auc"}
    assert all(0.0 <= value <= 1.0 for value in (*realized.values(), *estimated.values()))
    # the labels follow the model's own probabilities: CBPE's premise holds, and there is no concept drift
    assert abs(realized["accuracy"] - estimated["accuracy"]) < 0.05
    assert "Concept drift (adwin, gap_test): none flagged" in lines
    next_steps = [line.strip().split("  ")[0] for line in lines if line.startswith("  http://")]
    assert [url.rsplit(":", 1)[1].split("/", 1)[1] for url in next_steps] == [
        "api/v1/models",
        "reports/",
        "metrics",
    ]


def _performance(lines: list[str], prefix: str) -> dict[str, float]:
    """``metric value`` pairs of the demo's summary line that starts with ``prefix``."""
    line = next(line for line in lines if line.startswith(prefix))
    return {name: float(value) for name, value in re.findall(r"([a-z_0-9]+) (\d\.\d+)", line)}
