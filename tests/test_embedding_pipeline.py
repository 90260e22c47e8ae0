"""Embedding drift through the pipeline: detection, false alarms, rejections, limits, checkpoints."""

from __future__ import annotations

import doctest
import json
import math
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from driftline import Client, FileTransport
from driftline.schema import Prediction, RejectReason, encode
from scipy.stats import binom

from collector import embedding_buffer
from collector.auto_references import AutomaticReferences
from collector.checkpoints import Checkpointer
from collector.cli import main
from collector.config import parse_config
from collector.dlq import MemoryDeadLetterSink
from collector.errors import ReferenceDataError
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from collector.state_store import LocalStateStore
from detectors.window_report import WindowReport
from exporters.html_report import HtmlReportWriter
from exporters.otlp import service_resource, to_metrics_data
from exporters.store import MetricStore
from tests.conftest import require_binary
from tests.streams import predictions

DIMS = 32
TEXT = {"model": "m", "model_version": "1", "embedding": "text"}
CONFIG: dict[str, Any] = {
    "defaults": {
        "window": {"events": 500, "max_seconds": 1e9, "min_events": 2},
        "reference": {"auto_events": 1000},
    }
}


def _direction(seed: int) -> np.ndarray:
    direction = np.random.default_rng(seed).normal(size=DIMS)
    return direction / np.linalg.norm(direction)


def _with_embeddings(
    events: Iterator[Prediction], seed: int, shift: float = 0.0, dims: int = DIMS
) -> list[Prediction]:
    """Standard normal vectors (spread 1 along every direction), moved by ``shift`` along a random one."""
    rng = np.random.default_rng(seed)
    offset = shift * _direction(99)[:dims]
    return [
        replace(event, embeddings={"text": tuple((rng.normal(size=dims) + offset).tolist())})
        for event in events
    ]


def _stream(no_drift: int, shifted: int, shift: float) -> list[Prediction]:
    reference = _with_embeddings(predictions(1000 + no_drift, seed=1), seed=2)
    later = _with_embeddings(predictions(shifted, seed=3, start=1000 + no_drift), seed=4, shift=shift)
    return reference + later


SHIFTED = _stream(no_drift=1000, shifted=1500, shift=0.75)


def _messages(events: list[Prediction], first: int = 0) -> list[RawMessage]:
    return [RawMessage(encode(e), "p", 0, first + i, 0.0) for i, e in enumerate(events)]


def _pipeline(config: dict[str, Any] = CONFIG, **kwargs: Any) -> tuple[Pipeline, MetricStore]:
    store = MetricStore()
    pipeline = Pipeline(parse_config(config), store, MemoryDeadLetterSink(), event_time=True, **kwargs)
    return pipeline, store


def test_a_mean_shift_along_a_random_direction_is_flagged_and_no_shift_is_not() -> None:
    """Three-quarters of the spread along one random direction of 32; the per-feature tests never see it."""
    pipeline, store = _pipeline()
    pipeline.process(_messages(SHIFTED))
    state = pipeline.states[("m", "1")]
    assert state.windows_evaluated == 5
    assert store.get("driftline_embedding_drift_windows_total", TEXT) == 3.0
    assert store.get("driftline_embedding_drift_detected", TEXT) == 1.0
    score = store.get("driftline_embedding_drift_score", TEXT)
    assert isinstance(score, float) and score > 0.0
    status: Any = json.loads(json.dumps(state.status()))["embedding_drift"]  # as /api/v1/models serves it
    assert list(status) == ["text"]
    assert status["text"]["score"] == score and status["text"]["detected"] is True
    assert status["text"]["p_value"] <= 0.01 and status["text"]["n"] == 500
    assert store.get("driftline_dataset_drift_windows_total", {"model": "m", "model_version": "1"}) == 0.0
    otlp = to_metrics_data(store.snapshot(), service_resource("test"), 0, 1)
    exported = {
        (metric.name, point.attributes["embedding"], point.value)
        for metric in otlp.resource_metrics[0].scope_metrics[0].metrics
        if metric.name.startswith("driftline_embedding_drift")
        for point in metric.data.data_points
    }
    assert exported == {
        ("driftline_embedding_drift_score", "text", score),
        ("driftline_embedding_drift_detected", "text", 1.0),
        ("driftline_embedding_drift_windows_total", "text", 3.0),
    }


def test_identical_distributions_are_not_flagged() -> None:
    pipeline, store = _pipeline()
    pipeline.process(_messages(_stream(no_drift=2500, shifted=0, shift=0.0)))
    assert pipeline.states[("m", "1")].windows_evaluated == 5
    assert store.get("driftline_embedding_drift_windows_total", TEXT) == 0.0
    assert store.get("driftline_embedding_drift_detected", TEXT) == 0.0


def test_the_false_alarm_rate_over_no_drift_windows_is_within_alpha() -> None:
    """200 windows of 100 vectors at alpha 0.05: the count stays under binomial(200, 0.05)'s 99.9% bound."""
    alpha, windows = 0.05, 200
    config = {
        "defaults": {
            "window": {"events": 100, "max_seconds": 1e9, "min_events": 2},
            "reference": {"auto_events": 1000},
            "drift": {"alpha": alpha},
        }
    }
    pipeline, store = _pipeline(config)
    bare = (  # one constant feature, no probabilities: little but the embedding test runs per window
        Prediction(event_id=f"{i}", model="m", model_version="1", features={"x": 0}, prediction=0,
                   timestamp=i)
        for i in range(1000 + 100 * windows)
    )
    events = _with_embeddings(bare, seed=6)
    pipeline.process(_messages(events))
    assert pipeline.states[("m", "1")].windows_evaluated == windows
    flagged = store.get("driftline_embedding_drift_windows_total", TEXT)
    assert isinstance(flagged, float)
    assert flagged <= binom.ppf(0.999, windows, alpha)
    assert flagged / windows == 0.03  # measured: the figure docs/drift.md quotes


def test_a_model_without_embeddings_has_no_embedding_series() -> None:
    pipeline, store = _pipeline()
    pipeline.process(_messages(list(predictions(1500, seed=7))))
    assert pipeline.states[("m", "1")].windows_evaluated == 1
    assert not [key for name, key, _ in store.export_where(model="m") if "embedding" in name]
    assert pipeline.states[("m", "1")].status()["embedding_drift"] == {}


def test_a_vector_of_another_length_than_its_names_first_is_rejected_and_loses_nothing() -> None:
    pipeline, store = _pipeline()
    events = _with_embeddings(predictions(3, seed=8), seed=9, dims=8)
    events.insert(1, _with_embeddings(predictions(1, seed=8, start=3), seed=9, dims=9)[0])
    other_version = _with_embeddings(predictions(1, seed=8, start=4, model_version="2"), seed=9, dims=9)
    pipeline.process(_messages(events + other_version))
    assert pipeline.counts.accepted["prediction"] == 4
    assert pipeline.counts.rejected == {"invalid_field": 1}
    dlq = pipeline.dlq
    assert isinstance(dlq, MemoryDeadLetterSink)
    [(message, error)] = dlq.rejected
    assert message.offset == 1
    assert (error.reason, error.field) == (RejectReason.INVALID_FIELD, "embeddings.text")
    assert store.get("driftline_events_rejected_total", {"reason": "invalid_field"}) == 1.0
    assert pipeline.states[("m", "1")].embedding_dims == {"text": 8}
    assert pipeline.states[("m", "2")].embedding_dims == {"text": 9}


def test_embedding_names_beyond_the_limit_are_dropped_and_counted() -> None:
    pipeline, store = _pipeline({**CONFIG, "limits": {"max_embeddings": 2}})
    vectors = {name: (0.5, 0.25) for name in ("a", "b", "c")}
    events = [replace(event, embeddings=vectors) for event in predictions(2, seed=10)]
    pipeline.process(_messages(events))
    assert pipeline.counts.accepted["prediction"] == 2
    assert store.get("driftline_limit_exceeded_total", {"kind": "embedding"}) == 2.0
    assert pipeline.states[("m", "1")].embedding_dims == {"a": 2, "b": 2}


class Scores:
    """Listens to closed windows: each one's embedding results."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, tuple[tuple[str, float, float, bool], ...]]] = []

    def __call__(self, report: WindowReport) -> None:
        results = tuple((n, r.score, r.p_value, r.detected) for n, r in sorted(report.embeddings.items()))
        self.seen.append((report.index, results))


def _run(tmp_path: Path, events: list[Prediction], cuts: list[int]) -> tuple[list[Any], MetricStore]:
    """Process ``events``, checkpointing and restarting a new pipeline at each cut."""
    store = LocalStateStore(tmp_path / "state")
    seen: list[Any] = []
    start = 0
    for cut in [*cuts, len(events)]:
        scores = Scores()
        references = AutomaticReferences(store, "g/")
        pipeline, metrics = _pipeline(listeners=(scores,), automatic_references=references)
        checkpointer = Checkpointer(pipeline, store, metrics, prefix="g/t/", interval_seconds=1e9)
        checkpointer.restore([("p", 0)])
        pipeline.process(_messages(events[start:cut], start))
        seen += scores.seen
        assert checkpointer.save({"p": {0: cut}})
        start = cut
    return seen, metrics


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Any], MetricStore]:
    return _run(tmp_path_factory.mktemp("whole"), SHIFTED, [])


@pytest.mark.parametrize("cuts", [[600], [1000, 1250], [1700, 2100]])
def test_a_restored_pipeline_tests_embeddings_like_an_uninterrupted_one(
    tmp_path: Path, cuts: list[int], uninterrupted: tuple[list[Any], MetricStore]
) -> None:
    """Cuts while the reference collects, as it completes, and mid-window before and after the shift."""
    expected, expected_metrics = uninterrupted
    seen, metrics = _run(tmp_path, SHIFTED, cuts)
    assert len(expected) == 5 and sum(r[0][3] for _, r in expected) == 3
    assert seen == expected
    assert metrics.get("driftline_embedding_drift_windows_total", TEXT) == 3.0
    assert metrics.get("driftline_embedding_drift_score", TEXT) == expected_metrics.get(
        "driftline_embedding_drift_score", TEXT
    )


def test_the_embedding_reference_is_a_float32_sample_of_at_most_1000_rows(tmp_path: Path) -> None:
    config = {"defaults": {"reference": {"auto_events": 1500}, "window": {"events": 500}}}
    references = AutomaticReferences(LocalStateStore(tmp_path), "g/")
    pipeline, _ = _pipeline(config, automatic_references=references)
    pipeline.process(_messages(_with_embeddings(predictions(1600, seed=11), seed=12)))
    reference = pipeline.states[("m", "1")].reference
    assert reference is not None and reference.automatic
    sample = reference.embeddings["text"]
    assert sample.dtype == np.float32 and sample.shape == (1000, DIMS)
    assert math.isclose(float(sample.mean()), 0.0, abs_tol=0.02)
    stored = references.load("m", "1", {}, None)
    assert stored is not None
    assert np.array_equal(stored[0].embeddings["text"], sample)
    window = pipeline.states[("m", "1")].window
    assert window is not None and window.n_events == 100
    assert all(p.embeddings is None for p in window.predictions())  # the vectors live in the float32 sample


def test_the_buffer_keeps_a_uniform_sample_and_its_doctest_holds() -> None:
    failures, tried = doctest.testmod(embedding_buffer)
    assert (failures, tried > 0) == (0, True)
    buffer = embedding_buffer.EmbeddingBuffer(max_rows=100)
    for index in range(10_000):
        buffer.add({"v": (float(index),)})
    kept = buffer.arrays()["v"][:, 0]
    assert len(set(kept.tolist())) == 100 and buffer.seen == {"v": 10_000}
    per_tenth = np.bincount((kept // 1000).astype(int), minlength=10)
    assert per_tenth.min() >= 3 and per_tenth.max() <= 20  # binomial(100, 0.1): 99.9% inside [3, 20]


def test_the_window_report_has_an_embedding_section_and_lists_the_flag() -> None:
    writer = HtmlReportWriter()
    pipeline, _ = _pipeline(listeners=(writer,))
    named = [
        replace(e, embeddings={"<b>text</b>": (e.embeddings or {})["text"]})
        for e in SHIFTED[:1000] + SHIFTED[2000:2500]  # the reference, then a shifted window
    ]
    pipeline.process(_messages(named))
    page = writer.render("m", "1")
    assert page is not None
    section = page[page.index('<section id="driftline-embeddings"'):]
    section = section[: section.index("</section>")]
    assert "<td>&lt;b&gt;text&lt;/b&gt;</td>" in section and "<td>500</td><td>yes</td>" in section
    assert "embeddings: &lt;b&gt;text&lt;/b&gt;" in writer.index_page()


def _reference_file(path: Path, rows: int, vectors: Any) -> Path:
    rng = np.random.default_rng(15)
    frame = pd.DataFrame({"x": rng.normal(size=rows), "prediction": rng.integers(0, 2, size=rows)})
    frame["embedding_text"] = list(vectors)
    frame.to_parquet(path)
    return path


def test_a_registered_parquet_reference_brings_its_embeddings(tmp_path: Path) -> None:
    rng = np.random.default_rng(16)
    path = _reference_file(tmp_path / "ref.parquet", 1500, rng.normal(size=(1500, DIMS)))
    config = {**CONFIG, "models": {"m": {"references": {"1": {"path": str(path)}}}}}
    pipeline, store = _pipeline(config)
    reference = pipeline.references[("m", "1")]
    sample = reference.embeddings["text"]
    assert sample.dtype == np.float32 and sample.shape == (1000, DIMS)
    assert list(reference.features.kinds) == ["x"]
    events = [
        replace(e, features={"x": 0.0})
        for e in _with_embeddings(predictions(1000, seed=17), seed=18)
        + _with_embeddings(predictions(1000, seed=19, start=1000), seed=20, shift=0.75)
    ]
    pipeline.process(_messages(events))
    assert pipeline.states[("m", "1")].windows_evaluated == 4
    assert store.get("driftline_embedding_drift_windows_total", TEXT) == 2.0
    changed = _reference_file(tmp_path / "changed.parquet", 1500, rng.normal(size=(1500, DIMS)))
    reloaded = {**CONFIG, "models": {"m": {"references": {"1": {"path": str(changed)}}}}}
    assert _pipeline(reloaded)[0].references[("m", "1")].reference_id != reference.reference_id


@pytest.mark.parametrize(
    "vectors",
    [[[0.5, 1.0]] * 9 + [[0.5]], [[0.5, math.nan]] * 10, [[]] * 10],
    ids=["ragged", "nan", "empty"],
)
def test_a_registered_reference_with_bad_vectors_is_a_clear_error(tmp_path: Path, vectors: Any) -> None:
    path = _reference_file(tmp_path / "ref.parquet", 10, vectors)
    with pytest.raises(ReferenceDataError, match="embedding_text"):
        _pipeline({"models": {"m": {"references": {"1": {"path": str(path)}}}}})


def test_an_embedding_column_in_a_csv_reference_names_parquet(tmp_path: Path) -> None:
    path = tmp_path / "ref.csv"
    path.write_text('x,embedding_text\n1.0,"[0.5, 1.0]"\n', encoding="utf-8")
    with pytest.raises(ReferenceDataError, match="embeddings need a Parquet list column"):
        _pipeline({"models": {"m": {"references": {"1": {"path": str(path)}}}}})


def test_sdk_file_then_replay_exports_embedding_drift_that_promtool_accepts(tmp_path: Path) -> None:
    """NumPy vectors through the real SDK into a file, ``driftline replay``, the exposition."""
    promtool = require_binary("promtool")
    events, config, metrics = tmp_path / "events.jsonl", tmp_path / "config.yml", tmp_path / "metrics.prom"
    config.write_text(json.dumps(CONFIG), encoding="utf-8")  # JSON is YAML
    rng = np.random.default_rng(21)
    shift = 0.75 * _direction(99)
    with Client("m", "1", FileTransport(events), when_full="block") as client:
        for i in range(2000):
            vector = rng.normal(size=DIMS) + (shift if i >= 1500 else 0.0)
            features = {"x": float(rng.normal())}
            client.log_prediction(features, 1, embeddings={"text": vector}, timestamp=1e9 + i)
        assert client.flush(timeout=10.0) == 0
    assert client.stats.sent == 2000
    assert main(["replay", str(events), "--config", str(config), "--metrics-out", str(metrics)]) == 0
    exposition = metrics.read_text(encoding="utf-8")
    labels = '{embedding="text",model="m",model_version="1"}'
    assert f"driftline_embedding_drift_windows_total{labels} 1.0" in exposition
    assert f"driftline_embedding_drift_detected{labels} 1.0" in exposition
    result = subprocess.run([promtool, "check", "metrics"], input=metrics.read_bytes(), capture_output=True)
    assert result.returncode == 0 and not result.stdout and not result.stderr, result
