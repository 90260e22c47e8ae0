"""The notebook API: analyze() equals ``replay --windows-out`` on the same events; plot_windows draws it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import matplotlib
import pandas as pd
import pytest
from driftline.schema import Label, Prediction, encode

from collector.notebook import START, analyze
from collector.notebook_plot import plot_windows
from collector.window_table import read_window_table
from docs.examples.notebook_example import history
from tests.test_windows_out import assert_same_rows

matplotlib.use("Agg")
FEATURES = ["income", "age", "tenure", "region"]


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    analysis = pd.concat([history(2000, seed=2), history(2000, seed=3, shift=1.0)], ignore_index=True)
    return history(3000, seed=1), analysis


@pytest.fixture(scope="module")
def table(frames: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    reference, analysis = frames
    return analyze(
        reference,
        analysis,
        features=FEATURES,
        prediction="y_pred",
        probabilities={"1": "p_default"},
        label="defaulted",
        segments=["region"],
        window_events=500,
    )


def test_analyze_equals_replay_windows_out(
    frames: tuple[pd.DataFrame, pd.DataFrame], table: pd.DataFrame, tmp_path: Path
) -> None:
    """The same events written independently, replayed by the CLI: the same rows."""
    reference, analysis = frames
    ref = reference[FEATURES].assign(
        prediction=reference.y_pred, proba_1=reference.p_default, label=reference.defaulted
    )
    ref.to_parquet(tmp_path / "ref.parquet")
    lines = []
    for i, row in enumerate(analysis.to_dict("records")):
        features = {name: row[name] for name in FEATURES}
        lines.append(
            encode(
                Prediction(
                    event_id=str(i),
                    model="model",
                    model_version="1",
                    features=features,
                    prediction=int(row["y_pred"]),
                    probabilities={"1": float(row["p_default"])},
                    segments={"region": row["region"]},
                    timestamp=START + i,
                )
            )
        )
        lines.append(
            encode(Label(event_id=str(i), model="model", label=int(row["defaulted"]), timestamp=START + i))
        )
    (tmp_path / "h.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    config = {
        "defaults": {"window": {"events": 500}},
        "models": {"model": {"references": {"1": {"path": str(tmp_path / "ref.parquet")}}}},
    }
    (tmp_path / "c.yaml").write_text(json.dumps(config))
    command = ["replay", str(tmp_path / "h.jsonl"), "--config", str(tmp_path / "c.yaml")]
    out = tmp_path / "w.parquet"
    done = subprocess.run(
        [sys.executable, "-m", "collector.cli", *command, "--windows-out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    got = table.astype(object).where(table.notna(), None).to_dict("records")
    assert_same_rows(got, read_window_table(out), rel=1e-12)


def test_analyze_shows_the_shift(table: pd.DataFrame) -> None:
    top = table[(table[["feature", "output", "segment", "embedding"]] == "").all(axis=1)]
    windows = top[top.kind == "window"]
    assert list(windows.window) == list(range(1, 9))  # 4000 rows / 500
    assert list(windows.dataset_drift_detected) == [False] * 4 + [True] * 4
    realized = top[top.kind == "label_window"]
    assert len(realized) == 8 and realized.performance_source.eq("realized").all()
    assert windows.reference_id.str.startswith("ref-").all()


def test_missing_columns_are_named(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    reference, analysis = frames
    with pytest.raises(ValueError, match="the analysis frame has no column 'nope'"):
        analyze(reference, analysis, features=["income", "nope"], prediction="y_pred")


def test_plot_windows_draws_drift_performance_and_drifted_features(
    table: pd.DataFrame, tmp_path: Path
) -> None:
    figure = plot_windows(table)
    titles = [ax.get_title(loc="left") for ax in figure.axes]
    assert titles == ["dataset drift share", "accuracy", "age drift score", "income drift score"]
    share = figure.axes[0]
    plotted = share.lines[0].get_ydata()
    top = table[
        (table.kind == "window") & (table[["feature", "output", "segment", "embedding"]] == "").all(axis=1)
    ]
    assert list(plotted) == list(top.dataset_drift_share)
    assert len(share.collections[0].get_offsets()) == 4  # the four drifted windows marked
    figure.savefig(tmp_path / "plot.png")
    assert (tmp_path / "plot.png").stat().st_size > 10_000
