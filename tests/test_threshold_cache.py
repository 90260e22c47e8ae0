"""Calibrated thresholds are simulated once per shape per process, kept on disk, and unchanged by caching."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from collector.config import parse_config
from collector.dlq import MemoryDeadLetterSink
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from detectors import drift_calibration, threshold_cache
from detectors.base import FeatureKind, FeatureTable
from detectors.data_drift import DataDriftDetector
from detectors.drift_calibration import Calibrator, CountCells, RankCells, null_statistics, upper_quantile
from detectors.threshold_cache import ThresholdCache
from exporters.store import MetricStore
from tests.streams import lines, predictions

KINDS: dict[str, FeatureKind] = {"x": "numerical", "y": "numerical", "z": "numerical"}


@pytest.fixture
def simulations(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts null simulations by the kind of cells they ran for."""
    counted: Counter[str] = Counter()
    simulate = drift_calibration.null_statistics

    def counting(cells: drift_calibration.Cells, *args: object, **kwargs: object) -> np.ndarray:
        counted[cells.key[0]] += 1
        return simulate(cells, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(drift_calibration, "null_statistics", counting)
    return counted


def _table(rng: np.random.Generator, n: int) -> FeatureTable:
    return FeatureTable(KINDS, {name: rng.normal(size=n) for name in KINDS}, n)


def test_one_hundred_model_versions_of_one_shape_simulate_once(simulations: Counter[str]) -> None:
    """100 references of different data but one shape (3 continuous features, 1,000 rows), 4
    windows each: one simulation per window-size bucket (the window's and the pooled one's)."""
    cache = ThresholdCache(memory={})
    thresholds = set()
    for version in range(100):
        rng = np.random.default_rng(version)
        detector = DataDriftDetector(threshold_cache=cache)
        detector.fit(_table(rng, 1000))
        for _ in range(4):
            result = detector.evaluate(_table(rng, 200))
        thresholds.add((result.features[0].threshold, result.features[0].pooled_threshold))
    assert simulations == {"rank": 2}
    assert len(thresholds) == 1


def test_the_process_wide_store_is_shared_by_default(simulations: Counter[str]) -> None:
    rng = np.random.default_rng(11)
    first, second = DataDriftDetector(seed=9_017), DataDriftDetector(seed=9_017)
    first.fit(_table(rng, 700))
    second.fit(_table(rng, 700))
    assert first.evaluate(_table(rng, 300)).features[0].threshold == (
        second.evaluate(_table(rng, 300)).features[0].threshold
    )
    assert simulations == {"rank": 1}


def _uncached(cells: drift_calibration.Cells, calibrator: Calibrator, size: int) -> float:
    bucket = drift_calibration.size_bucket(size)
    null = null_statistics(cells, bucket, calibrator.n_sims, np.random.default_rng([calibrator.seed, bucket]))
    return upper_quantile(null, calibrator.level)


@pytest.mark.parametrize("kind", ["rank", "counts"])
def test_cached_thresholds_equal_the_simulation_bit_for_bit(kind: str, tmp_path: Path) -> None:
    cells: drift_calibration.Cells
    if kind == "rank":
        cells = RankCells.from_sorted(np.sort(np.random.default_rng(3).normal(size=2000)))
    else:
        cells = CountCells.from_counter(Counter({"a": 900, "b": 600, "c": 300, "d": 12}))
    fresh = Calibrator(alpha=0.01, n_features=4, seed=5, cache=ThresholdCache(tmp_path, memory={}))
    from_disk = Calibrator(alpha=0.01, n_features=4, seed=5, cache=ThresholdCache(tmp_path, memory={}))
    for size in (250, 1000):
        expected = _uncached(cells, fresh, size)
        assert fresh.threshold(cells, size) == expected
        assert from_disk.threshold(cells, size) == expected


def _two_features(folder: Path) -> Calibrator:
    """A calibrator as a restarted process has it: an empty memory, the same folder."""
    return Calibrator(alpha=0.01, n_features=2, cache=ThresholdCache(folder, memory={}))


def test_thresholds_survive_a_restart_through_the_cache_folder(
    tmp_path: Path, simulations: Counter[str]
) -> None:
    cells = RankCells.from_sorted(np.sort(np.random.default_rng(4).normal(size=1500)))
    before = _two_features(tmp_path).threshold(cells, 400)
    assert simulations == {"rank": 1}
    files = list(tmp_path.glob("*.json"))
    assert len(files) == 1
    stored = json.loads(files[0].read_text())
    assert stored["threshold"] == before
    assert json.loads(stored["key"])["format"] == 1
    assert _two_features(tmp_path).threshold(cells, 400) == before
    assert simulations == {"rank": 1}


@pytest.mark.parametrize(
    "garbage",
    ["", "not json", '{"key": "another", "threshold": 1.0}', "[1, 2]", '{"threshold": "NaN"}'],
)
def test_a_corrupt_cache_file_is_ignored_recomputed_and_replaced(
    tmp_path: Path, simulations: Counter[str], garbage: str
) -> None:
    cells = RankCells.from_sorted(np.sort(np.random.default_rng(4).normal(size=1500)))
    expected = _two_features(tmp_path).threshold(cells, 400)
    [path] = tmp_path.glob("*.json")
    path.write_text(garbage)
    again = _two_features(tmp_path).threshold(cells, 400)
    assert again == expected
    assert simulations == {"rank": 2}
    assert json.loads(path.read_text())["threshold"] == expected


def test_an_unwritable_cache_folder_keeps_thresholds_in_memory_and_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where the folder would be")
    cells = RankCells.from_sorted(np.sort(np.random.default_rng(4).normal(size=1500)))
    cache = ThresholdCache(blocked / "calibration", memory={})
    value = Calibrator(alpha=0.01, n_features=2, cache=cache).threshold(cells, 400)
    assert value == Calibrator(alpha=0.01, n_features=2, cache=cache).threshold(cells, 400)
    Calibrator(alpha=0.01, n_features=2, cache=cache).threshold(cells, 900)
    assert len(cache.memory) == 2
    warnings = [r for r in caplog.records if "cannot write the calibration cache" in r.getMessage()]
    assert len(warnings) == 1


@pytest.mark.parametrize(
    "change", [{"seed": 1}, {"alpha": 0.02}, {"n_features": 3}, {"n_sims": 30_000}, {"tests_per_feature": 2}]
)
def test_every_input_of_the_simulation_is_in_the_key(
    change: dict[str, float], simulations: Counter[str]
) -> None:
    cells = RankCells.from_sorted(np.sort(np.random.default_rng(4).normal(size=1500)))
    cache = ThresholdCache(memory={})
    base = {"alpha": 0.01, "n_features": 2, "seed": 0, "n_sims": 20_000, "tests_per_feature": 1}
    first = Calibrator(**base, cache=cache).threshold(cells, 400)  # type: ignore[arg-type]
    second = Calibrator(**{**base, **change}, cache=cache).threshold(cells, 400)  # type: ignore[arg-type]
    assert simulations == {"rank": 2}
    assert first != second
    other_counts = RankCells.from_sorted(np.sort(np.random.default_rng(4).normal(size=1600)))
    Calibrator(**base, cache=cache).threshold(other_counts, 400)  # type: ignore[arg-type]
    assert simulations == {"rank": 3}


def test_the_collector_keeps_thresholds_in_its_configured_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The process-wide memory is emptied: a threshold an earlier test left there is
    # served from memory and, rightly, not written again, which this test cannot tell
    # from a threshold that never reaches the folder.
    monkeypatch.setattr(threshold_cache, "_PROCESS_MEMORY", {})
    folder = tmp_path / "cache"
    config = parse_config(
        {
            "calibration_cache": str(folder),
            "defaults": {"reference": {"auto_events": 300}, "window": {"events": 100}},
        }
    )
    pipeline = Pipeline(config, MetricStore(), MemoryDeadLetterSink(), event_time=True)
    encoded = lines(list(predictions(400, seed=1)))
    messages = [RawMessage(line, "t", 0, i, 0.0) for i, line in enumerate(encoded)]
    pipeline.process(messages)
    state = pipeline.states[("m", "1")]
    assert state.windows_evaluated == 1
    stored = {json.loads(path.read_text())["threshold"] for path in folder.glob("*.json")}
    reported = {
        threshold
        for feature in state.status()["thresholds"].values()  # type: ignore[union-attr]
        for threshold in feature["thresholds_by_size"].values()
    }
    assert reported and reported <= stored


def test_a_relative_cache_folder_is_resolved_against_the_configuration_file(tmp_path: Path) -> None:
    config = parse_config({"calibration_cache": "cache"}, source=str(tmp_path / "driftline.yaml"))
    assert config.calibration_cache == tmp_path / "cache"
    assert parse_config({"calibration_cache": None}).calibration_cache is None


def test_the_default_cache_folder_is_the_users_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert parse_config({}).calibration_cache == tmp_path / "driftline" / "calibration"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert parse_config({}).calibration_cache == tmp_path / "home" / ".cache" / "driftline" / "calibration"
