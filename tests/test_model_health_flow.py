"""The model-health components wired together the way the pipeline calls them, on one stream.

Predictions go into the label join and into prediction windows (proxy metrics,
CBPE, fairness); labels come later, out of order, and their joined pairs form
label windows (realized performance, concept drift, segment accuracy).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.label_join import JoinResult, LabelJoinStore, PredictionRecord
from collector.model_health import _ClassKeys
from detectors.cbpe import CBPE
from detectors.concept_drift import ConceptDriftDetector
from detectors.fairness import FairnessEvaluator
from detectors.performance import PerformanceEvaluator, class_key
from detectors.proxy_metrics import ProxyMetrics, positive_probability, probability_matrix

POSITIVE = "1"


def _records(rng: np.random.Generator, n: int, start: float) -> tuple[list[PredictionRecord], list]:
    p = rng.beta(2, 2, size=n)
    truth = (rng.random(n) < p).astype(int)
    regions = rng.choice(["eu", "us"], size=n)
    records = [
        PredictionRecord(
            event_id=f"e{start + i:.0f}",
            model_version="v1",
            timestamp=start + i,
            prediction=int(p[i] >= 0.5),
            probabilities={"1": float(p[i]), "0": float(1 - p[i])},
            segments={"region": str(regions[i])},
        )
        for i in range(n)
    ]
    return records, truth.tolist()


def test_predictions_and_late_labels_flow_through_every_component() -> None:
    rng = np.random.default_rng(0)
    reference, reference_labels = _records(rng, 3000, 0.0)
    ref_p = positive_probability([r.probabilities for r in reference], POSITIVE)
    cbpe = CBPE()
    cbpe.fit(ref_p, np.array(reference_labels))

    store = LabelJoinStore(max_entries=10_000, max_age_seconds=5000.0)
    window, truth = _records(rng, 2000, 10_000.0)
    for record in window:
        store.add(record)

    # Prediction window: proxy metrics, estimated performance, fairness.
    mappings = [r.probabilities for r in window]
    classes = ("0", "1")
    proxy = ProxyMetrics().evaluate(probability_matrix(mappings, classes), classes)
    p = positive_probability(mappings, POSITIVE)
    predicted_positive = np.array([class_key(r.prediction) == POSITIVE for r in window])
    estimated = cbpe.estimate(p, predicted_positive)
    fairness = FairnessEvaluator(["region"])
    segments = {"region": [(r.segments or {}).get("region") for r in window]}
    fair = fairness.evaluate(segments, predicted_positive)
    assert 0.5 <= proxy.confidence <= 1.0
    assert fair.segments["region"].disparate_impact == pytest.approx(1.0, abs=0.1)

    # Labels arrive shuffled; 100 never come and 50 are for unknown ids.
    order = rng.permutation(1900)
    results: list[JoinResult] = [
        store.join(window[i].event_id, truth[i], None, now=12_500.0) for i in order
    ]
    results += [store.join(f"x{i}", 1, None, now=12_500.0) for i in range(50)]
    outcomes = [r.outcome for r in results]
    assert (outcomes.count("joined"), outcomes.count("held")) == (1900, 50)  # unknown ids wait (early)
    store.expire(now=12_500.0 + 3_601.0)
    assert store.take_unmatched() == 50  # and are unmatched once they expire

    # Label window: realized performance, concept drift, segment accuracy.
    joined = [r for r in results if r.prediction is not None]
    records = [r.prediction for r in joined if r.prediction is not None]
    labels = [r.label for r in joined]
    predictions = [r.prediction for r in records]
    joined_p = positive_probability([r.probabilities for r in records], POSITIVE)
    realized = PerformanceEvaluator(None, POSITIVE).evaluate(labels, predictions, joined_p)
    assert realized.task == "binary_classification"
    assert realized.metrics["accuracy"] == pytest.approx(estimated.metrics["accuracy"], abs=0.03)

    positive = np.array([class_key(v) == POSITIVE for v in predictions])
    errors = np.array([class_key(y) != class_key(v) for y, v in zip(labels, predictions, strict=True)])
    drift = ConceptDriftDetector().update(errors, cbpe.expected_errors(joined_p, positive))
    assert not drift.detected and not drift.significant

    correct = (~errors).astype(float)
    joined_segments = {"region": [(r.segments or {}).get("region") for r in records]}
    by_region = fairness.evaluate(joined_segments, positive, correct).segments["region"]
    assert all(v.accuracy is not None and v.accuracy > 0.6 for v in by_region.values)
    assert sum(v.labelled for v in by_region.values) == 1900


classes = st.sampled_from([1, 0, 1.0, 0.0, -0.0, True, False, "1", "0", "1.0", "yes", 2, 2.5])


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.lists(st.tuples(classes, classes), max_size=30), st.sampled_from(["1", "0", "yes", "2.5", None]))
def test_a_label_window_compared_by_class_once_equals_the_per_event_comparison(
    pairs: list[tuple[object, object]], positive_class: str | None
) -> None:
    """ModelHealth compares a labelled window's classes once (realized accuracy, concept-drift
    errors, segment accuracy): the same as class_key event by event, whatever the form of a
    class (1, 1.0, True and "1" name one class; "1.0" and 2.5 others)."""
    labels = [label for label, _ in pairs]
    predictions = [prediction for _, prediction in pairs]
    keys = _ClassKeys.of(labels, predictions, positive_class)
    correct = [class_key(y) == class_key(v) for y, v in pairs]
    positive = [class_key(v) == positive_class for v in predictions]
    assert keys.correct.dtype == keys.positive.dtype == np.bool_
    assert keys.correct.tolist() == correct and keys.positive.tolist() == positive
