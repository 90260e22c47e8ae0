"""Multiclass CBPE for one model version: the class probabilities in, estimated metrics out.

:class:`~collector.model_health.ModelHealth` calls this for a model whose
task is ``multiclass_classification``. The classes are the reference's
``proba_<class>`` columns (at least two); an event without probabilities, or
with a NaN among them, is left out of the estimate. Calibration comes from the
labelled reference file, else from the labels joined to the reference
period's predictions once there are enough of them; until then the raw
probabilities are used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
from driftline.schema import Scalar

from collector.references import Reference
from detectors.base import BatchStatistic
from detectors.multiclass_cbpe import MulticlassCBPE, MulticlassCBPEResult
from detectors.performance import class_key
from detectors.proxy_metrics import probability_matrix

FloatArray = npt.NDArray[np.float64]
Probabilities = Sequence[Mapping[str, float] | None]


class MulticlassEstimator:
    """A :class:`MulticlassCBPE` over the classes of one reference."""

    def __init__(self, classes: Sequence[str]) -> None:
        self.classes = tuple(classes)
        self.cbpe = MulticlassCBPE()
        self.cbpe.fit(np.zeros((0, len(self.classes))), self.classes)

    @classmethod
    def from_reference(cls, reference: Reference) -> MulticlassEstimator | None:
        """The estimator for a reference with at least two class probabilities, else ``None``."""
        columns = reference.outputs.columns
        classes = sorted(name.removeprefix("proba_") for name in columns if name.startswith("proba_"))
        if len(classes) < 2:
            return None
        estimator = cls(classes)
        if reference.labels is not None:
            matrix = np.column_stack([columns[f"proba_{c}"].astype(np.float64) for c in classes])
            estimator.calibrate(matrix, list(reference.labels))
        return estimator

    def reference_statistic(self, reference: Reference) -> tuple[BatchStatistic, int] | None:
        """The estimate over the reference's rows with probabilities, and their count: what the
        estimated thresholds resample (None when no row has them all)."""
        columns = reference.outputs.columns
        if any(f"proba_{c}" not in columns for c in self.classes):
            return None
        matrix = np.column_stack([columns[f"proba_{c}"].astype(np.float64) for c in self.classes])
        rows = np.flatnonzero(~np.isnan(matrix).any(axis=1))
        if len(rows) == 0:
            return None
        present = matrix[rows]
        column = columns.get("prediction")
        predicted = None if column is None else [class_key(v) for v in column[rows]]
        return self.cbpe.on_resamples(present, predicted), len(rows)

    def matrix(self, probabilities: Probabilities) -> FloatArray:
        """The (events x classes) matrix of a window; NaN rows where an event has none."""
        return probability_matrix(probabilities, self.classes)

    def calibrate(self, matrix: FloatArray, labels: Sequence[Scalar | None]) -> None:
        """Refit the calibration on labelled rows (rows without NaN, labels present)."""
        keep = ~np.isnan(matrix).any(axis=1) & np.array([y is not None for y in labels], dtype=bool)
        if not keep.any():
            return
        actual = [class_key(y) for y, kept in zip(labels, keep, strict=True) if kept and y is not None]
        self.cbpe.fit(matrix[keep], self.classes, actual)

    def estimate(
        self, probabilities: Probabilities, predictions: Sequence[Scalar]
    ) -> MulticlassCBPEResult | None:
        """Estimated metrics of the events with complete probabilities (``None`` if there are none)."""
        matrix = self.matrix(probabilities)
        rows = np.flatnonzero(~np.isnan(matrix).any(axis=1))
        if len(rows) == 0:
            return None
        return self.cbpe.estimate(matrix[rows], [class_key(predictions[i]) for i in rows.tolist()])

    def expected_errors(self, matrix: FloatArray, predictions: Sequence[Scalar]) -> FloatArray | None:
        """Per-event probability that the prediction is wrong, or ``None`` if a row lacks probabilities."""
        if np.isnan(matrix).any():
            return None
        return self.cbpe.expected_errors(matrix, [class_key(v) for v in predictions])
