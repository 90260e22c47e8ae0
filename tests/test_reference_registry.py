"""Registered references: ``driftline reference add/list/show`` and the collector using them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from driftline.schema import encode

from collector.cli import main
from collector.config import parse_config
from collector.dlq import MemoryDeadLetterSink
from collector.pipeline import Pipeline
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
