"""``driftline replay`` end to end through the CLI: good lines processed, every bad one counted."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from driftline.schema import encode

from collector.cli import main
from tests.conftest import require_binary
from tests.streams import predictions

BAD_LINES = [
    b"{not json",
    b'{"type":"prediction","schema_version":1,"model":"m"}',
    b'{"type":"prediction","schema_version":1,"event_id":"x","model":"m","model_version":"1",'
    b'"features":{"a":NaN},"prediction":1}',
    b"\xff\xfe binary",
]


@pytest.fixture
def events_file(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    good = [encode(e) for e in predictions(6200, seed=11)]
    lines = good[:100] + BAD_LINES[:2] + good[100:3000] + BAD_LINES[2:] + good[3000:]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_replay_processes_good_lines_and_dead_letters_every_bad_one(
    events_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    metrics, dlq = tmp_path / "metrics.prom", tmp_path / "dlq.jsonl"
    code = main(["replay", str(events_file), "--metrics-out", str(metrics), "--dlq", str(dlq)])
    assert code == 0
    out = capsys.readouterr().out
    assert "accepted prediction" in out and "6200" in out
    records = [json.loads(line) for line in dlq.read_text().splitlines()]
    assert [(r["line"], r["reason"], r["field"]) for r in records] == [
        (101, "invalid_json", ""),
        (102, "missing_field", "event_id"),
        (3003, "non_finite", "features.a"),
        (3004, "invalid_json", ""),
    ]
    assert records[0]["raw"] == "{not json"
    assert "raw_base64" in records[3]
    text = metrics.read_text()
    assert 'driftline_events_total{model="m",model_version="1",type="prediction"} 6200.0' in text
    assert 'driftline_events_rejected_total{reason="invalid_json"} 2.0' in text
    assert 'driftline_windows_total{model="m",model_version="1"} 1.0' in text
    assert "200" in out  # the trailing partial window is reported, not evaluated


def test_replay_exposition_passes_promtool(events_file: Path, tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    metrics = tmp_path / "metrics.prom"
    assert main(["replay", str(events_file), "--metrics-out", str(metrics)]) == 0
    result = subprocess.run([promtool, "check", "metrics"], input=metrics.read_bytes(), capture_output=True)
    assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()
    assert result.stdout.decode().strip() == "" and result.stderr.decode().strip() == ""


def test_replay_names_the_bad_config_key(
    tmp_path: Path, events_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("defaults:\n  window:\n    events: zero\n")
    assert main(["replay", str(events_file), "--config", str(config)]) == 2
    assert "defaults.window.events" in capsys.readouterr().err


def test_replay_of_a_missing_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(tmp_path / "nope.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_file_is_replayed_identically_twice(events_file: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "a.prom", tmp_path / "b.prom"
    main(["replay", str(events_file), "--metrics-out", str(first)])
    main(["replay", str(events_file), "--metrics-out", str(second)])
    assert first.read_text() == second.read_text()
