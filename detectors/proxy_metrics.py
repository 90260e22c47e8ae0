"""Proxy metrics: what the predictions alone say about a classifier, before any label comes.

Per window: the mean top-class probability (``driftline_prediction_confidence``),
the mean entropy of the class probabilities in nats
(``driftline_prediction_entropy``), the share of predictions whose top-class
probability is under the configured confidence
(``driftline_low_confidence_ratio``) and the distribution of predicted classes.

Probabilities arrive as one mapping per event; :func:`probability_matrix` turns
a window of them into an (events x classes) array over a fixed class order,
missing classes as 0. For a binary model that sends only its positive class,
the other class gets ``1 - p``.

>>> import numpy as np
>>> result = ProxyMetrics(confidence_threshold=0.6).evaluate(
...     np.array([[0.9, 0.1], [0.55, 0.45], [0.2, 0.8]]), ("0", "1"))
>>> round(result.confidence, 4), round(result.low_confidence_ratio, 4)
(0.75, 0.3333)
>>> dict(result.class_distribution)
{'0': 0.6666666666666666, '1': 0.3333333333333333}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ProxyResult:
    """Label-free quality signals of one window."""

    n: int
    confidence: float
    """Mean top-class probability: ``driftline_prediction_confidence``."""
    entropy: float
    """Mean entropy of the probabilities, nats: ``driftline_prediction_entropy``."""
    low_confidence_ratio: float
    """Share of events whose top-class probability is under the threshold."""
    class_distribution: Mapping[str, float]
    """Share of events per predicted class (every class of the window, 0 included)."""


class ProxyMetrics:
    """Confidence, entropy, low-confidence share and predicted-class distribution.

    Parameters
    ----------
    confidence_threshold
        A prediction whose top-class probability is under this is low-confidence.
    """

    def __init__(self, confidence_threshold: float = 0.6) -> None:
        if not 0.0 < confidence_threshold <= 1.0:
            raise ValueError(
                f"confidence_threshold must be in (0, 1], got {confidence_threshold!r}"
            )
        self.confidence_threshold = confidence_threshold
        self.reset()

    def __repr__(self) -> str:
        return f"ProxyMetrics(confidence_threshold={self.confidence_threshold})"

    def reset(self) -> None:
        """Stateless: nothing to forget (kept for the detector shape)."""

    def evaluate(
        self,
        probabilities: npt.ArrayLike,
        classes: Sequence[str],
        predictions: Sequence[str] | None = None,
    ) -> ProxyResult:
        """Summarize one window of (events x classes) probabilities.

        ``predictions`` are the predicted class names when the events carry
        them; otherwise the top-probability class is the prediction.
        """
        matrix = np.asarray(probabilities, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] != len(classes):
            raise ValueError(
                f"probabilities must be (events x {len(classes)} classes), got shape {matrix.shape}"
            )
        top = matrix.max(axis=1)
        if predictions is None:
            names = np.asarray(classes, dtype=object)[matrix.argmax(axis=1)]
        else:
            names = np.asarray(predictions, dtype=object)
        labels = list(dict.fromkeys([*classes, *sorted(set(names.tolist()) - set(classes))]))
        n = matrix.shape[0]
        distribution = {label: float(np.sum(names == label)) / n for label in labels}
        return ProxyResult(
            n=n,
            confidence=float(np.mean(top)),
            entropy=float(np.mean(entropy(matrix))),
            low_confidence_ratio=float(np.mean(top < self.confidence_threshold)),
            class_distribution=distribution,
        )


def entropy(matrix: FloatArray) -> FloatArray:
    """Entropy in nats of each row, rows renormalized to sum to 1 (0 log 0 = 0)."""
    totals = matrix.sum(axis=1, keepdims=True)
    p = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    logs = np.log(p, out=np.zeros_like(p), where=p > 0)
    return -np.sum(p * logs, axis=1)


def probability_matrix(
    probabilities: Sequence[Mapping[str, float] | None], classes: Sequence[str]
) -> FloatArray:
    """Stack per-event probability mappings over ``classes``; an event without any is a NaN row.

    A binary event that names only one of the two classes gets the complement
    for the other.
    """
    index = {name: i for i, name in enumerate(classes)}
    matrix = np.zeros((len(probabilities), len(classes)), dtype=np.float64)
    for row, mapping in enumerate(probabilities):
        if mapping is None:
            matrix[row] = np.nan
            continue
        for name, value in mapping.items():
            if name in index:
                matrix[row, index[name]] = value
        if len(classes) == 2 and len(mapping) == 1:
            (name, value), = mapping.items()
            if name in index:
                matrix[row, 1 - index[name]] = 1.0 - value
    return matrix


def positive_probability(
    probabilities: Sequence[Mapping[str, float] | None], positive_class: str
) -> FloatArray:
    """P(positive class) per event of a binary model; NaN where the event gives no probabilities.

    An event that names only the negative class gives ``1 - p``.
    """
    values = np.full(len(probabilities), np.nan)
    for row, mapping in enumerate(probabilities):
        if not mapping:
            continue
        if positive_class in mapping:
            values[row] = mapping[positive_class]
        elif len(mapping) == 1:
            values[row] = 1.0 - next(iter(mapping.values()))
    return values
