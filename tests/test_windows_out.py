"""``replay --windows-out``: every evaluated window as rows equal to what /metrics showed at its close."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from driftline.schema import Label, Prediction, encode
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from collector.config import HttpConfig, parse_config
from collector.dlq import MemoryDeadLetterSink
from collector.http_server import Endpoints, HttpServer
from collector.pipeline import Pipeline
from collector.replay import replay
from collector.sources import RawMessage
from collector.window_history import COLUMNS, WindowHistory
from collector.window_table import read_window_table
from detectors.multivariate_drift import MULTIVARIATE_METHODS
from detectors.window_report import LabelWindowReport, WindowReport
from exporters.prometheus import build_registry
from exporters.store import MetricStore
from tests.streams import predictions

CONFIG = {
    "defaults": {
        "window": {"events": 400, "max_seconds": 1e9},
        "reference": {"auto_events": 800},
    },
    "models": {"m": {"reference_labels": 400, "segments": ["region"]}},
}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
Replayed = tuple[list[dict[str, object]], dict[tuple[str, int], str], Path]
SHIFTED = ("n0", "n1", "n2", "n3", "n4", "n5", "c0", "c1")


def _history(path: Path, *, seed: int = 3) -> Path:
    """800 reference predictions, then 2000 with a shift from event 1600 (features and the
    8-dimension embedding ``text``); every label right after."""
    rng = np.random.default_rng(seed)
    vectors = np.random.default_rng(seed + 100)
    events: list[Prediction | Label] = []
    for part, (n, shifted) in enumerate([(1600, ()), (1200, SHIFTED)]):
        for p in predictions(n, seed=seed + part, start=part * 1600, shifted=shifted):
            p = replace(p, embeddings={"text": tuple((vectors.normal(size=8) + 0.5 * part).tolist())})
            events.append(p)
            score = (p.probabilities or {})["1"]
            truth = int(rng.random() < (score if part == 0 else 1 - score))
            events.append(Label(event_id=p.event_id, model="m", label=truth, timestamp=p.timestamp))
    path.write_bytes(b"\n".join(encode(e) for e in events) + b"\n")
    return path


def assert_same_rows(got: list[dict[str, object]], want: list[dict[str, object]], rel: float = 1e-15) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert list(a) == list(b) == list(COLUMNS)
        for column in COLUMNS:
            if isinstance(b[column], float):
                assert math.isclose(a[column], b[column], rel_tol=rel), (column, a, b)  # type: ignore[arg-type]
            else:
                assert a[column] == b[column], (column, a, b)


def _window_level(row: dict[str, object]) -> bool:
    return not any(row[name] for name in ("feature", "output", "segment", "embedding"))


def _samples(exposition: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def _metric(samples: Samples, name: str, row: dict[str, object], **labels: str) -> float:
    key = (name, frozenset({"model": row["model"], "model_version": row["model_version"], **labels}.items()))
    assert key in samples, f"{name}{labels} not in the exposition at window {row['window']}"
    return samples[key]


def _check_window(row: dict[str, object], samples: Samples) -> int:
    """Compare one row with the exposition; the number of values compared."""
    compared = 0

    def same(column: str, name: str, **labels: str) -> None:
        nonlocal compared
        value = row[column]
        if value is None:
            return
        expected = _metric(samples, name, row, **labels)
        assert float(value) == pytest.approx(expected, rel=1e-12, abs=1e-15), (column, row)  # type: ignore[arg-type]
        compared += 1

    if row["feature"]:
        feature = str(row["feature"])
        same("drift_score", "driftline_feature_drift_score", feature=feature, method=str(row["drift_method"]))
        same("drift_detected", "driftline_feature_drift_detected", feature=feature)
        for ratio in ("missing", "type_error", "out_of_range", "new_category"):
            same(f"{ratio}_ratio", f"driftline_feature_{ratio}_ratio", feature=feature)
    elif row["output"]:
        output = str(row["output"])
        method = str(row["drift_method"])
        same("drift_score", "driftline_prediction_drift_score", output=output, method=method)
        same("drift_detected", "driftline_prediction_drift_detected", output=output)
    elif row["embedding"]:
        embedding = str(row["embedding"])
        same("drift_score", "driftline_embedding_drift_score", embedding=embedding)
        same("drift_detected", "driftline_embedding_drift_detected", embedding=embedding)
    elif row["segment_value"]:
        segment, value = str(row["segment"]), str(row["segment_value"])
        same("positive_rate", "driftline_segment_positive_rate", segment=segment, value=value)
        same("segment_accuracy", "driftline_segment_accuracy", segment=segment, value=value)
    elif row["segment"]:
        same("disparate_impact", "driftline_fairness_disparate_impact", segment=str(row["segment"]))
        same("parity_difference", "driftline_fairness_parity_difference", segment=str(row["segment"]))
    elif row["kind"] == "window":
        same("end", "driftline_window_end_timestamp_seconds")
        same("dataset_drift_share", "driftline_dataset_drift_share")
        same("dataset_drift_detected", "driftline_dataset_drift_detected")
        same("confidence", "driftline_prediction_confidence")
        same("entropy", "driftline_prediction_entropy")
        same("low_confidence_ratio", "driftline_low_confidence_ratio")
        for method in MULTIVARIATE_METHODS:
            same(f"{method}_score", "driftline_multivariate_drift_score", method=method)
            same(f"{method}_detected", "driftline_multivariate_drift_detected", method=method)
        for metric in ("accuracy", "precision", "recall", "f1", "roc_auc"):
            same(metric, "driftline_performance", metric=metric, source="estimated")
            threshold = {"metric": metric, "source": "estimated", "bound": "lower"}
            same(f"{metric}_threshold", "driftline_performance_threshold", **threshold)
    else:
        for metric in ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"):
            same(metric, "driftline_performance", metric=metric, source="realized")
        for metric in ("accuracy", "precision", "recall", "f1", "roc_auc"):
            threshold = {"metric": metric, "source": "realized", "bound": "lower"}
            same(f"{metric}_threshold", "driftline_performance_threshold", **threshold)
        detector = str(row["concept_drift_detector"])
        same("concept_drift_detected", "driftline_concept_drift_detected", detector=detector)
        same("concept_gap_significant", "driftline_concept_drift_detected", detector="gap_test")
    return compared


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Replayed:
    folder = tmp_path_factory.mktemp("windows")
    history = _history(folder / "history.jsonl")
    store = MetricStore()
    registry = build_registry(store)
    captured: dict[tuple[str, int], str] = {}

    def at_close(report: WindowReport) -> None:
        captured[("window", report.index)] = generate_latest(registry).decode()

    def at_label_close(report: LabelWindowReport) -> None:
        captured[("label_window", report.index)] = generate_latest(registry).decode()

    out = folder / "windows.jsonl"
    summary = replay(
        history,
        parse_config(CONFIG),
        windows_out=out,
        store=store,
        listeners=(at_close,),
        label_listeners=(at_label_close,),
    )
    rows = read_window_table(out)
    assert summary.window_rows == len(rows)
    return rows, captured, history


def test_every_window_row_equals_the_metrics_at_its_close(
    replayed: Replayed,
) -> None:
    rows, captured, _ = replayed
    windows = {(str(r["kind"]), int(r["window"])) for r in rows}  # type: ignore[call-overload]
    assert windows == set(captured)
    assert {k for k, _ in windows} == {"window", "label_window"}
    assert len([w for w in windows if w[0] == "window"]) == 5  # 2000 predictions / 400
    compared = 0
    for row in rows:
        assert list(row) == list(COLUMNS)
        assert (row["model"], row["model_version"]) == ("m", "1")
        compared += _check_window(row, _samples(captured[(str(row["kind"]), int(row["window"]))]))  # type: ignore[call-overload]
    assert compared > 300


def test_every_feature_output_and_segment_has_its_row(
    replayed: Replayed,
) -> None:
    rows, _, _ = replayed
    first = [r for r in rows if r["kind"] == "window" and r["window"] == 1]
    assert sorted(str(r["feature"]) for r in first if r["feature"]) == sorted(
        [f"n{i}" for i in range(8)] + [f"c{i}" for i in range(4)]
    )
    assert {str(r["output"]) for r in first if r["output"]} == {"prediction", "proba_0", "proba_1"}
    assert {str(r["segment_value"]) for r in first if r["segment_value"]} == {"north", "south"}
    assert [str(r["embedding"]) for r in first if r["embedding"]] == ["text"]
    top = [r for r in first if _window_level(r)]
    assert len(top) == 1 and top[0]["performance_source"] == "estimated"
    assert isinstance(top[0]["pca_reconstruction_score"], float) and top[0]["domain_classifier_score"] is None
    assert top[0]["events"] == 400 and top[0]["reference_id"] != "collecting"


def test_the_shift_shows_in_the_rows(
    replayed: Replayed,
) -> None:
    """Windows 1-2 (events 800-1599) are unshifted, 3-5 shifted: drift and a flipped concept."""
    rows, _, _ = replayed
    tops = {(r["kind"], r["window"]): r for r in rows if _window_level(r)}
    detected = [tops[("window", i)]["dataset_drift_detected"] for i in range(1, 6)]
    assert detected == [False, False, True, True, True]
    realized = [tops[k]["accuracy"] for k in sorted(tops) if k[0] == "label_window"]
    assert realized[0] > 0.6 and realized[-1] < 0.4  # type: ignore[operator]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_csv_and_parquet_hold_the_same_rows_as_jsonl(replayed: Replayed, tmp_path: Path, suffix: str) -> None:
    rows, _, history = replayed
    out = tmp_path / f"windows{suffix}"
    replay(history, parse_config(CONFIG), windows_out=out)
    assert_same_rows(read_window_table(out), rows)


def test_cli_writes_the_table_and_refuses_an_unknown_extension(replayed: Replayed, tmp_path: Path) -> None:
    rows, _, history = replayed

    config = tmp_path / "config.yaml"
    config.write_text(json.dumps(CONFIG), encoding="utf-8")  # JSON is YAML

    def cli(out: Path) -> subprocess.CompletedProcess[str]:
        command = ["replay", str(history), "--config", str(config), "--windows-out", str(out)]
        return subprocess.run(
            [sys.executable, "-m", "collector.cli", *command], capture_output=True, text=True, timeout=300
        )

    bad = cli(tmp_path / "w.xlsx")
    assert bad.returncode == 2
    assert "unknown table format '.xlsx'" in bad.stderr
    good = cli(tmp_path / "w.csv")
    assert good.returncode == 0, good.stderr
    # another process, another hash seed: category order may change the last digit of a chi-square
    assert_same_rows(read_window_table(tmp_path / "w.csv"), rows, rel=1e-12)


def test_history_keeps_the_last_windows_of_each_version(
    replayed: Replayed,
) -> None:
    rows, _, history_file = replayed
    history = WindowHistory(keep=2)
    replay(
        history_file,
        parse_config(CONFIG),
        listeners=(history,),
        label_listeners=(history.label_window,),
    )
    assert history.rows("m", "2") is None
    kept = history.rows("m", "1")
    assert kept is not None
    kept_windows = [(r["kind"], r["window"]) for r in kept if _window_level(r)]
    assert len(kept_windows) == 2
    last_two = [k for k in dict.fromkeys((r["kind"], r["window"]) for r in rows)][-2:]
    assert kept_windows == last_two
    assert kept == [r for r in rows if (r["kind"], r["window"]) in set(last_two)]
    with pytest.raises(ValueError, match="keep must be >= 0"):
        WindowHistory(keep=-1)


def _get(url: str, authorization: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if authorization is not None:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_windows_endpoint_serves_the_kept_rows_behind_auth() -> None:
    """A version named with ``/`` is one percent-encoded segment; auth applies as on /api/v1/models."""
    history = WindowHistory(keep=3)
    store = MetricStore()
    config = parse_config({**CONFIG, "defaults": {**CONFIG["defaults"], "window": {"events": 400}}})
    pipeline = Pipeline(
        config,
        store,
        MemoryDeadLetterSink(),
        event_time=True,
        listeners=(history,),
        label_listeners=(history.label_window,),
    )
    events = predictions(2400, seed=5, model_version="v/1")
    pipeline.process([RawMessage(encode(e), "t", 0, i, 0.0) for i, e in enumerate(events)])
    settings = HttpConfig.model_validate({"auth": {"mode": "bearer", "token": "s3cret"}})
    endpoints = Endpoints(build_registry(store), pipeline.status, lambda: None, windows=history.rows)
    server = HttpServer(endpoints, "127.0.0.1", 0, settings=settings).start()
    try:
        url = f"{server.url}/api/v1/models/m/{quote('v/1', safe='')}/windows"
        assert _get(url)[0] == 401
        status, body = _get(url, "Bearer s3cret")
        assert _get(f"{server.url}/api/v1/models/m/v/1/windows", "Bearer s3cret")[0] == 404
        assert _get(f"{server.url}/api/v1/models/m/2/windows", "Bearer s3cret")[0] == 404
    finally:
        server.stop()
    assert status == 200
    answer = json.loads(body)
    assert (answer["model"], answer["model_version"]) == ("m", "v/1")
    assert answer["rows"] == history.rows("m", "v/1")
    assert sorted({r["window"] for r in answer["rows"]}) == [2, 3, 4]  # 1600 predictions after the reference


def test_embedding_rows_flag_the_shifted_vectors_and_only_them(replayed: Replayed) -> None:
    rows, _, _ = replayed
    flagged = {int(r["window"]): r["drift_detected"] for r in rows if r["embedding"] == "text"}  # type: ignore[call-overload]
    assert flagged == {1: False, 2: False, 3: True, 4: True, 5: True}
    p_values = [r["drift_p_value"] for r in rows if r["embedding"] == "text"]
    assert all(isinstance(p, float) and 0.0 <= p <= 1.0 for p in p_values)
