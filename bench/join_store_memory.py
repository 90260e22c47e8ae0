"""Memory of the label join store: bytes per held prediction and per tombstone, compact against the old form.

The soak's predictions (``bench/soak.py``'s stream: probabilities of two
classes, two segments, ids such as ``credit-risk-1-12345``) are encoded and
decoded by the collector's own decoder one at a time, as the collector reads
them, and added to a store; only what the store keeps stays alive. tracemalloc
counts the bytes allocated and still held after ``--predictions`` adds.

* baseline: the representation before ``collector/held_predictions.py``, built
  in the same process: an ``OrderedDict`` from ``event_id`` to the
  ``PredictionRecord`` with the decoded probabilities dict and the (folded,
  hence copied) segments dict; tombstones an ``OrderedDict`` of outcome strings;
* result: ``LabelJoinStore`` as the collector runs it.

A second pass adds twice as many predictions to stores of ``--predictions``
entries, so that as many are evicted and leave a tombstone: the extra bytes per
tombstone.

Run: ``.venv/bin/python bench/join_store_memory.py [--full] [--predictions N]``
(quick 20,000; full 100,000, the default ``labels.max_entries``).
"""

from __future__ import annotations

import argparse
import gc
import sys
import tracemalloc
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "sdk"))

import harness  # noqa: E402
from driftline.schema import Prediction, encode  # noqa: E402
from soak import Stream  # noqa: E402

from collector.fast_decode import decode  # noqa: E402
from collector.label_join import LabelJoinStore, PredictionRecord  # noqa: E402

BATCH = 2000
"""Predictions between two packings of the store's new ones (the collector's default batch)."""


class Store(Protocol):
    def add(self, record: PredictionRecord) -> object: ...


class OldStore:
    """The store's memory before the compact form: records with their dicts, string tombstones."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self.pending: OrderedDict[str, PredictionRecord] = OrderedDict()
        self.tombstones: OrderedDict[str, str] = OrderedDict()

    def add(self, record: PredictionRecord) -> None:
        self.pending[record.event_id] = record
        while len(self.pending) > self.max_entries:
            oldest_id, _ = self.pending.popitem(last=False)
            self.tombstones[oldest_id] = "expired"
            while len(self.tombstones) > self.max_entries:
                self.tombstones.popitem(last=False)


def encoded_predictions(n: int, seed: int) -> list[bytes]:
    """The soak stream's first ``n`` predictions, encoded as they are on the topic."""
    stream = Stream(total=n * 2, seed=seed)
    out: list[bytes] = []
    while len(out) < n:
        out.extend(encode(e) for e in stream.chunk(10_000) if isinstance(e, Prediction))
    return out[:n]


def records(encoded: list[bytes]) -> Iterator[PredictionRecord]:
    """Each event decoded on its own, its segments copied as the pipeline's fold does."""
    for data in encoded:
        event = decode(data)
        assert isinstance(event, Prediction)
        segments = dict(event.segments) if event.segments is not None else None
        yield PredictionRecord(
            event.event_id, event.model_version, 0.0, event.prediction, event.probabilities, segments
        )


def held_bytes(encoded: list[bytes], make: Callable[[], Store]) -> int:
    """Bytes still allocated after adding every event to a store made by ``make``."""
    gc.collect()
    tracemalloc.start()
    store = make()
    for count, record in enumerate(records(encoded), start=1):
        store.add(record)
        if count % BATCH == 0 and isinstance(store, LabelJoinStore):
            store.compact()  # as the pipeline does after each batch
    if isinstance(store, LabelJoinStore):
        store.compact()
    gc.collect()
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del store
    return held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictions", type=int, help="held predictions (quick 20,000; full 100,000)")
    parser.add_argument("--seed", type=int, default=0)
    args, chosen = harness.parse(parser, quick={"predictions": 20_000}, full={"predictions": 100_000})
    n = args.predictions
    run = harness.BenchRun("join_store_memory", args, chosen)
    encoded = encoded_predictions(2 * n, args.seed)
    def new_store() -> Store:
        return LabelJoinStore(max_entries=n)

    def old_store() -> Store:
        return OldStore(n)

    old, new = held_bytes(encoded[:n], old_store), held_bytes(encoded[:n], new_store)
    run.compare("bytes per held prediction", new / n, old / n, "PredictionRecord with dicts", "bytes")
    old_full, new_full = held_bytes(encoded, old_store), held_bytes(encoded, new_store)
    run.compare(
        "bytes per tombstone", (new_full - new) / n, (old_full - old) / n, "OrderedDict of str", "bytes"
    )
    for name, value in (("old_held", old), ("new_held", new), ("old_with_tombstones", old_full),
                        ("new_with_tombstones", new_full)):
        run.figure(name, value)
    run.write()


if __name__ == "__main__":
    main()
