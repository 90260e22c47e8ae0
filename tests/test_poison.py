"""No poison pill: hostile input is dead-lettered with its reason and never stops the collector."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from driftline.schema import RejectReason, SchemaError
from prometheus_client import generate_latest

from collector.cli import main
from collector.config import parse_config
from collector.dlq import FileDeadLetterSink, MemoryDeadLetterSink
from collector.http_server import Endpoints, HttpServer
from collector.kafka_dlq import dead_letter_headers
from collector.model_state import ModelVersionState
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from detectors.base import FeatureTable
from detectors.data_drift import DataDriftDetector, DataDriftResult
from detectors.data_quality import DataQualityResult
from detectors.window_report import WindowReport
from exporters.html_report import HtmlReportWriter
from exporters.prometheus import build_registry
from exporters.store import MetricStore
from tests.poison import POISONS, valid

MV = {"model": "m", "model_version": "1"}
SMALL_WINDOWS = {"defaults": {"window": {"events": 20, "min_events": 5}, "reference": {"auto_events": 20}}}


def _pipeline(event_time: bool = True) -> tuple[Pipeline, MetricStore, MemoryDeadLetterSink]:
    store, dlq = MetricStore(), MemoryDeadLetterSink()
    return Pipeline(parse_config(SMALL_WINDOWS), store, dlq, event_time=event_time), store, dlq


def _messages(values: list[bytes]) -> list[RawMessage]:
    return [RawMessage(value, "t", 0, offset, 0.0) for offset, value in enumerate(values)]


def _with_poison(before: int, after: int) -> list[bytes]:
    return (
        [valid(i) for i in range(before)]
        + [p.raw for p in POISONS]
        + [valid(i) for i in range(before, before + after)]
    )


def _accepted_predictions(store: MetricStore) -> float | object:
    return store.get("driftline_events_total", {**MV, "type": "prediction"})


@pytest.mark.parametrize("event_time", [True, False], ids=["replay", "collect"])
def test_poison_between_valid_events_is_dead_lettered_and_every_valid_one_processed(
    event_time: bool,
) -> None:
    pipeline, store, dlq = _pipeline(event_time)
    pipeline.process(_messages(_with_poison(50, 149)))
    assert _accepted_predictions(store) == 199.0
    assert pipeline.counts.accepted["prediction"] == 199
    assert [(e.reason.value, e.field) for _, e in dlq.rejected] == [(p.reason, p.field) for p in POISONS]
    assert [m.offset for m, _ in dlq.rejected] == list(range(50, 50 + len(POISONS)))
    assert pipeline.counts.total == 199 + len(POISONS)
    assert pipeline.states[("m", "1")].windows_evaluated == (199 - 20) // 20
    generate_latest(build_registry(store)).decode("utf-8")


def test_a_failure_on_one_accepted_event_is_a_processing_error_that_changes_only_the_rejected_count(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline, store, dlq = _pipeline()
    pipeline.process(_messages([valid(i) for i in range(25)]))
    real_add = ModelVersionState.add

    def add_failing_on_odd(self: ModelVersionState, event: object, when: float) -> None:
        if str(getattr(event, "event_id", "")).endswith(("1", "3")):
            raise ZeroDivisionError("a bug in the collector")
        real_add(self, event, when)  # type: ignore[arg-type]

    monkeypatch.setattr(ModelVersionState, "add", add_failing_on_odd)
    before = (store.get("driftline_events_total", {**MV, "type": "prediction"}), pipeline.counts.total)
    with caplog.at_level(logging.ERROR, logger="collector.pipeline"):
        pipeline.process(_messages([valid(i) for i in range(25, 35)]))
    failed = [m for m, e in dlq.rejected if e.reason is RejectReason.PROCESSING_ERROR]
    assert [json.loads(m.value)["event_id"] for m in failed] == ["m-31", "m-33"]
    assert dlq.rejected[0][1].field == ""
    assert "ZeroDivisionError" in dlq.rejected[0][1].message
    assert store.get("driftline_events_total", {**MV, "type": "prediction"}) == 25.0 + 8
    assert store.get("driftline_events_rejected_total", {"reason": "processing_error"}) == 2.0
    assert pipeline.counts.total == before[1] + 10
    tracebacks = [r for r in caplog.records if r.exc_info is not None]
    assert len(tracebacks) == 1 and "ZeroDivisionError" in caplog.text  # logged once per reason


def test_a_detector_failure_at_window_close_is_counted_the_window_skipped_and_the_next_evaluated(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline, store, _ = _pipeline()
    real_evaluate = DataDriftDetector.evaluate
    calls = {"n": 0}

    def evaluate_failing_once(self: DataDriftDetector, table: object) -> object:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ValueError("detector bug")
        return real_evaluate(self, table)  # type: ignore[arg-type]

    monkeypatch.setattr(DataDriftDetector, "evaluate", evaluate_failing_once)
    with caplog.at_level(logging.ERROR, logger="collector.model_state"):
        pipeline.process(_messages([valid(i) for i in range(80)]))
    state = pipeline.states[("m", "1")]
    assert store.get("driftline_detector_failures_total", {"detector": "data_drift"}) == 1.0
    assert store.get("driftline_detector_failures_total", {"detector": "data_quality"}) == 0.0
    assert (state.windows_evaluated, state.windows_skipped) == (2, 1)
    assert store.get("driftline_windows_total", MV) == 2.0
    assert _accepted_predictions(store) == 80.0
    assert "detector bug" in caplog.text


def test_a_failure_on_a_tick_is_counted_and_the_collector_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline, store, _ = _pipeline(event_time=False)
    pipeline.process(_messages([valid(i) for i in range(3)]))

    def broken_check(now: float) -> None:
        raise RuntimeError("instances bug")

    monkeypatch.setattr(pipeline.instances, "check", broken_check)
    pipeline.tick(1e9)
    pipeline.tick(1e9 + 1)
    assert store.get("driftline_detector_failures_total", {"detector": "instances"}) == 2.0


def test_the_file_dead_letter_sink_writes_a_surrogate_field_as_valid_utf8(tmp_path: Path) -> None:
    sink = FileDeadLetterSink(tmp_path / "dlq.jsonl")
    error = SchemaError(RejectReason.INVALID_FIELD, "features.\ud800", "bad \udfff key")
    sink.write(RawMessage(b'{"features":{"\\ud800":1}}', "t", 0, 7, 0.0), error)
    sink.close()
    record = json.loads((tmp_path / "dlq.jsonl").read_bytes().decode("utf-8"))
    assert record["field"] == "features.\\ud800"
    assert record["raw"] == '{"features":{"\\ud800":1}}'


def test_the_kafka_dead_letter_headers_carry_a_surrogate_field_as_utf8() -> None:
    error = SchemaError(RejectReason.INVALID_FIELD, "segments.\udfff", "x")
    headers = dict(dead_letter_headers(RawMessage(b"{}", "t", 0, 1, 0.0), error))
    assert headers["driftline.field"] == b"segments.\\udfff"


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_metrics_and_the_report_index_never_500_on_labels_that_are_not_utf8() -> None:
    """Defence in depth: the schema keeps such strings out, but if one got in, scrapes go on."""
    store = MetricStore()
    store.inc("driftline_events_total", {"model": "m", "model_version": "\ud800", "type": "prediction"})
    info = {**MV, "data_version": "d\udfff", "reference_id": "r", "role": "champion"}
    store.set("driftline_model_info", info, 1.0)
    status = [{"model": "m", "model_version": "v\ud800"}]
    reports, drift, empty = HtmlReportWriter(), DataDriftResult((), 0.0, False), FeatureTable({}, {}, 0)
    quality = DataQualityResult(())
    reports(WindowReport("m", "v\ud800", "d\udfff", "r", 1, 0, 0.0, 1.0, drift, drift, quality, empty, empty))
    endpoints = Endpoints(build_registry(store), lambda: status, lambda: None, reports)
    server = HttpServer(endpoints, "127.0.0.1", 0)
    server.start()
    try:
        code, body = _get(server.url + "/metrics")
        assert code == 200
        assert b'model_version="\\\\ud800"' in body
        code, page = _get(server.url + "/reports/")
        assert code == 200 and b"v\\ud800" in page and b"d\\udfff" in page and b"/v%5Cud800/1" in page
        assert _get(server.url + "/api/v1/models")[0] == 200
    finally:
        server.stop()


def test_replay_of_poison_exits_0_with_every_poison_line_in_the_dead_letter_file(
    tmp_path: Path,
) -> None:
    events, dlq, metrics = tmp_path / "events.jsonl", tmp_path / "dlq.jsonl", tmp_path / "m.prom"
    events.write_bytes(b"\n".join(_with_poison(50, 149)) + b"\n")
    code = main(["replay", str(events), "--dlq", str(dlq), "--metrics-out", str(metrics)])
    assert code == 0
    records = [json.loads(line) for line in dlq.read_bytes().decode("utf-8").splitlines()]
    assert [(r["line"], r["reason"], r["field"]) for r in records] == [
        (51 + i, p.reason, p.field) for i, p in enumerate(POISONS)
    ]
    assert [r["raw"].encode() for r in records] == [p.raw for p in POISONS]
    accepted = 'driftline_events_total{model="m",model_version="1",type="prediction"} 199.0'
    assert accepted in metrics.read_text()


@pytest.mark.parametrize("features", [{}, {"x": None}], ids=["no-features", "all-missing"])
def test_a_model_whose_reference_has_no_feature_values_is_evaluated_without_failing(
    features: dict[str, None],
) -> None:
    """Found by the property test: an empty reference made the drift detector raise at every window."""
    pipeline, store, _ = _pipeline()
    event = json.loads(valid(0))
    batch = [json.dumps(event | {"event_id": f"e{i}", "features": features}).encode() for i in range(60)]
    pipeline.process(_messages(batch))
    state = pipeline.states[("m", "1")]
    assert (state.windows_evaluated, state.windows_skipped) == (2, 0)
    assert store.get("driftline_detector_failures_total", {"detector": "data_drift"}) == 0.0
    assert store.get("driftline_dataset_drift_share", MV) == 0.0
    assert store.get("driftline_dataset_drift_detected", MV) == 0.0
    with pytest.raises(RuntimeError, match="before fit"):
        DataDriftDetector().evaluate(state.last_report.features)  # type: ignore[union-attr]
