"""What the report index costs: on the hot path per window, and per view at its full bounds.

A real pipeline evaluates seeded windows (1,000 events, 12 features, against a
5,000-event reference). The hot-path cost is the report writer's listener
call per closed window (a one-line summary, keeping the report) against the
pipeline's own time for the same window (``--windows`` windows). The view
cost is ``GET /reports/`` with the writer filled to the default bounds
(``max_versions`` versions x ``index_windows`` windows) against ``GET
/metrics`` on the same server, each ``--views`` times sequentially. It prints
medians and the ratio of each to its baseline.

Run: ``.venv/bin/python bench/report_index.py`` (one size: ``--full`` changes nothing)
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
import urllib.request

import harness
from driftline.schema import encode

from collector.config import Config
from collector.dlq import MemoryDeadLetterSink
from collector.http_server import Endpoints, HttpServer
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from detectors.window_report import WindowReport
from exporters.html_report import HtmlReportWriter
from exporters.prometheus import build_registry
from exporters.store import MetricStore
from tests.streams import predictions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, help="windows of 1,000 events (20)")
    parser.add_argument("--views", type=int, help="sequential views of each page (30)")
    one_size = {"windows": 20, "views": 30}
    args, chosen = harness.parse(parser, quick=one_size, full=one_size)
    run = harness.BenchRun("report_index", args, chosen)

    reports: list[WindowReport] = []
    store = MetricStore()
    pipeline = Pipeline(Config(), store, MemoryDeadLetterSink(), event_time=True, listeners=(reports.append,))
    events = [encode(e) for e in predictions(5000 + args.windows * 1000, seed=5, shifted=())]
    messages = [RawMessage(line, "t", 0, i, 0.0) for i, line in enumerate(events)]
    pipeline.process(messages[:5000])
    per_window = []
    for start in range(5000, len(messages), 1000):
        began = time.perf_counter()
        pipeline.process(messages[start : start + 1000])
        per_window.append(time.perf_counter() - began)

    writer = HtmlReportWriter()
    listener = []
    for report in reports:
        began = time.perf_counter()
        writer(report)
        listener.append(time.perf_counter() - began)
    _print(run, "report writer per window", listener, "pipeline per window", per_window)

    _fill(writer, reports[-1])
    server = HttpServer(Endpoints(build_registry(store), pipeline.status, lambda: None, writer), port=0)
    server.start()
    try:
        metrics = [_get(server.url + "/metrics") for _ in range(args.views)]
        index = [_get(server.url + "/reports/") for _ in range(args.views)]
    finally:
        server.stop()
    bounds = f"{writer.settings.max_versions} x {writer.settings.index_windows} windows"
    _print(run, f"GET /reports/ ({bounds})", index, "/metrics", metrics)
    run.write()


def _fill(writer: HtmlReportWriter, report: WindowReport) -> None:
    """Every version and index line the default bounds allow (the tables shared: this is not memory)."""
    settings = writer.settings
    for version in range(settings.max_versions):
        for index in range(1, settings.index_windows + 1):
            writer(dataclasses.replace(report, model_version=str(version), index=index))


def _get(url: str) -> float:
    began = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as answer:
        answer.read()
    return time.perf_counter() - began


def _print(
    run: harness.BenchRun, name: str, samples: list[float], baseline_name: str, baseline: list[float]
) -> None:
    median, base = statistics.median(samples), statistics.median(baseline)
    run.compare(f"{name}, median", median * 1e3, base * 1e3, f"{baseline_name}, median", "ms")


if __name__ == "__main__":
    main()
