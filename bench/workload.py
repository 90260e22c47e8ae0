"""The throughput benches' seeded workload: predictions with probabilities, and labels, 2:1.

Each prediction has ``features`` features: every tenth one (``f9``, ``f19``,
...) a category of 5 values, the rest normal numbers; a binary prediction with
its two class probabilities; an event time 10 ms after the previous event. After every
second prediction comes the label of the prediction 100 events earlier, so
labels join (a real stream's labels lag). Models take turns (round robin), so
``models`` models share the same total traffic evenly.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from collector.pipeline import Pipeline
from collector.sources import RawMessage

T0 = 1_700_000_000.0
BATCH = 2000
"""Messages per ``Pipeline.process`` call, the collector's default batch."""
CATEGORIES = ("a", "b", "c", "d", "e")
LABEL_LAG = 100


def messages(
    predictions: int,
    *,
    features: int = 20,
    models: int = 1,
    seed: int = 0,
    start: int = 0,
    same_rows: bool = False,
) -> list[bytes]:
    """``predictions`` predictions and half as many labels, as JSON lines (no newline).

    ``start`` numbers the events (and their times) after an earlier call's; with
    ``same_rows`` every model gets the same feature values in the same order
    (the scaling bench's references, so that all models have one shape).
    """
    return list(_messages(predictions, features, models, seed, start, same_rows))


def _messages(
    predictions: int, features: int, models: int, seed: int, start: int, same_rows: bool
) -> Iterator[bytes]:
    rng = np.random.default_rng([seed, start])
    names = [f"f{i}" for i in range(features)]
    rows = -(-predictions // models) if same_rows else predictions
    numbers = rng.normal(size=(rows, features)).round(6)
    choices = rng.integers(0, len(CATEGORIES), size=(rows, features))
    truth = rng.random(rows)
    outcomes: list[tuple[str, str, int]] = []
    for event in range(predictions):
        index = start + event
        model = f"model-{index % models}"
        row = event // models if same_rows else event
        values: dict[str, float | str] = {
            name: CATEGORIES[choices[row, i]] if i % 10 == 9 else float(numbers[row, i])
            for i, name in enumerate(names)
        }
        score = 1.0 / (1.0 + math.exp(-float(numbers[row, 0])))
        event_id = f"e{index}"
        yield _line(
            {
                "type": "prediction",
                "schema_version": 1,
                "event_id": event_id,
                "model": model,
                "model_version": "1",
                "timestamp": T0 + 0.01 * index,
                "features": values,
                "prediction": int(score >= 0.5),
                "probabilities": {"0": round(1.0 - score, 6), "1": round(score, 6)},
            }
        )
        outcomes.append((event_id, model, int(truth[row] < score)))
        if event % 2 == 1 and len(outcomes) > LABEL_LAG:
            label_id, label_model, label = outcomes[-LABEL_LAG - 1]
            yield _line(
                {
                    "type": "label",
                    "schema_version": 1,
                    "event_id": label_id,
                    "model": label_model,
                    "label": label,
                    "timestamp": T0 + 0.01 * index + 0.005,
                }
            )


def _line(event: dict[str, object]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode("utf-8")


def raw(lines: Sequence[bytes]) -> list[RawMessage]:
    """The lines as a source delivers them (one partition, numbered offsets)."""
    return [RawMessage(line, "bench", 0, offset, 0.0) for offset, line in enumerate(lines)]


def feed(
    pipeline: Pipeline, messages: Sequence[RawMessage], after_batch: Callable[[], None] | None = None
) -> float:
    """CPU seconds ``pipeline`` takes to process ``messages`` in batches of ``BATCH``.

    CPU time of the process, not wall time: on a shared machine the wall time
    of the same work varies several-fold with the others' load. ``after_batch``
    runs after each batch, timed with it (``driftline collect`` freezes the heap there).
    """
    started = time.process_time()
    for at in range(0, len(messages), BATCH):
        pipeline.process(messages[at : at + BATCH])
        if after_batch is not None:
            after_batch()
    return time.process_time() - started
