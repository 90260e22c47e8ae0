"""Checkpoints: a pipeline restored from a snapshot goes on exactly as if it had never stopped.

Round trips go through the real byte form (msgpack records in a local state
store), and every later result is compared with an uninterrupted run: each
window's drift scores and verdicts, label joins, concept drift signals and
every series of the model (counters included).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import pytest
from driftline.schema import Label, Prediction, encode

from collector.auto_references import AutomaticReferences
from collector.checkpoints import Checkpointer
from collector.config import Config, parse_config
from collector.dlq import MemoryDeadLetterSink
from collector.errors import StateStoreError
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from collector.state_codec import FORMAT_VERSION, StateFormatError, pack, unpack
from collector.state_store import LocalStateStore
from detectors.window_report import WindowReport
from exporters.store import MetricStore
from tests.streams import drifting_stream, predictions

CONFIG: dict[str, Any] = {
    "defaults": {
        "window": {"events": 500, "max_seconds": 1e9, "min_events": 100},
        "reference": {"auto_events": 1000},
        "drift": {"persistence": 2, "pooled_windows": 3, "drift_share": 0.2},
    },
    "models": {"m": {"reference_labels": 200, "segments": ["region"]}},
    "labels": {"max_early": 100},
}
STREAM = drifting_stream(9000, seed=21, shift_at=6000)
MV = {"model": "m", "model_version": "1"}


@dataclass
class Windows:
    """Listens to closed windows: what each one scored."""

    seen: list[tuple[Any, ...]] = field(default_factory=list)

    def __call__(self, report: WindowReport) -> None:
        drift = report.drift
        self.seen.append(
            (
                report.index,
                report.reference_id,
                report.n_events,
                drift.share,
                drift.detected,
                tuple(
                    (d.feature, d.score, d.flag_value, _number(d.pooled_flag_value), d.detected)
                    for d in drift.features
                ),
                tuple((d.feature, d.score) for d in report.prediction_drift.features),
            )
        )


def _number(value: float) -> float | None:
    """NaN (a test that did not run) as None, so that equal results compare equal."""
    return None if math.isnan(value) else value


def _messages(events: list[Prediction | Label], first: int) -> list[RawMessage]:
    topics = {"prediction": "p", "label": "l"}
    return [RawMessage(encode(e), topics[e.type], 0, first + i, 0.0) for i, e in enumerate(events)]


def _pipeline(store_dir: Path, config: Config | None = None) -> tuple[Pipeline, MetricStore, Windows]:
    metrics, windows = MetricStore(), Windows()
    pipeline = Pipeline(
        config or parse_config(CONFIG),
        metrics,
        MemoryDeadLetterSink(),
        event_time=False,
        listeners=(windows,),
        automatic_references=AutomaticReferences(LocalStateStore(store_dir), "g/"),
    )
    return pipeline, metrics, windows


def _model_series(metrics: MetricStore) -> dict[tuple[str, tuple[str, ...]], Any]:
    return {(name, tuple(key)): value for name, key, value in metrics.export_where(model="m")}


def _run_with_restarts(tmp_path: Path, cuts: list[int]) -> tuple[MetricStore, list[tuple[Any, ...]]]:
    """Process STREAM, stopping at each cut: snapshot, then a new pipeline restores and goes on."""
    store = LocalStateStore(tmp_path / "state")
    partitions = [("p", 0), ("l", 0)]
    seen: list[tuple[Any, ...]] = []
    start = 0
    pipeline, metrics, windows = _pipeline(tmp_path / "state")
    checkpointer = Checkpointer(pipeline, store, metrics, prefix="g/t/", interval_seconds=1e9)
    assert checkpointer.restore(partitions) == {}
    for cut in [*cuts, len(STREAM)]:
        pipeline.process(_messages(STREAM[start:cut], start))
        seen += windows.seen
        if cut == len(STREAM):
            break
        assert checkpointer.save({"p": {0: cut}, "l": {0: cut}})
        pipeline, metrics, windows = _pipeline(tmp_path / "state")
        checkpointer = Checkpointer(pipeline, store, metrics, prefix="g/t/", interval_seconds=1e9)
        assert checkpointer.restore(partitions) == {("p", 0): cut, ("l", 0): cut}
        start = cut
    return metrics, seen


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[MetricStore, list[tuple[Any, ...]]]:
    pipeline, metrics, windows = _pipeline(tmp_path_factory.mktemp("uninterrupted"))
    pipeline.process(_messages(STREAM, 0))
    return metrics, windows.seen


@pytest.mark.parametrize(
    "cuts",
    [
        [700],  # while the automatic reference is being collected
        [2_753, 6_020, 8_000],  # mid-window, just after the shift, late
        [1_178],  # right after the reference completed (labels of its period still coming)
    ],
)
def test_restored_pipeline_scores_every_window_like_an_uninterrupted_one(
    tmp_path: Path, cuts: list[int], uninterrupted: tuple[MetricStore, list[tuple[Any, ...]]]
) -> None:
    expected_metrics, expected_windows = uninterrupted
    metrics, windows = _run_with_restarts(tmp_path, cuts)
    assert len(expected_windows) == 16
    assert windows == expected_windows
    assert sum(w[4] for w in windows) >= 4  # the shift is detected, so the persistence state mattered
    expected = _model_series(expected_metrics)
    assert _model_series(metrics) == expected
    joined = expected[("driftline_labels_total", ("m", "joined"))]
    assert joined == 9000.0
    assert expected[("driftline_events_total", ("m", "1", "prediction"))] == 9000.0
    assert expected[("driftline_concept_drift_detected", ("m", "1", "gap_test"))] == 1.0


def test_a_restart_keeps_the_stored_automatic_reference_instead_of_building_one_from_drifted_events(
    tmp_path: Path,
) -> None:
    """The reported defect: shift at 6,000, restart at 10,000 (no snapshot: only the reference store)."""
    defaults = {"reference": {"auto_events": 1000}, "window": {"events": 200}, "drift": {"drift_share": 0.2}}
    config = parse_config({"defaults": defaults})
    before = [*predictions(6000, seed=3), *predictions(4000, seed=4, start=6000, shifted=("n1", "n2", "c1"))]
    after = list(predictions(4000, seed=5, start=10_000, shifted=("n1", "n2", "c1")))
    first, _, first_windows = _pipeline(tmp_path, config)
    first.process(_messages(list(before), 0))
    second, metrics, second_windows = _pipeline(tmp_path, config)
    second.process(_messages(list(after), 10_000))
    flagged_before = sum(w[4] for w in first_windows.seen[-20:])
    flagged_after = sum(w[4] for w in second_windows.seen)
    assert flagged_before == 20 and flagged_after == 20
    ids = {w[1] for w in first_windows.seen} | {w[1] for w in second_windows.seen}
    assert len(ids) == 1 and ids.pop().startswith("auto-")
    assert metrics.get("driftline_reference_changes_total", MV) == 0.0


def test_the_automatic_reference_id_is_a_hash_of_its_data(tmp_path: Path) -> None:
    config = parse_config({"defaults": {"reference": {"auto_events": 300}}})
    ids = []
    for seed in (8, 8, 9):
        pipeline, _, _ = _pipeline(tmp_path / str(len(ids)), config)
        pipeline.process(_messages(list(predictions(300, seed=seed)), 0))
        reference = pipeline.states[("m", "1")].reference
        assert reference is not None
        ids.append(reference.reference_id)
    assert ids[0] == ids[1] != ids[2]
    assert all(len(i) == len("auto-") + 16 for i in ids)


def test_a_reference_that_really_changed_shows_its_new_id_and_counts_a_change(tmp_path: Path) -> None:
    pipeline, metrics, _ = _pipeline(tmp_path / "state")
    pipeline.process(_messages(STREAM[:3000], 0))
    store = LocalStateStore(tmp_path / "state")
    checkpointer = Checkpointer(pipeline, store, metrics, prefix="g/t/", interval_seconds=1e9)
    checkpointer.restore([("p", 0)])
    checkpointer.save({"p": {0: 3000}})
    old_id = pipeline.states[("m", "1")].reference.reference_id  # type: ignore[union-attr]
    reference_file = tmp_path / "reference.csv"
    reference_file.write_text("n0,n1\n" + "".join(f"{i / 10},{i % 7}\n" for i in range(200)))
    registered = parse_config(
        {**CONFIG, "models": {"m": {"references": {"1": {"path": str(reference_file)}}}}}
    )
    pipeline, metrics, _ = _pipeline(tmp_path / "state", registered)
    Checkpointer(pipeline, store, metrics, prefix="g/t/", interval_seconds=1e9).restore([("p", 0)])
    status = pipeline.status()[0]
    new_id = status["reference"]["id"]  # type: ignore[index]
    assert new_id.startswith("ref-") and new_id != old_id
    assert metrics.get("driftline_reference_changes_total", MV) == 1.0
    info = {**MV, "data_version": "d1", "role": "champion"}
    assert metrics.get("driftline_model_info", {**info, "reference_id": new_id}) == 1.0
    assert metrics.get("driftline_model_info", {**info, "reference_id": old_id}) is None
    counted = sum(isinstance(e, Prediction) for e in STREAM[:3000])
    assert metrics.get("driftline_events_total", {**MV, "type": "prediction"}) == float(counted)


def test_an_unreadable_snapshot_is_counted_and_the_partition_starts_afresh(tmp_path: Path) -> None:
    store = LocalStateStore(tmp_path / "state")
    store.put("g/t/partition/0", b"\x93not msgpack at all")
    store.put("g/t/partition/1", pack("partition", {"offsets": {"p": 5}}))  # no models: wrong shape
    version = bytes([FORMAT_VERSION])
    other_version = pack("partition", {"offsets": {}, "models": {}}).replace(version, b"\x63", 1)
    store.put("g/t/partition/2", other_version)
    pipeline, metrics, _ = _pipeline(tmp_path / "state")
    checkpointer = Checkpointer(pipeline, store, metrics, prefix="g/t/", interval_seconds=1e9)
    assert checkpointer.restore([("p", 0), ("p", 1), ("p", 2)]) == {}
    assert metrics.get("driftline_state_snapshots_total", {"outcome": "unreadable"}) == 3.0
    assert checkpointer.owned == {0, 1, 2}
    pipeline.process(_messages(STREAM[:100], 0))
    assert metrics.get("driftline_events_total", {**MV, "type": "prediction"}) is not None


def test_a_format_1_snapshot_is_unreadable_and_its_partition_starts_afresh(tmp_path: Path) -> None:
    """Format 2 holds the label join store compactly; a format-1 store (a list of records) is not read."""
    store = LocalStateStore(tmp_path / "state")
    pipeline, metrics, _ = _pipeline(tmp_path / "state")
    checkpointer = Checkpointer(pipeline, store, metrics, prefix="g/t/", interval_seconds=1e9)
    checkpointer.restore([("p", 0)])
    pipeline.process(_messages(STREAM[:400], 0))
    assert checkpointer.save({"p": {0: 400}})
    record = msgpack.unpackb(store.get("g/t/partition/0") or b"", strict_map_key=False)
    joins = record["body"]["models"]["m"]["joins"]
    assert len(joins["pending"]["ids"]) > 0
    joins["pending"] = [[event_id, "1", 0.0, 1, None, None] for event_id in joins["pending"]["ids"]]
    record["format"] = 1
    store.put("g/t/partition/0", msgpack.packb(record, use_bin_type=True))
    pipeline, metrics, _ = _pipeline(tmp_path / "state")
    checkpointer = Checkpointer(pipeline, store, metrics, prefix="g/t/", interval_seconds=1e9)
    assert checkpointer.restore([("p", 0)]) == {}
    assert metrics.get("driftline_state_snapshots_total", {"outcome": "unreadable"}) == 1.0
    assert pipeline.joins == {}
    assert metrics.get("driftline_events_total", {**MV, "type": "prediction"}) is None


def test_offsets_are_committed_only_when_the_state_is_saved(tmp_path: Path) -> None:
    now = [0.0]
    pipeline, metrics, _ = _pipeline(tmp_path / "state")
    store = LocalStateStore(tmp_path / "state")
    checkpointer = Checkpointer(
        pipeline,
        store,
        metrics,
        prefix="g/t/",
        interval_seconds=5.0,
        min_interval_seconds=1.0,
        clock=lambda: now[0],
    )
    checkpointer.restore([("p", 0), ("l", 0)])
    pipeline.process(_messages(STREAM[:400], 0))
    assert not checkpointer.save_if_due({"p": {0: 400}})  # no window closed, interval not over
    assert store.get("g/t/partition/0") is None
    now[0] = 5.0
    assert checkpointer.save_if_due({"p": {0: 400}})
    pipeline.process(_messages(STREAM[400:3400], 400))  # the reference completes, a window closes
    assert not checkpointer.save_if_due({"p": {0: 3400}})  # but the last save was just now
    now[0] = 6.0
    assert checkpointer.save_if_due({"p": {0: 3400}, "l": {0: 3390}})
    body = unpack("partition", store.get("g/t/partition/0") or b"")
    assert body["offsets"] == {"p": 3400, "l": 3390}
    assert not checkpointer.save_if_due({"p": {0: 3401}})
    assert metrics.get("driftline_state_snapshots_total", {"outcome": "saved"}) == 2.0


def test_records_of_another_format_or_kind_are_refused() -> None:
    record = pack("partition", {"a": 1})
    assert unpack("partition", record) == {"a": 1}
    with pytest.raises(StateFormatError, match="automatic_reference"):
        unpack("automatic_reference", record)
    future = record.replace(bytes([FORMAT_VERSION]), bytes([FORMAT_VERSION + 1]), 1)
    with pytest.raises(StateFormatError, match="format"):
        unpack("partition", future)


def test_a_state_directory_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.raises(StateStoreError, match=r"state\.directory .*file/state"):
        LocalStateStore(blocked / "state")


def test_the_kafka_state_store_is_built_with_the_security_settings_of_every_kafka_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from collector import kafka_wiring

    built: dict[str, Any] = {}

    def fake(bootstrap_servers: str, topic: str, **options: Any) -> str:
        built.update(bootstrap_servers=bootstrap_servers, topic=topic, **options)
        return "store"

    monkeypatch.setattr(kafka_wiring, "KafkaStateStore", fake)
    kafka = {"security_protocol": "SASL_PLAINTEXT", "sasl_plain_username": "u", "sasl_plain_password": "p"}
    config = parse_config({"kafka": kafka, "state": {"store": "kafka", "topic": "s"}})
    assert kafka_wiring.build_state_store(config) == "store"
    assert built == {
        "bootstrap_servers": "localhost:9092",
        "topic": "s",
        "replication_factor": None,
        **kafka_wiring.security_options(config.kafka),
    }
    assert built["sasl_plain_password"] == "p"
    assert kafka_wiring.build_state_store(parse_config({"state": {"store": "none"}})) is None


def test_a_state_store_that_cannot_be_read_counts_unreadable_and_the_collector_goes_on(
    tmp_path: Path,
) -> None:
    class Unreachable(LocalStateStore):
        def get(self, key: str) -> bytes | None:
            raise StateStoreError("reading the state topic timed out")

    pipeline, metrics, _ = _pipeline(tmp_path / "state")
    checkpointer = Checkpointer(
        pipeline, Unreachable(tmp_path / "other"), metrics, prefix="g/t/", interval_seconds=1e9
    )
    assert checkpointer.restore([("p", 0)]) == {}
    assert metrics.get("driftline_state_snapshots_total", {"outcome": "unreadable"}) == 1.0


def test_a_partition_read_nothing_since_its_last_snapshot_is_not_written_again(tmp_path: Path) -> None:
    pipeline, metrics, _ = _pipeline(tmp_path / "state")
    store = LocalStateStore(tmp_path / "state")
    checkpointer = Checkpointer(pipeline, store, metrics, prefix="g/t/", interval_seconds=1e9)
    checkpointer.restore([("p", 0), ("p", 1)])
    pipeline.process(_messages(STREAM[:50], 0))
    assert checkpointer.save({"p": {0: 50}})
    assert metrics.get("driftline_state_snapshots_total", {"outcome": "saved"}) == 2.0  # both, once
    assert checkpointer.save({"p": {0: 50}})
    assert metrics.get("driftline_state_snapshots_total", {"outcome": "saved"}) == 2.0
    assert checkpointer.save({"p": {0: 60}})
    assert metrics.get("driftline_state_snapshots_total", {"outcome": "saved"}) == 3.0
    restored_metrics = MetricStore()
    restored = Checkpointer(
        _pipeline(tmp_path / "state")[0], store, restored_metrics, prefix="g/t/", interval_seconds=1e9
    )
    assert restored.restore([("p", 0)]) == {("p", 0): 60}
    assert restored.save({"p": {0: 60}})  # just restored: nothing to write
    assert restored_metrics.get("driftline_state_snapshots_total", {"outcome": "saved"}) == 0.0
