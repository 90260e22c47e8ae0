"""Model health through the pipeline: labels joined from the stream, reference performance from
the reference period's labels, concept drift told apart from covariate shift."""

from __future__ import annotations

import math

import numpy as np
from driftline.schema import Label, Prediction, encode

from collector.config import parse_config
from collector.dlq import MemoryDeadLetterSink
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from exporters.store import MetricStore

MV = {"model": "m", "model_version": "1"}
T0 = 1_700_000_000.0


class Stream:
    """A calibrated binary model p = sigmoid(2 x0); labels follow it unless the concept is flipped."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.index = 0

    def events(self, n: int, *, x0_scale: float = 1.5, flipped: bool = False) -> list[Prediction | Label]:
        out: list[Prediction | Label] = []
        for _ in range(n):
            x0 = float(self.rng.normal(0.0, x0_scale))
            x1 = float(self.rng.normal())
            p = 1.0 / (1.0 + math.exp(-2.0 * x0))
            truth_p = 1.0 - p if flipped else p
            event_id = f"e{self.index}"
            t = T0 + self.index * 0.01
            out.append(
                Prediction(
                    event_id=event_id,
                    model="m",
                    model_version="1",
                    features={"x0": x0, "x1": x1},
                    prediction=int(p >= 0.5),
                    probabilities={"0": 1 - p, "1": p},
                    timestamp=t,
                )
            )
            out.append(
                Label(event_id=event_id, model="m", label=int(self.rng.random() < truth_p), timestamp=t)
            )
            self.index += 1
        return out


def _pipeline() -> tuple[Pipeline, MetricStore]:
    config = parse_config({"models": {"m": {"reference_labels": 1000}}})
    store = MetricStore()
    return Pipeline(config, store, MemoryDeadLetterSink(), event_time=True), store


def _process(pipeline: Pipeline, events: list[Prediction | Label]) -> None:
    pipeline.process([RawMessage(encode(e), "t", 0, i, 0.0) for i, e in enumerate(events)])


def _concept(store: MetricStore, detector: str) -> float | None:
    value = store.get("driftline_concept_drift_detected", {**MV, "detector": detector})
    assert value is None or isinstance(value, float)
    return value


def test_reference_period_labels_give_the_reference_performance() -> None:
    pipeline, _ = _pipeline()
    _process(pipeline, Stream(1).events(5000))
    health = pipeline.states[("m", "1")].health
    assert health.reference_performance is not None
    accuracy = health.reference_performance.metrics["accuracy"]
    assert accuracy is not None and 0.75 < accuracy < 0.85
    assert health.status()["reference_labels_joined"] == 5000


def test_a_concept_change_is_concept_drift_and_no_data_drift() -> None:
    pipeline, store = _pipeline()
    stream = Stream(2)
    _process(pipeline, stream.events(5000 + 3000))
    assert _concept(store, "adwin") == 0.0 and _concept(store, "gap_test") == 0.0
    _process(pipeline, stream.events(1000, flipped=True))
    assert _concept(store, "adwin") == 1.0 and _concept(store, "gap_test") == 1.0
    _process(pipeline, stream.events(1000, flipped=True))
    assert _concept(store, "gap_test") == 1.0  # the gap persists; ADWIN flags the window of the change
    assert store.get("driftline_feature_drift_windows_total", {**MV, "feature": "x0"}) == 0.0
    realized = store.get("driftline_performance", {**MV, "metric": "accuracy", "source": "realized"})
    estimated = store.get("driftline_performance", {**MV, "metric": "accuracy", "source": "estimated"})
    assert isinstance(realized, float) and isinstance(estimated, float) and realized < estimated - 0.3


def test_covariate_shift_to_harder_inputs_is_data_drift_not_concept_drift() -> None:
    pipeline, store = _pipeline()
    stream = Stream(3)
    _process(pipeline, stream.events(5000 + 3000))
    before = store.get("driftline_performance", {**MV, "metric": "accuracy", "source": "realized"})
    _process(pipeline, stream.events(3000, x0_scale=0.4))
    after = store.get("driftline_performance", {**MV, "metric": "accuracy", "source": "realized"})
    estimated = store.get("driftline_performance", {**MV, "metric": "accuracy", "source": "estimated"})
    assert isinstance(before, float) and isinstance(after, float) and isinstance(estimated, float)
    assert after < before - 0.1
    assert abs(estimated - after) < 0.05
    assert store.get("driftline_feature_drift_detected", {**MV, "feature": "x0"}) == 1.0
    assert _concept(store, "adwin") == 0.0 and _concept(store, "gap_test") == 0.0
