"""Champion and challenger: roles on driftline_model_info, accuracy counts per version, the grouped
view on a real socket, and DriftlineChallengerWorse in a real Prometheus on the shipped rules."""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from driftline.schema import Label, Prediction, encode

from collector.config import parse_config
from collector.dlq import MemoryDeadLetterSink
from collector.http_server import Endpoints, HttpServer
from collector.pipeline import Pipeline
from collector.roles import assign_roles, version_key
from collector.sources import RawMessage
from dashboards import panel_queries
from exporters.prometheus import build_registry
from exporters.store import MetricStore
from tests.conftest import free_port, require_binary
from tests.http_client import http_get
from tests.streams import predictions, shadow_regressors, shadow_versions
from tests.test_alerting_e2e import Processes, _prometheus_config, _query, _ready, _wait_for

DASHBOARDS = Path(__file__).resolve().parent.parent / "dashboards" / "json"
SMALL = {"defaults": {"reference": {"auto_events": 1000}, "window": {"events": 1000}}}


def _messages(events: list[Prediction | Label]) -> list[RawMessage]:
    return [RawMessage(encode(e), "t", 0, i, 0.0) for i, e in enumerate(events)]


def _info(store: MetricStore, model: str) -> dict[str, str]:
    """model_version -> role of every driftline_model_info series of ``model``."""
    (info,) = [m for m in store.snapshot() if m.metric.name == "driftline_model_info"]
    found = [dict(zip(info.metric.labels, key, strict=True)) for key in info.samples]
    found = [labels for labels in found if labels["model"] == model]
    assert len(found) == len({s["model_version"] for s in found}), found  # one series per version
    return {s["model_version"]: s["role"] for s in found}


def test_the_oldest_version_by_number_is_champion_unless_configured() -> None:
    assert assign_roles({"10", "9"}, None) == {"9": "champion", "10": "challenger"}
    assert assign_roles({"v1.10", "v1.9", "v2"}, None) == {
        "v1.9": "champion",
        "v1.10": "challenger",
        "v2": "challenger",
    }
    assert assign_roles({"3", "4"}, "4") == {"3": "challenger", "4": "champion"}
    assert assign_roles({"3", "4"}, "7") == {"3": "champion", "4": "challenger"}  # 7 is not live
    assert assign_roles(set(), "7") == {}
    assert sorted(["2026-10", "2026-9", "a", "10", "9"], key=version_key) == [
        "9",
        "10",
        "2026-9",
        "2026-10",
        "a",
    ]


def test_roles_follow_versions_as_they_come_and_retire() -> None:
    config = parse_config({**SMALL, "defaults": {**SMALL["defaults"], "retire_after_seconds": 100}})
    store = MetricStore()
    pipeline = Pipeline(config, store, MemoryDeadLetterSink(), event_time=True)
    pipeline.process(_messages(list(predictions(10, seed=1, model_version="10"))))
    assert _info(store, "m") == {"10": "champion"}
    pipeline.process(_messages(list(predictions(10, seed=2, model_version="9"))))
    assert _info(store, "m") == {"9": "champion", "10": "challenger"}
    assert {s["model_version"]: s["role"] for s in pipeline.status()} == {"9": "champion", "10": "challenger"}
    # only version 10 keeps sending, 200 s later: 9 retires and 10 becomes the champion
    pipeline.process(_messages(list(predictions(10, seed=3, model_version="10", start=20_000))))
    assert _info(store, "m") == {"10": "champion"}


def test_a_configured_champion_keeps_its_role() -> None:
    config = parse_config({"models": {"m": {"champion": "10"}}})
    store = MetricStore()
    pipeline = Pipeline(config, store, MemoryDeadLetterSink(), event_time=True)
    for version in ("9", "10", "11"):
        pipeline.process(_messages(list(predictions(5, seed=4, model_version=version))))
    assert _info(store, "m") == {"9": "challenger", "10": "champion", "11": "challenger"}


def _expected_accuracy(events: list[Prediction | Label], version: str, first: int) -> tuple[int, int]:
    """(scored, correct) of ``version``'s labelled predictions from row ``first`` on."""
    truth = {e.event_id: e.label for e in events if isinstance(e, Label)}
    scored = [
        e for e in events if isinstance(e, Prediction) and e.model_version == version
    ][first:]
    return len(scored), sum(int(e.prediction == truth[e.event_id]) for e in scored)


def test_counts_per_version_and_the_grouped_view_on_a_real_socket() -> None:
    store = MetricStore()
    pipeline = Pipeline(parse_config(SMALL), store, MemoryDeadLetterSink(), event_time=True)
    events = shadow_versions(2000, seed=5, error_rates={"3": 0.1, "4": 0.3})
    pipeline.process(_messages(events))
    server = HttpServer(Endpoints(build_registry(store), pipeline.status, lambda: None), "127.0.0.1", 0)
    server.start()
    try:
        status, content_type, body = http_get(server.url + "/api/v1/model-groups")
        models = json.loads(http_get(server.url + "/api/v1/models")[2])["models"]
    finally:
        server.stop()
    assert status == 200 and content_type == "application/json"
    (group,) = json.loads(body)["models"]
    assert group["model"] == "m" and group["champion"] == "3"
    assert [(v["model_version"], v["role"]) for v in group["versions"]] == [
        ("3", "champion"),
        ("4", "challenger"),
    ]
    for version in group["versions"]:
        scored, correct = _expected_accuracy(events, version["model_version"], first=1000)
        source = {"model": "m", "model_version": version["model_version"], "source": "realized"}
        assert store.get("driftline_predictions_scored_total", source) == scored == 1000
        assert store.get("driftline_predictions_correct_total", source) == correct
        assert version["performance"]["realized"]["accuracy"] == pytest.approx(correct / scored)
        assert version["performance"]["estimated"] is None  # no probabilities: no CBPE
        estimated = {**source, "source": "estimated"}
        assert store.get("driftline_predictions_scored_total", estimated) == 0.0
        assert version["events"] == 2000 and version["windows_evaluated"] == 1
        assert version["reference_id"].startswith("auto-") and version["data_version"] == "d1"
        assert 0.0 <= version["drift"]["share"] <= 1.0 and version["drift"]["detected"] is False
        assert set(version["quality"]) == {"missing", "type_error", "out_of_range", "new_category"}
        assert version["quality"]["missing"] == 0.0
    accuracies = [v["performance"]["realized"]["accuracy"] for v in group["versions"]]
    assert accuracies[0] > 0.87 and accuracies[1] < 0.73
    # /api/v1/models keeps its shape: a list of per-version objects, each with its documented keys
    assert sorted((m["model"], m["model_version"], m["role"]) for m in models) == [
        ("m", "3", "champion"),
        ("m", "4", "challenger"),
    ]
    documented = {"data_version", "reference", "reference_events_collected", "windows_evaluated"}
    documented |= {"windows_skipped", "current_window_events", "thresholds", "last_window", "model_health"}
    assert all(documented <= set(m) for m in models)



REGRESSION = {**SMALL, "models": {"m": {"task": "regression"}}}


def _expected_errors(events: list[Prediction | Label], version: str, first: int) -> tuple[int, float, float]:
    """(scored, sum of absolute errors, sum of squared errors) of ``version`` from row ``first`` on."""
    truth = {e.event_id: float(e.label) for e in events if isinstance(e, Label)}
    scored = [e for e in events if isinstance(e, Prediction) and e.model_version == version][first:]
    errors = [truth[e.event_id] - float(e.prediction) for e in scored]
    return len(errors), sum(abs(x) for x in errors), sum(x * x for x in errors)


def test_error_sums_per_regressor_version_from_joined_labels() -> None:
    """A regressor's versions are compared on their absolute errors: count, sum and sum of squares
    per version from joined labels, at 0 from the first event; no accuracy counts."""
    store = MetricStore()
    pipeline = Pipeline(parse_config(REGRESSION), store, MemoryDeadLetterSink(), event_time=True)
    events = shadow_regressors(2000, seed=6, error_scales={"3": 1.0, "4": 2.0})
    pipeline.process(_messages(events[:1]))
    first = {"model": "m", "model_version": "3", "source": "realized"}
    for name in ("scored", "absolute_error", "squared_error"):
        assert store.get(f"driftline_regression_{name}_total", first) == 0.0
    pipeline.process(_messages(events[1:]))
    maes = {}
    for version in ("3", "4"):
        scored, absolute, squared = _expected_errors(events, version, first=1000)
        labels = {"model": "m", "model_version": version, "source": "realized"}
        assert store.get("driftline_regression_scored_total", labels) == scored == 1000
        assert store.get("driftline_regression_absolute_error_total", labels) == pytest.approx(absolute)
        assert store.get("driftline_regression_squared_error_total", labels) == pytest.approx(squared)
        assert store.get("driftline_predictions_scored_total", labels) is None
        maes[version] = absolute / scored
    assert 0.7 < maes["3"] < 0.9 and 1.5 < maes["4"] < 1.7  # 0.8 times the noise scale



def test_an_error_too_large_to_square_is_left_out_of_the_sums() -> None:
    """A finite label whose squared error overflows would make the sums infinite for good."""
    store = MetricStore()
    pipeline = Pipeline(parse_config(REGRESSION), store, MemoryDeadLetterSink(), event_time=True)
    events = shadow_regressors(2000, seed=7, error_scales={"3": 1.0})
    huge = next(i for i, e in enumerate(events) if isinstance(e, Label) and e.event_id == "m-3-1500")
    label = events[huge]
    assert isinstance(label, Label)
    events[huge] = replace(label, label=1e200)
    pipeline.process(_messages(events))
    others = [e for e in events if isinstance(e, Label) or e.event_id != "m-3-1500"]
    scored, absolute, squared = _expected_errors(others, "3", first=1000)
    labels = {"model": "m", "model_version": "3", "source": "realized"}
    assert store.get("driftline_regression_scored_total", labels) == scored == 999
    assert store.get("driftline_regression_absolute_error_total", labels) == pytest.approx(absolute)
    assert store.get("driftline_regression_squared_error_total", labels) == pytest.approx(squared)


@pytest.mark.integration
def test_a_worse_challenger_fires_in_real_prometheus_and_an_alike_one_does_not(tmp_path: Path) -> None:
    """Versions 3 and 4 of two models on the same traffic, through the shipped rules: credit's
    version 4 is wrong 25% of the time beside 10% (fires); fraud's versions are both wrong 10%."""
    pipeline = Pipeline(parse_config(SMALL), MetricStore(), MemoryDeadLetterSink(), event_time=True)
    with _scraped(pipeline, tmp_path) as prometheus:
        _stream(pipeline, prometheus, SHADOWS, "driftline:predictions_scored:increase1h")
        z = _only_firing(prometheus, ("credit", "4", "realized", "challenger", "d1", "accuracy"), _Z)
    assert z["credit"] < -8.0  # -13.8 from the counts (0.91 against 0.745 of 2000 each)
    assert -1.0 < z["fraud"] < 1.0  # -0.25 from the counts


@pytest.mark.integration
def test_a_regressor_with_larger_errors_fires_in_real_prometheus_and_an_alike_one_does_not(
    tmp_path: Path,
) -> None:
    """Regressor versions 3 and 4 on the same traffic: price's version 4 errs with 1.5 times
    the noise of version 3 (a larger mean absolute error: fires); demand's err alike."""
    config = parse_config({**SMALL, "models": {model: {"task": "regression"} for model in REGRESSORS}})
    store = MetricStore()
    pipeline = Pipeline(config, store, MemoryDeadLetterSink(), event_time=True)
    with _scraped(pipeline, tmp_path) as prometheus:
        _stream(pipeline, prometheus, REGRESSORS, "driftline:regression_scored:increase1h")
        z = _only_firing(prometheus, ("price", "4", "realized", "challenger", "d1", "mae"), _MAE_Z)
        mae = _by_version(_query(prometheus, "driftline:regression_mae:1h"))
        panel = _errors_panel(prometheus)
    for (model, version), value in mae.items():  # the mean of what the collector counted, exactly
        labels = {"model": model, "model_version": version, "source": "realized"}
        absolute = store.get("driftline_regression_absolute_error_total", labels)
        scored = store.get("driftline_regression_scored_total", labels)
        assert isinstance(absolute, float) and isinstance(scored, float)
        assert value == pytest.approx(absolute / scored)
    assert mae[("price", "4")] > 1.1 and mae[("price", "3")] < 0.9
    assert panel["MAE"] == pytest.approx(mae)  # the Model dashboard shows what the alert compares
    assert set(panel["RMSE"]) == set(mae)
    assert all(panel["RMSE"][key] > value for key, value in mae.items())  # normal errors: 1.25 MAE
    assert z["price"] > 10.0  # 17.4 from the counts (mae 1.20 against 0.79 of 2000 each)
    assert -1.5 < z["demand"] < 1.5  # -0.59 from the counts


def _shadow_classifiers(
    model: str, seed: int, rates: dict[str, float], offset: int, start: int
) -> list[Prediction | Label]:
    return shadow_versions(1000, seed=seed + offset, error_rates=rates, model=model, start=start)


def _shadow_regressors(
    model: str, seed: int, scales: dict[str, float], offset: int, start: int
) -> list[Prediction | Label]:
    return shadow_regressors(1000, seed=seed + offset, error_scales=scales, model=model, start=start)


_Z = 'driftline:challenger_accuracy_z:1h{source="realized"}'
_MAE_Z = "driftline:challenger_mae_z:1h"
Events = Callable[[int, int], list[Prediction | Label]]
"""A model's shadow traffic from a seed and a first row."""

SHADOWS: dict[str, Events] = {
    model: functools.partial(_shadow_classifiers, model, seed, rates)
    for model, seed, rates in (("credit", 8, {"3": 0.1, "4": 0.25}), ("fraud", 10, {"3": 0.1, "4": 0.1}))
}
"""Per model: the seed of its label windows and each version's error rate. fraud's seeded
draws give z of -0.29 after its first window and -0.25 after both (credit's: -13.8), far
from the threshold even when increase() extrapolates a young series."""

REGRESSORS: dict[str, Events] = {
    model: functools.partial(_shadow_regressors, model, seed, scales)
    for model, seed, scales in (("price", 20, {"3": 1.0, "4": 1.5}), ("demand", 30, {"3": 1.0, "4": 1.0}))
}
"""Per model: the seed of its label windows and each version's noise scale; demand's seeded
draws give a Welch z of -0.59 after both windows (price's: 17.4)."""


@contextlib.contextmanager
def _scraped(pipeline: Pipeline, tmp_path: Path) -> Iterator[str]:
    """The pipeline's /metrics on a real socket, scraped every second by a real Prometheus on the
    shipped rules (no Alertmanager needed); yields Prometheus's URL."""
    prometheus_bin = require_binary("prometheus")
    endpoints = Endpoints(build_registry(pipeline.store), pipeline.status, lambda: None)
    server = HttpServer(endpoints, "127.0.0.1", 0)
    server.start()
    processes = Processes(tmp_path)
    prometheus_port = free_port()
    prometheus = f"http://127.0.0.1:{prometheus_port}"
    try:
        config = _prometheus_config(tmp_path, server.port, free_port())
        processes.start(
            "prometheus",
            [
                prometheus_bin,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
            ],
        )
        _wait_for("prometheus to be ready", functools.partial(_ready, prometheus), timeout=30)
        yield prometheus
    finally:
        processes.stop()
        server.stop()


def _stream(pipeline: Pipeline, prometheus: str, models: dict[str, Events], counts: str) -> None:
    """References first; once Prometheus has scraped the zero ``counts`` of every version, two
    label windows per version, a scrape apart, so increase() sees the counts grow."""
    for events in models.values():
        pipeline.process(_messages(events(-1, 0)))
    _wait_for(
        "the zero counts of all four versions in Prometheus",
        lambda: len(_query(prometheus, f'{counts}{{source="realized"}}')) == 2 * len(models),
        timeout=30,
    )
    for chunk in range(2):
        for events in models.values():
            pipeline.process(_messages(events(chunk, 1000 * (chunk + 1))))
        time.sleep(2.5)


def _by_version(result: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    return {(r["metric"]["model"], r["metric"]["model_version"]): float(r["value"][1]) for r in result}


def _errors_panel(prometheus: str) -> dict[str, dict[tuple[str, str], float]]:
    """The Model dashboard's regression errors panel, each query run in Prometheus for every
    model: MAE and RMSE per (model, version)."""
    doc = json.loads((DASHBOARDS / "model.json").read_text())
    queries = [expr for title, expr in panel_queries(doc) if title.startswith("Regression errors")]
    assert len(queries) == 2
    mae, rmse = (_by_version(_query(prometheus, q.replace("$model", ".*"))) for q in queries)
    return {"MAE": mae, "RMSE": rmse}


def _only_firing(prometheus: str, alert: tuple[str, ...], z_query: str) -> dict[str, float]:
    """Wait for ``alert`` (model, version, source, role, data version, metric) to fire, alone,
    and stay alone over several more evaluations; the z per model that it fired on."""
    _wait_for(
        f"DriftlineChallengerWorse firing for {alert[0]} {alert[1]}",
        lambda: _firing(prometheus) == [alert],
        timeout=60,
        diagnose=lambda: json.dumps(_query(prometheus, z_query)),
    )
    z = {r["metric"]["model"]: float(r["value"][1]) for r in _query(prometheus, z_query)}
    time.sleep(3.0)  # several more evaluations: the alike challenger stays silent
    assert _firing(prometheus) == [alert]
    return z


def _firing(prometheus: str) -> list[tuple[Any, ...]]:
    alerts = json.loads(http_get(f"{prometheus}/api/v1/alerts")[2])["data"]["alerts"]
    return sorted(
        (a["labels"]["model"], a["labels"]["model_version"], a["labels"]["source"], a["labels"]["role"],
         a["labels"]["data_version"], a["labels"]["metric"])
        for a in alerts
        if a["labels"]["alertname"] == "DriftlineChallengerWorse" and a["state"] == "firing"
    )
