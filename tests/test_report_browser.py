"""A person's view of the reports: headless Chromium opens the index and a drifted window's report.

The collector is the real pipeline and HTTP server in-process, fed the demo's
synthetic credit model with drift injected into ``income``, ``utilization``
and ``purpose`` from window 5. Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by Selenium, no driver download) follows the
index's link to window 5, waits for Evidently's scripts to draw the drift
table under the page's ``Content-Security-Policy: sandbox allow-scripts``, and
reads the browser's console log. The screenshot goes to ``$DRIFTLINE_SCREENSHOTS``
when set (the README's image: docs/images/), else to the test's temporary folder.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from driftline.schema import Prediction, encode

from collector.config import parse_config
from collector.demo import DATA_VERSION, INJECTED, MODEL, MODEL_VERSION, CreditModel
from collector.dlq import MemoryDeadLetterSink
from collector.http_server import Endpoints, HttpServer
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from exporters.html_report import HtmlReportWriter
from exporters.prometheus import build_registry
from exporters.store import MetricStore
from tests.conftest import require

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
REFERENCE, WINDOW, WINDOWS, DRIFT_FROM = 5000, 1000, 6, 5
RENDER_SECONDS = 120.0
"""How long the report may take: the server renders it with Evidently, then the browser draws it."""


def _events(seed: int) -> Iterator[Prediction]:
    model = CreditModel(seed)
    for i in range(REFERENCE + WINDOWS * WINDOW):
        x = model.applicant(drifted=i >= REFERENCE + (DRIFT_FROM - 1) * WINDOW)
        p = model.default_probability(x)
        yield Prediction(
            event_id=f"e{i}",
            model=MODEL,
            model_version=MODEL_VERSION,
            data_version=DATA_VERSION,
            features=x,
            prediction=int(p >= 0.5),
            probabilities={"0": 1.0 - p, "1": p},
            timestamp=1_790_000_000.0 + i * 0.01,
            latency_ms=12.0,
            segments={"region": str(x["region"])},
        )


@pytest.fixture
def collector() -> Iterator[str]:
    """The URL of a collector that has evaluated six windows of the credit model."""
    config = parse_config({"defaults": {"drift": {"pooled_windows": 1}}})
    writer, store = HtmlReportWriter(config.reports), MetricStore()
    pipeline = Pipeline(config, store, MemoryDeadLetterSink(), event_time=True, listeners=(writer,))
    pipeline.process([RawMessage(encode(e), "t", 0, i, 0.0) for i, e in enumerate(_events(seed=7))])
    server = HttpServer(Endpoints(build_registry(store), pipeline.status, lambda: None, writer), port=0)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Chromium through the system chromedriver, keeping the console log."""
    require(CHROMIUM.exists() and CHROMEDRIVER.exists(), "chromium and chromium-driver are not installed")
    webdriver = _webdriver()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(RENDER_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()


def test_console_errors_reach_the_log_this_test_reads(browser: Any) -> None:
    """The check below can fail: a page whose script throws leaves a SEVERE entry."""
    browser.get("data:text/html,<script>throw new Error('driftline-probe')</script>")
    assert any("driftline-probe" in entry["message"] for entry in _errors(browser))


def test_index_and_a_drifted_window_report_in_a_browser(collector: str, browser: Any, tmp_path: Path) -> None:
    browser.get(collector + "/reports/")
    table = browser.find_elements("css selector", "tbody tr")
    rows = {row.find_element("tag name", "td").text: row for row in table}
    kept = {WINDOWS, DRIFT_FROM}  # the latest and the flagged ones
    assert list(rows) == [f"window {n}" + ("" if n in kept else " (not kept)") for n in range(WINDOWS, 0, -1)]
    assert _flags(rows[f"window {DRIFT_FROM}"]) == ", ".join(sorted(INJECTED))
    assert _flags(rows["window 4 (not kept)"]) == "none"
    rows[f"window {DRIFT_FROM}"].find_element("tag name", "a").click()

    assert browser.current_url == f"{collector}/reports/{MODEL}/{MODEL_VERSION}/{DRIFT_FROM}"
    assert f"window {DRIFT_FROM} ({WINDOW} events" in browser.find_element("id", "driftline-header").text
    assert _flags(browser.find_element("id", "driftline-flagged")) == ", ".join(sorted(INJECTED))
    verdicts = _wait_for_drift_table(browser)
    assert {feature for feature, verdict in verdicts.items() if verdict == "Detected"} == set(INJECTED)
    assert len(verdicts) == 10  # Evidently's first page of rows: its scripts ran
    assert _wait_for_charts(browser, 2 * len(verdicts)) == 2 * len(verdicts)  # reference and current
    assert browser.execute_script("return window.origin") == "null"  # it all ran sandboxed (the CSP)
    assert _errors(browser) == []
    screenshot = Path(os.environ.get("DRIFTLINE_SCREENSHOTS", tmp_path)) / "report.png"
    browser.set_window_size(1400, 1500)
    assert browser.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 50_000
    browser.find_element("link text", "All reports").click()
    assert browser.current_url == collector + "/reports/" and browser.title == "Driftline reports"


def _flags(element: Any) -> str:
    """The flagged features of an index row or of the report header (outputs, after ``;``, left out)."""
    cells = element.find_elements("tag name", "td")
    text: str = (cells[-1] if cells else element).text
    return text.split(";")[0]


def _wait_for_drift_table(driver: Any) -> dict[str, str]:
    deadline = time.monotonic() + RENDER_SECONDS
    while not (verdicts := _drift_table(driver)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return verdicts


def _wait_for_charts(driver: Any, expected: int) -> int:
    """How many of the page's canvases hold a drawing (differ from a blank canvas of their size)."""
    script = (
        "return Array.from(document.querySelectorAll('canvas')).filter(canvas => {"
        " const blank = document.createElement('canvas');"
        " blank.width = canvas.width; blank.height = canvas.height;"
        " return canvas.width > 0 && canvas.toDataURL() !== blank.toDataURL(); }).length"
    )
    deadline = time.monotonic() + RENDER_SECONDS
    while (drawn := int(driver.execute_script(script))) < expected and time.monotonic() < deadline:
        time.sleep(0.5)
    return drawn


def _drift_table(driver: Any) -> dict[str, str]:
    """Evidently's drift table as drawn in the page: column name -> ``Detected`` / ``Not Detected``."""
    cells: list[list[str]] = driver.execute_script(
        "return Array.from(document.querySelectorAll('tbody tr'))"
        ".map(row => Array.from(row.querySelectorAll('td')).map(cell => cell.innerText.trim()))"
    )
    verdicts = {}
    for row in cells:
        verdict = next((cell for cell in row if cell in {"Detected", "Not Detected"}), None)
        names = [cell for cell in row if cell]
        if verdict is not None and names:
            verdicts[names[0]] = verdict
    return verdicts


def _errors(driver: Any) -> list[dict[str, Any]]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def _webdriver() -> Any:
    """Selenium's webdriver module (the dev extra); missing: skipped, or failed under CI=true."""
    try:
        return importlib.import_module("selenium.webdriver")
    except ImportError:
        require(False, "selenium is not installed: pip install -e '.[dev]'")
