"""SDK backfill: ``when_full="block"`` drops nothing, ``log_predictions`` takes a history of records."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from driftline import Client, FileTransport, Label, MemoryTransport, Prediction, decode


class HangingTransport:
    """A transport whose send waits until ``release`` is set (a broker that hangs)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.received: list[bytes] = []

    def send(self, key: str, payload: bytes) -> None:
        self.release.wait(10.0)
        self.received.append(payload)

    def flush(self, timeout: float) -> int:
        return 0

    def close(self) -> None:
        return None


def _records(n: int, seed: int) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    return [
        {
            "features": {"a": float(row[0]), "b": float(row[1]), "c": "north" if row[2] > 0 else "south"},
            "prediction": int(row[0] > 0),
            "probabilities": {"0": 0.4, "1": 0.6},
            "event_id": f"e{i}",
            "timestamp": 1_700_000_000.0 + 523.0 * i,
        }
        for i, row in enumerate(x)
    ]


def test_blocking_mode_delivers_100000_of_100000(tmp_path: Path) -> None:
    """The reported loss: 83% of 100,000 events logged in a tight loop were dropped (queue of 10,000)."""
    path = tmp_path / "events.jsonl"
    records = _records(100_000, seed=0)
    client = Client("m", "1", FileTransport(path), max_queue=1_000, when_full="block")
    ids = client.log_predictions(records)
    client.close(timeout=120.0)
    stats = client.stats
    assert (stats.enqueued, stats.sent, stats.dropped_queue_full, stats.invalid) == (100_000, 100_000, 0, 0)
    lines = path.read_bytes().splitlines()
    assert len(lines) == 100_000
    assert (
        [decode(line).event_id for line in lines[::9973]]
        == ids[::9973]
        == [f"e{i}" for i in range(0, 100_000, 9973)]
    )


def test_the_default_still_drops_on_a_full_queue() -> None:
    transport = HangingTransport()
    client = Client("m", "1", transport, max_queue=5)
    assert client.when_full == "drop"
    started = time.perf_counter()
    client.log_predictions(_records(100, seed=1))
    assert time.perf_counter() - started < 1.0
    assert client.stats.dropped_queue_full >= 95
    transport.release.set()
    client.close(timeout=5.0)


def test_a_blocked_caller_returns_when_the_client_closes() -> None:
    transport = HangingTransport()
    client = Client("m", "1", transport, max_queue=2, when_full="block")
    producer = threading.Thread(target=client.log_predictions, args=(_records(5, seed=2),))
    producer.start()
    deadline = time.monotonic() + 5.0
    while client.stats.enqueued < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    producer.join(0.3)
    assert producer.is_alive(), "the third event should wait for room"
    assert (client.stats.enqueued, client.stats.dropped_queue_full) == (2, 0)
    closer = threading.Thread(target=client.close, kwargs={"timeout": 1.0})
    closer.start()
    producer.join(5.0)
    assert not producer.is_alive()
    transport.release.set()
    closer.join(10.0)
    stats = client.stats
    assert (stats.enqueued, stats.dropped_closed, stats.dropped_queue_full) == (2, 3, 0)


def test_records_with_labels_log_each_label_after_its_prediction() -> None:
    transport = MemoryTransport()
    records = _records(3, seed=3)
    records[0]["label"] = 1
    records[2].update(label=0, label_timestamp=1_800_000_000.0)
    with Client("m", "1", transport, when_full="block") as client:
        ids = client.log_predictions(iter(records))
    events = [decode(raw) for raw in transport.drain(10)]
    assert [type(e).__name__ for e in events] == ["Prediction", "Label", "Prediction", "Prediction", "Label"]
    first, label0, _, third, label2 = events
    assert isinstance(first, Prediction) and isinstance(label0, Label) and isinstance(label2, Label)
    assert (label0.event_id, label0.label, label0.timestamp) == (ids[0], 1, first.timestamp)
    assert (label2.event_id, label2.label, label2.timestamp) == (ids[2], 0, 1_800_000_000.0)
    assert isinstance(third, Prediction) and third.event_id == "e2"


def test_a_malformed_record_is_named_and_the_ones_before_it_are_kept() -> None:
    transport = MemoryTransport()
    records: list[dict[str, object]] = [*_records(2, seed=4), {"prediction": 1}, *_records(1, seed=5)]
    with Client("m", "1", transport) as client:
        with pytest.raises(ValueError, match="record 2: 'features'"):
            client.log_predictions(records)
        with pytest.raises(ValueError, match=r"record 0: .*unexpected keyword argument 'colour'"):
            client.log_predictions([{"features": {}, "prediction": 1, "colour": "red"}])
    assert client.stats.sent == 2
    with pytest.raises(ValueError, match="when_full must be 'drop' or 'block'"):
        Client("m", "1", MemoryTransport(), when_full="wait")  # type: ignore[arg-type]
