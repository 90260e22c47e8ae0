"""What an embedding costs the collector, against the same model without one, same run.

Two measures, each printed with its ratio to its baseline:

- per window: the univariate ``DataDriftDetector`` on 20 features (the
  baseline; a 5,000-row reference, windows of 1,000) against one
  ``EmbeddingDrift`` test of 128 and of 1,024 dimensions (the collector's
  settings: a reference sample of 1,000 vectors, windows of 1,000);
- per event: the whole pipeline (decode, validate, windows, every detector)
  on predictions of 20 features without an embedding (the baseline) and with
  one of 128 and of 1,024 dimensions: an automatic reference of 5,000 and two
  windows of 1,000, after an untimed run that calibrates the drift thresholds.

Run: ``.venv/bin/python bench/embedding_cost.py``
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sdk"))

from driftline.schema import Prediction, encode

from collector.config import parse_config
from collector.dlq import MemoryDeadLetterSink
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from detectors.base import FeatureKind, FeatureTable
from detectors.data_drift import DataDriftDetector
from detectors.embedding_drift import EmbeddingDrift
from exporters.store import MetricStore

FEATURES, WINDOWS, EVENTS = 20, 5, 7000
WIDTHS = (128, 1024)


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _table(rng: np.random.Generator, n: int) -> FeatureTable:
    kinds: dict[str, FeatureKind] = {f"n{i}": "numerical" for i in range(FEATURES)}
    columns = {name: rng.normal(size=n) for name in kinds}
    return FeatureTable(kinds, columns, n)


def per_window() -> None:
    rng = np.random.default_rng(1)
    univariate = DataDriftDetector(seed=0)
    univariate.fit(_table(rng, 5000))
    windows = [_table(rng, 1000) for _ in range(WINDOWS + 1)]
    univariate.evaluate(windows[0])  # thresholds for this window size, computed once
    baseline = float(np.median([_timed(lambda w=w: univariate.evaluate(w)) for w in windows[1:]]))
    print(f"per window: univariate, {FEATURES} features (baseline) {baseline * 1000:8.1f} ms  ratio 1.00")
    for width in WIDTHS:
        detector = EmbeddingDrift()
        fit = _timed(lambda d=detector, w=width: d.fit(rng.normal(size=(1000, w)).astype(np.float32)))
        vectors = [rng.normal(size=(1000, width)).astype(np.float32) for _ in range(WINDOWS)]
        median = float(np.median([_timed(lambda v=v, d=detector: d.evaluate(v)) for v in vectors]))
        print(
            f"per window: embedding of {width:4} dimensions      {median * 1000:8.1f} ms  "
            f"ratio {median / baseline:5.2f}  (fit {fit * 1000:.0f} ms)"
        )


def _events(width: int | None) -> list[RawMessage]:
    rng = np.random.default_rng(2)
    messages = []
    for i in range(EVENTS):
        event = Prediction(
            event_id=f"e{i}",
            model="m",
            model_version="1",
            features={f"n{k}": float(x) for k, x in enumerate(rng.normal(size=FEATURES))},
            prediction=int(i % 2),
            timestamp=1_700_000_000.0 + i * 0.01,  # 1,000 events a window: none closes by age
        )
        if width is not None:
            event = replace(event, embeddings={"text": tuple(rng.normal(size=width).tolist())})
        messages.append(RawMessage(encode(event), "p", 0, i, 0.0))
    return messages


def per_event() -> None:
    config = parse_config({"calibration_cache": None})
    results = {}
    for width in (None, None, *WIDTHS):  # the first run fills the process's calibration cache
        messages = _events(width)
        pipeline = Pipeline(config, MetricStore(), MemoryDeadLetterSink(), event_time=True)
        seconds = _timed(lambda p=pipeline, m=messages: p.process(m))
        assert pipeline.states[("m", "1")].windows_evaluated == 2
        results[width] = seconds / EVENTS
    baseline = results[None]
    for width, seconds in results.items():
        name = "no embedding (baseline)" if width is None else f"embedding of {width:4} dimensions"
        print(f"per event: {name:31} {seconds * 1e6:8.1f} us  ratio {seconds / baseline:5.2f}")


def main() -> None:
    per_window()
    per_event()


if __name__ == "__main__":
    main()
