"""Registered references: ``driftline reference add/list/show`` and the collector using them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from driftline.schema import encode

from collector.cli import main
from collector.config import ReferenceFile, parse_config
from collector.dlq import MemoryDeadLetterSink
from collector.pipeline import Pipeline
from collector.reference_registry import ReferenceRegistry
from collector.references import content_id, load_reference
from collector.sources import RawMessage
from exporters.store import MetricStore
from tests.streams import CATEGORICAL, NUMERICAL, predictions


def _reference_file(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.normal(0.0, 1.0, 3000) for name in NUMERICAL})
    for name in CATEGORICAL:
        frame[name] = rng.choice(["a", "b", "c", "d"], size=3000, p=[0.4, 0.3, 0.2, 0.1])
    score = 1 / (1 + np.exp(-frame["n0"]))
    frame["prediction"] = (score >= 0.5).astype(int)
    frame["proba_1"], frame["proba_0"] = score, 1 - score
    frame["label"] = (rng.random(3000) < score).astype(int)
    frame.to_parquet(path)
    return path


def test_add_list_show_and_the_collector_uses_the_registered_reference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = tmp_path / "registry"
    source = _reference_file(tmp_path / "ref.parquet", seed=41)
    argv = ["reference", "add", str(source), "--model", "m", "--model-version", "1", "--data-version", "d7"]
    assert main([*argv, "--registry", str(registry)]) == 0
    assert "registered m/1 (data version d7): 3000 rows" in capsys.readouterr().out
    assert main(["reference", "list", "--registry", str(registry)]) == 0
    assert "d7" in capsys.readouterr().out
    assert main(["reference", "show", "m", "1", "--registry", str(registry)]) == 0
    shown = capsys.readouterr().out
    assert "3000 rows, labelled" in shown and "n3 (feature)" in shown and "proba_1 (output)" in shown

    config = parse_config({"reference_registry": str(registry)})
    store = MetricStore()
    pipeline = Pipeline(config, store, MemoryDeadLetterSink(), event_time=True)
    events = list(predictions(1000, seed=42, shifted=("n2",)))
    pipeline.process([RawMessage(encode(e), "t", 0, i, 0.0) for i, e in enumerate(events)])
    state = pipeline.states[("m", "1")]
    assert state.reference is not None and not state.reference.automatic
    assert state.windows_evaluated == 1
    assert state.last_report is not None
    assert [d.feature for d in state.last_report.drift.features if d.detected] == ["n2"]
    info = next(s for s in store.snapshot() if s.metric.name == "driftline_model_info").samples
    ((_, _, data_version, reference_id, role),) = info
    assert reference_id.startswith("ref-") and data_version == "d1" and role == "champion"
    assert state.health.reference_performance is not None


def test_a_file_that_is_not_a_reference_is_refused_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("prediction,label\n1,0\n")
    argv = ["reference", "add", str(bad), "--model", "m", "--model-version", "1", "--registry", str(tmp_path)]
    assert main(argv) == 2
    assert "no feature columns" in capsys.readouterr().err
    assert main(["reference", "show", "m", "9", "--registry", str(tmp_path)]) == 2
    assert "no reference registered for m/9" in capsys.readouterr().err


def _reference_id(path: Path) -> str:
    return load_reference(ReferenceFile(path=path, data_version="d"), {}, None).reference_id


def _add(registry: Path, source: Path, *extra: str) -> int:
    argv = ["reference", "add", str(source), "--model", "m", "--model-version", "1"]
    return main([*argv, "--registry", str(registry), *extra])


def test_re_registering_without_data_version_keeps_it_and_needs_replace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The reported case: a second add without --data-version silently made the data version ``unknown``."""
    registry = tmp_path / "registry"
    first = _reference_file(tmp_path / "first.parquet", seed=1)
    second = _reference_file(tmp_path / "second.parquet", seed=2)
    assert _add(registry, first, "--data-version", "d7") == 0
    capsys.readouterr()
    assert _add(registry, second) == 2
    refused = capsys.readouterr().err
    assert "m/1 data version d7 is already registered" in refused and "--replace" in refused
    files = ReferenceRegistry(registry).reference_files()
    assert files[("m", "1")].data_version == "d7"
    assert files[("m", "1")].path.name == "first.parquet"

    assert _add(registry, second, "--replace") == 0
    said = capsys.readouterr().out
    old_id, new_id = _reference_id(first), _reference_id(second)
    assert f"replaced m/1 data version d7: {old_id} (3000 rows) with {new_id} (3000 rows)" in said
    entries = ReferenceRegistry(registry).entries()
    assert [(e.data_version, e.reference_id) for e in entries] == [("d7", new_id)]


def test_a_new_data_version_is_added_beside_the_old_one(tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    assert _add(registry, _reference_file(tmp_path / "a.parquet", seed=1), "--data-version", "d1") == 0
    assert _add(registry, _reference_file(tmp_path / "b.parquet", seed=2), "--data-version", "d2") == 0
    entries = ReferenceRegistry(registry).entries()
    assert [e.data_version for e in entries] == ["d1", "d2"]
    assert ReferenceRegistry(registry).reference_files()[("m", "1")].data_version == "d2"


def test_adding_the_same_data_again_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = tmp_path / "registry"
    source = _reference_file(tmp_path / "ref.parquet", seed=1)
    assert _add(registry, source, "--data-version", "d1") == 0
    before = ReferenceRegistry(registry).entries()
    assert _add(registry, source, "--data-version", "d1") == 0
    assert "already registered with identical data" in capsys.readouterr().out
    assert ReferenceRegistry(registry).entries() == before


def test_the_same_data_in_csv_or_parquet_has_the_same_id(tmp_path: Path) -> None:
    parquet = _reference_file(tmp_path / "a.parquet", seed=5)
    csv = tmp_path / "b.csv"
    pd.read_parquet(parquet).to_csv(csv, index=False)
    ids = {_reference_id(path) for path in (parquet, csv)}
    assert len(ids) == 1
    (only,) = ids
    assert only.startswith("ref-") and len(only) == len("ref-") + 16
    changed = pd.read_parquet(parquet)
    changed.loc[7, "n3"] += 1e-9
    changed.to_parquet(tmp_path / "c.parquet")
    assert _reference_id(tmp_path / "c.parquet") != only


def test_content_id_reads_values_not_their_encoding() -> None:
    a = content_id({"x": [1, 2.5, None], "c": ["a", "b", None]})
    assert a == content_id({"c": ["a", "b", None], "x": [1.0, 2.5, None]})
    assert a != content_id({"x": [1, 2.5, None], "c": ["a", "b", "b"]})
    assert a != content_id({"x": [1, 2.5, None], "d": ["a", "b", None]})
    assert content_id({"x": ["1"]}) != content_id({"x": [1]})
