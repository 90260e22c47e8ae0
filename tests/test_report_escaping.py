"""Values from events never reach a report page as markup: header, index and Evidently's inline data."""

from __future__ import annotations

import dataclasses
from html.parser import HTMLParser
from urllib.parse import quote

from driftline.schema import Prediction, encode

from collector.config import Config
from collector.dlq import MemoryDeadLetterSink
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from exporters.html_report import HtmlReportWriter, neutralise_inline_data
from exporters.store import MetricStore
from tests.streams import predictions

IMG = "<img src=x onerror=alert(2)>"
SCRIPT = "<script>alert(document.domain)</script>"
BREAKOUT = "</script><img src=x onerror=alert(3)>"


class _Tags(HTMLParser):
    """The elements a browser's tokenizer would create (script bodies are raw text, as in a browser)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(page)
    parser.close()
    return parser.tags


def _writer(events: list[Prediction]) -> HtmlReportWriter:
    reports = HtmlReportWriter()
    store, dlq = MetricStore(), MemoryDeadLetterSink()
    pipeline = Pipeline(Config(), store, dlq, event_time=True, listeners=(reports,))
    pipeline.process([RawMessage(encode(e), "t", 0, i, 0.0) for i, e in enumerate(events)])
    return reports


def _render(events: list[Prediction], model_version: str) -> str:
    page = _writer(events).render("m", model_version)
    assert page is not None
    return page


def test_report_header_escapes_model_and_data_version() -> None:
    events = list(predictions(6000, seed=21, model_version=IMG, data_version=SCRIPT))
    page = _render(events, IMG)
    assert IMG not in page and SCRIPT not in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "&lt;script&gt;alert(document.domain)&lt;/script&gt;" in page
    assert not [attrs for tag, attrs in _tags(page) if tag == "img" or "onerror" in attrs]


def test_values_inside_evidently_inline_data_cannot_close_the_script() -> None:
    """A category value and a feature name that try to end Evidently's inline JSON stay inside it."""
    events = []
    for i, event in enumerate(predictions(6000, seed=22)):
        features = dict(event.features)
        features[BREAKOUT] = "x" if i % 2 else "y"
        features["c0"] = BREAKOUT if i % 3 == 0 else "<body><!--" if i % 3 == 1 else "plain"
        events.append(dataclasses.replace(event, features=features))
    page = _render(events, "1")
    assert "</script><img" not in page and "<body><!--" not in page
    assert "\\u003c/script>\\u003cimg src=x onerror=alert(3)>" in page  # the data is still there, inert
    assert not [attrs for tag, attrs in _tags(page) if tag == "img" or "onerror" in attrs]
    body = page.index("<body")
    assert page.index("Driftline: m / 1") > body  # the header went into the real body, not the data


def test_neutralise_inline_data_leaves_json_meaning_unchanged() -> None:
    line = '    var metric_0f = {"a": "</script><!-- x"};'
    assert neutralise_inline_data(line) == '    var metric_0f = {"a": "\\u003c/script>\\u003c!-- x"};'
    code = "<script>if (a < b) {}</script>"
    assert neutralise_inline_data(code) == code  # only Evidently's data lines are touched


def test_index_escapes_values_and_its_links_percent_encode_each_segment() -> None:
    version = "a/b?c#d <x>"
    page = _writer(list(predictions(6000, seed=23, model_version=version, data_version=SCRIPT))).index_page()
    for window in ("latest", "1"):
        assert f'href="/reports/m/{quote(version, safe="")}/{window}"' in page
    assert "<x>" not in page and "a/b?c#d &lt;x&gt;" in page
    assert SCRIPT not in page and "&lt;script&gt;alert(document.domain)&lt;/script&gt;" in page
