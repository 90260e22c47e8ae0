"""The report index and the kept reports: what is listed, what is kept, and the links that reach them."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from driftline.schema import Prediction, encode

from collector.config import Config, parse_config
from collector.dlq import MemoryDeadLetterSink
from collector.errors import ConfigError
from collector.http_server import Endpoints, HttpServer
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from detectors.window_report import WindowReport
from exporters.html_report import HtmlReportWriter
from exporters.prometheus import build_registry
from exporters.store import MetricStore
from tests.http_client import http_get
from tests.streams import predictions

ROOT = Path(__file__).resolve().parent.parent
SHIFTED = ("c2", "n1")
FLAGGED_WINDOWS = (2, 4, 5)
"""Windows of :func:`_stream` whose ``SHIFTED`` features drift; the others follow the reference."""


def _config(**reports: int) -> Config:
    drift = {"pooled_windows": 1}  # each window tested alone: a clean window after drift stays clean
    return parse_config({"defaults": {"drift": drift}, "reports": reports})


def _stream(windows: int, *, model_version: str = "1", data_version: str = "d1") -> list[Prediction]:
    """The 5000-event automatic reference, then ``windows`` windows of 1000 events."""
    events = list(predictions(5000, seed=31, model_version=model_version, data_version=data_version))
    for window in range(1, windows + 1):
        shifted = SHIFTED if window in FLAGGED_WINDOWS else ()
        start = 5000 + (window - 1) * 1000
        events += predictions(
            1000,
            seed=31 + window,
            start=start,
            shifted=shifted,
            model_version=model_version,
            data_version=data_version,
        )
    return events


def _feed(writer: HtmlReportWriter, config: Config, events: Sequence[Prediction]) -> Pipeline:
    pipeline = Pipeline(config, MetricStore(), MemoryDeadLetterSink(), event_time=True, listeners=(writer,))
    pipeline.process([RawMessage(encode(e), "t", 0, i, 0.0) for i, e in enumerate(events)])
    return pipeline


def _rows(index: str) -> list[list[str]]:
    """The index's table rows as cell texts (tags stripped)."""
    rows = re.findall(r"<tr>(.*?)</tr>", index, re.DOTALL)
    cells = [re.findall(r"<td>(.*?)</td>", row, re.DOTALL) for row in rows]
    return [[re.sub(r"<[^>]+>", "", cell).strip() for cell in row] for row in cells if row]


def test_index_lists_windows_newest_first_and_links_only_kept_reports() -> None:
    writer = HtmlReportWriter(_config(keep_flagged=2, index_windows=5).reports)
    _feed(writer, _config(), _stream(7))
    index = writer.index_page()
    rows = _rows(index)
    assert [row[0] for row in rows] == [
        "window 7",
        "window 6 (not kept)",
        "window 5",
        "window 4",
        "window 3 (not kept)",
    ]
    assert [row[6] for row in rows] == ["none", "none", "c2, n1", "c2, n1", "none"]
    references = {row[4] for row in rows}
    assert {row[3] for row in rows} == {"d1"}
    assert len(references) == 1 and references.pop().startswith("auto-")  # a hash of the reference's data
    assert {row[2] for row in rows} == {"1000"}
    closed = [row[1] for row in rows]
    assert closed == sorted(closed, reverse=True) and all(c.endswith(" UTC") for c in closed)
    links = re.findall(r'href="([^"]+)"', index)
    assert links == ["/reports/m/1/latest", "/reports/m/1/7", "/reports/m/1/5", "/reports/m/1/4"]


def test_kept_reports_are_the_last_flagged_windows_and_the_latest() -> None:
    writer = HtmlReportWriter(_config(keep_flagged=2).reports)
    _feed(writer, _config(), _stream(7))
    kept = {window: writer.render("m", "1", window) for window in range(1, 8)}
    assert [window for window, page in kept.items() if page is not None] == [4, 5, 7]
    page = kept[4]
    assert page is not None and "Driftline: m / 1, window 4 (1000 events" in page
    assert '<span id="driftline-flagged">c2, n1</span>' in page
    latest = writer.render("m", "1")
    assert latest is not None and "Driftline: m / 1, window 7 (1000 events" in latest
    assert writer.render("m", "2") is None and writer.render("other", "1", 4) is None


def test_no_flagged_window_kept_when_keep_flagged_is_zero() -> None:
    writer = HtmlReportWriter(_config(keep_flagged=0).reports)
    _feed(writer, _config(), _stream(5))
    assert [w for w in range(1, 6) if writer.render("m", "1", w) is not None] == [5]
    assert re.findall(r'href="([^"]+)"', writer.index_page()) == ["/reports/m/1/latest", "/reports/m/1/5"]


def test_the_version_whose_last_window_is_oldest_is_forgotten_beyond_max_versions() -> None:
    writer = HtmlReportWriter(_config(max_versions=2).reports)
    reports: list[WindowReport] = []
    _feed(reports.append, _config(), _stream(1))
    (report,) = reports
    for version in ("1", "2", "1", "3"):
        writer(dataclasses.replace(report, model_version=version, index=len(reports) + 1))
        reports.append(report)
    listed = re.findall(r"<h2>m / (\w+)</h2>", writer.index_page())
    assert listed == ["1", "3"]
    assert writer.render("m", "2") is None and writer.render("m", "1") is not None


def test_a_version_counting_its_windows_from_one_again_starts_a_new_list() -> None:
    """A retired version (or one whose partition moved away and back) restarts at window 1."""
    reports: list[WindowReport] = []
    _feed(reports.append, _config(), _stream(3))
    writer = HtmlReportWriter()
    for report in (*reports, reports[0]):
        writer(report)
    assert [row[0] for row in _rows(writer.index_page())] == ["window 1"]


@contextmanager
def _serving(writer: HtmlReportWriter, pipeline: Pipeline) -> Iterator[HttpServer]:
    endpoints = Endpoints(build_registry(pipeline.store), pipeline.status, lambda: None, writer)
    server = HttpServer(endpoints, "127.0.0.1", 0).start()
    try:
        yield server
    finally:
        server.stop()


def test_reports_by_window_over_http_and_the_links_of_alerts_and_dashboard() -> None:
    writer = HtmlReportWriter(_config(keep_flagged=1).reports)
    events = _stream(5, model_version="3")
    pipeline = _feed(writer, _config(), [dataclasses.replace(e, model="credit-risk") for e in events])
    with _serving(writer, pipeline) as server:
        status, content_type, index = http_get(server.url + "/reports/")
        assert status == 200 and content_type.startswith("text/html")
        assert 'href="/reports/credit-risk/3/5"' in index and 'href="/reports/credit-risk/3/4"' not in index
        flagged = http_get(server.url + "/reports/credit-risk/3/5")
        assert flagged[0] == 200 and "window 5 (1000 events" in flagged[2]
        assert http_get(server.url + "/reports/credit-risk/3/4")[0] == 404  # flagged, but beyond keep_flagged
        assert http_get(server.url + "/reports/credit-risk/3/9")[0] == 404
        latest = server.url + "/reports/credit-risk/3/latest"
        assert _alert_report_url(server.url) == _dashboard_report_url(server.url) == latest
        status, _, page = http_get(latest)
        assert status == 200 and "Driftline: credit-risk / 3, window 5 (1000 events" in page


def _alert_report_url(collector: str) -> str:
    """The ``report_url`` annotation of the drift alert, as Prometheus expands it for credit-risk/3."""
    rules = yaml.safe_load((ROOT / "deploy/prometheus/rules/driftline.rules.yml").read_text())
    urls = {
        rule["annotations"]["report_url"]
        for group in rules["groups"]
        for rule in group["rules"]
        if "report_url" in rule.get("annotations", {})
    }
    assert len(urls) == 1, urls
    url = urls.pop().replace("{{ $labels.model }}", "credit-risk").replace("{{ $labels.model_version }}", "3")
    assert url.startswith("http://localhost:9108/")
    return url.replace("http://localhost:9108", collector)


def _dashboard_report_url(collector: str) -> str:
    """The Model dashboard's report link (its header link and its panel) set to credit-risk/3 here."""
    dashboard = json.loads((ROOT / "dashboards/json/model.json").read_text())
    panels = " ".join(panel.get("options", {}).get("content", "") for panel in dashboard["panels"])
    links = [link.get("url", "") for link in dashboard["links"]]
    urls = set(re.findall(r"\$\{collector_url\}/reports/[^)\s]+", " ".join([panels, *links])))
    assert len(urls) == 1, urls
    url = urls.pop()
    for variable, value in {"collector_url": collector, "model": "credit-risk", "model_version": "3"}.items():
        url = url.replace("${" + variable + "}", value)
    return url


def test_a_window_end_no_calendar_holds_is_listed_as_its_number() -> None:
    """Replays take the time from events: a time beyond datetime's range must not break the listener."""
    reports: list[WindowReport] = []
    _feed(reports.append, _config(), _stream(1))
    writer = HtmlReportWriter()
    for index, end in enumerate((1e20, float("nan"), -1e18), start=1):
        writer(dataclasses.replace(reports[0], index=index, end=end))
    assert [row[1] for row in _rows(writer.index_page())] == ["-1e+18", "nan", "1e+20"]


def test_report_bounds_are_validated_with_the_key_named() -> None:
    with pytest.raises(ConfigError) as error:
        parse_config({"reports": {"keep_flagged": -1, "index_windows": 0, "max_versions": 10_001, "keep": 3}})
    lines = str(error.value).splitlines()[1:]
    assert [line.split(":")[0].strip() for line in lines] == [
        "reports.keep_flagged",
        "reports.index_windows",
        "reports.max_versions",
        "reports.keep",
    ]
