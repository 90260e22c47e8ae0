"""The replay summary explains itself: reference state, skipped windows with the event gap, label outcomes."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from driftline.schema import Label, Prediction, encode
from rich.console import Console

from collector.config import parse_config
from collector.event_gaps import EventGaps
from collector.replay import for_replay, replay
from collector.replay_summary import print_summary
from tests.streams import predictions

GAP = 523.0  # seconds between events, as in the reported history


def _write(path: Path, events: list[Prediction | Label]) -> Path:
    path.write_bytes(b"\n".join(encode(e) for e in events) + b"\n")
    return path


def _printed(summary: object) -> str:
    out = io.StringIO()
    print_summary(summary, Console(file=out, width=400, soft_wrap=True))  # type: ignore[arg-type]
    return out.getvalue()


def _labels(events: list[Prediction], seed: int) -> list[Label]:
    """Every prediction's label, all delivered after the last prediction (one second apart)."""
    rng = np.random.default_rng(seed)
    end = max(p.timestamp or 0.0 for p in events)
    return [
        Label(event_id=p.event_id, model=p.model, label=int(rng.random() < 0.5), timestamp=end + 1.0 + i)
        for i, p in enumerate(events)
    ]


SPARSE = {"defaults": {"reference": {"auto_events": 1000}, "window": {"events": 500}}}


def test_a_sparse_history_gives_windows_by_default(tmp_path: Path) -> None:
    """Events 523 s apart: replay's default closes windows on count, so 2000 predictions give 2 windows."""
    history = _write(tmp_path / "h.jsonl", list(predictions(2000, seed=1, dt=GAP)))
    summary = replay(history, parse_config(SPARSE))
    version = summary.versions[("m", "1")]
    assert (version.windows, version.closed_by_age, version.skipped) == (2, 0, 0)
    assert re.fullmatch(r"automatic auto-[0-9a-f]{16} \(complete\)", version.reference)  # a hash of its data
    assert version.median_gap_seconds == pytest.approx(GAP, rel=1e-9)
    assert summary.warnings == ()
    assert "windows close on window.events only where window.max_seconds is not set" in summary.notes


def test_a_sparse_history_with_the_age_rule_says_why_it_has_no_windows(tmp_path: Path) -> None:
    history = _write(tmp_path / "h.jsonl", list(predictions(2000, seed=1, dt=GAP)))
    config = parse_config({"defaults": {**SPARSE["defaults"], "window": {"events": 500, "max_seconds": 60}}})
    summary = replay(history, config)
    version = summary.versions[("m", "1")]
    assert (version.windows, version.closed_by_age, version.skipped) == (0, 999, 999)
    assert version.median_gap_seconds == pytest.approx(GAP, rel=1e-9)
    (warning,) = summary.warnings
    assert "m/1: 999 of 999 windows closed by age with fewer than 100 predictions" in warning
    assert "events are 523 s apart (median), windows close after 60 s" in warning
    assert "Raise defaults.window.max_seconds; about 52,300 s holds 100" in warning
    printed = _printed(summary)
    assert "warning:" in printed and "Raise defaults.window.max_seconds" in printed
    assert summary.notes == ("labels never expire by age (labels.max_age_seconds is not set)",)


def test_a_short_history_says_the_reference_is_still_collecting(tmp_path: Path) -> None:
    history = _write(tmp_path / "h.jsonl", list(predictions(300, seed=2)))
    summary = replay(history, parse_config({}))
    version = summary.versions[("m", "1")]
    assert version.reference == "collecting 300 of 5000"
    assert version.windows == 0
    assert "collecting 300 of 5000" in _printed(summary)


def test_late_labels_join_in_replay_by_default(tmp_path: Path) -> None:
    """Labels delivered after every prediction, up to 1.5 days late: all join (no age rule in replay)."""
    events = list(predictions(1500, seed=3, dt=60.0))
    history = _write(tmp_path / "h.jsonl", [*events, *_labels(events, seed=3)])
    summary = replay(history, parse_config(SPARSE))
    assert summary.labels == {"m": {"joined": 1500, "expired": 0, "unmatched": 0}}
    assert summary.warnings == ()
    assert "labels never expire by age (labels.max_age_seconds is not set)" in summary.notes


def test_late_labels_that_expire_are_counted_and_warned(tmp_path: Path) -> None:
    """With labels.max_age_seconds set to a day, labels of predictions older than a day expire."""
    events = list(predictions(1500, seed=3, dt=60.0))  # 25 h of predictions
    history = _write(tmp_path / "h.jsonl", [*events, *_labels(events, seed=3)])
    config = parse_config({**SPARSE, "labels": {"max_age_seconds": 43_200}})
    summary = replay(history, config)
    outcomes = summary.labels["m"]
    # label i comes at 89,940 + 1 + i s, prediction i at 60 i: joined while 89,941 - 59 i <= 43,200
    joined = sum(1 for i in range(1500) if 89_941 + i - 60 * i <= 43_200)
    assert outcomes == {"joined": joined, "expired": 1500 - joined, "unmatched": 0}
    threshold, expired = summary.warnings
    assert f"m: {1500 - joined} of 1500 labels expired" in expired
    assert "Raise labels.max_age_seconds" in expired
    # the reference period's labels (predictions 0-999) mostly expired too: no threshold for the label window
    reference_joined = sum(1 for i in range(1000) if 89_941 + i - 60 * i <= 43_200)
    assert threshold == (
        "m/1: 1 label windows evaluated without a performance threshold: "
        f"{reference_joined} of the 500 labels of the reference period joined (models.m.reference_labels); "
        "only the fixed 10% rules apply"
    )
    assert "Labels" in _printed(summary)


def test_configured_time_rules_are_kept_in_replay() -> None:
    config = parse_config(
        {
            "defaults": {"window": {"max_seconds": 30}},
            "labels": {"max_age_seconds": 10},
            "models": {"a": {"window": {"events": 10}}, "b": {"window": {"max_seconds": 5}}},
        }
    )
    replayed, notes = for_replay(config)
    assert replayed.window_for("x").max_seconds == 30
    assert replayed.window_for("a").max_seconds == float("inf")
    assert replayed.window_for("b").max_seconds == 5
    assert replayed.labels.max_age_seconds == 10
    assert notes == ("windows close on window.events only where window.max_seconds is not set",)


def test_event_gaps_median_within_its_bucket() -> None:
    rng = np.random.default_rng(0)
    times = np.cumsum(rng.exponential(10.0, 10_001))
    gaps = EventGaps()
    for t in times:
        gaps.add(float(t))
    exact = float(np.median(np.diff(times)))
    assert gaps.median() == pytest.approx(exact, rel=0.13)
    assert EventGaps().median() is None
