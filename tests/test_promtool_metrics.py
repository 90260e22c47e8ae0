"""`promtool check metrics` finds nothing to complain about in the exposition of the
whole catalog: a store holding series of every metric, as /metrics would show it."""

from __future__ import annotations

import subprocess

import pytest
from prometheus_client import generate_latest

from collector.system_metrics import SystemMetrics
from exporters.catalog import CATALOG
from exporters.prometheus import build_registry
from exporters.store import MetricStore
from tests.conftest import require_binary

pytestmark = pytest.mark.integration


def every_metric_store() -> MetricStore:
    store = MetricStore()
    for metric in CATALOG:
        for series in ("a", "b"):
            labels = {name: f"{name}-{series}" for name in metric.labels}
            if metric.kind == "gauge":
                store.set(metric.name, labels, 0.25)
            elif metric.kind == "counter":
                store.inc(metric.name, labels, 12)
            else:
                for value in (0.0, *metric.buckets, metric.buckets[-1] * 2):
                    store.observe(metric.name, labels, value)
    SystemMetrics(store).update()  # real psutil values on top
    return store


def promtool_check(exposition: bytes) -> subprocess.CompletedProcess[str]:
    promtool = require_binary("promtool")
    return subprocess.run(
        [promtool, "check", "metrics"],
        input=exposition.decode(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_promtool_accepts_every_catalog_metric() -> None:
    exposition = generate_latest(build_registry(every_metric_store()))
    text = exposition.decode()
    for metric in CATALOG:
        assert f"# TYPE {metric.name} {metric.kind}" in text
    result = promtool_check(exposition)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == ""


def test_promtool_does_complain_about_a_bad_name() -> None:
    """The check above can fail: promtool flags a counter-looking gauge."""
    bad = b"# HELP driftline_bad_total A gauge that ends in _total.\n" \
          b"# TYPE driftline_bad_total gauge\ndriftline_bad_total 1.0\n"
    result = promtool_check(bad)
    assert result.returncode != 0
    assert "driftline_bad_total" in result.stdout + result.stderr
