"""How much report renders and a burst of clients slow a Prometheus scrape of the collector.

One server on loopback holds a real pipeline with one evaluated window (6,000
seeded events, 12 features). The baseline is ``--scrapes`` sequential
``GET /metrics`` on the idle server; then the same scrapes while
``--renders`` real Evidently report renders are running (they run on the
render worker, so the scrape threads only share the interpreter with them),
and ``--clients`` concurrent ``GET /healthz`` each on its own connection.
It prints the median and p99 of each, and the ratio of each to the idle
baseline.

Run: ``.venv/bin/python bench/http_scrapes.py`` (one size: ``--full`` changes nothing)
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import harness
from driftline.schema import encode

from collector.config import Config, HttpConfig
from collector.dlq import MemoryDeadLetterSink
from collector.http_server import Endpoints, HttpServer
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from exporters.html_report import HtmlReportWriter
from exporters.prometheus import build_registry
from exporters.store import MetricStore
from tests.streams import predictions


def _get(url: str) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        response.read()
    return time.perf_counter() - start


def _summary(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    return statistics.median(ordered), ordered[max(0, int(0.99 * len(ordered)) - 1)]


def _scrapes(url: str, count: int) -> list[float]:
    return [_get(url + "/metrics") for _ in range(count)]


def _during(background: Callable[[], object], measure: Callable[[], list[float]]) -> list[float]:
    """``measure()`` while ``background()`` runs; fails if the background ended first."""
    worker = threading.Thread(target=background)
    worker.start()
    time.sleep(0.2)  # the renders have started
    try:
        latencies = measure()
        if not worker.is_alive():
            raise SystemExit("the renders ended before the scrapes did: raise --renders")
        return latencies
    finally:
        worker.join()


def _report(run: harness.BenchRun, name: str, latencies: list[float], baseline: list[float]) -> None:
    (median, p99), (base_median, base_p99) = _summary(latencies), _summary(baseline)
    run.compare(f"{name}, median", median * 1e3, base_median * 1e3, "idle", "ms")
    run.compare(f"{name}, p99", p99 * 1e3, base_p99 * 1e3, "idle", "ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, help="sequential scrapes (50)")
    parser.add_argument("--renders", type=int, help="concurrent report renders (2)")
    parser.add_argument("--clients", type=int, help="concurrent /healthz clients (200)")
    one_size = {"scrapes": 50, "renders": 2, "clients": 200}
    args, chosen = harness.parse(parser, quick=one_size, full=one_size)
    run = harness.BenchRun("http_scrapes", args, chosen)

    store, reports = MetricStore(), HtmlReportWriter()
    pipeline = Pipeline(Config(), store, MemoryDeadLetterSink(), event_time=True, listeners=(reports,))
    pipeline.process([RawMessage(encode(e), "t", 0, i, 0.0) for i, e in enumerate(predictions(6000, seed=5))])
    endpoints = Endpoints(build_registry(store), pipeline.status, lambda: None, reports)
    settings = HttpConfig(report_workers=args.renders)
    server = HttpServer(endpoints, "127.0.0.1", 0, settings=settings).start()
    try:
        _scrapes(server.url, 5)  # warm up
        idle = _scrapes(server.url, args.scrapes)
        idle_health = [_get(server.url + "/healthz") for _ in range(args.scrapes)]

        def renders() -> None:
            with ThreadPoolExecutor(max_workers=args.renders) as pool:
                list(pool.map(_get, [server.url + "/reports/m/1/latest"] * args.renders))

        busy = _during(renders, lambda: _scrapes(server.url, args.scrapes))
        with ThreadPoolExecutor(max_workers=args.clients) as pool:
            burst = list(pool.map(_get, [server.url + "/healthz"] * args.clients))
    finally:
        server.stop()

    _report(run, f"/metrics during {args.renders} report renders", busy, idle)
    _report(run, f"/healthz, {args.clients} concurrent clients", burst, idle_health)
    run.write()

if __name__ == "__main__":
    main()
