"""What the label join keeps of one prediction: enough to evaluate it once labelled.

A named tuple, not a frozen dataclass: as immutable, and built in a third of the
time (0.35 against 0.93 us), which counts because the pipeline builds one for every
prediction it holds and every label it joins.

>>> PredictionRecord.from_list(PredictionRecord("e1", "v3", 100.0, 1).to_list()).prediction
1
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

Scalar = float | int | str | bool


class PredictionRecord(NamedTuple):
    """What the label join keeps of one prediction: enough to evaluate it once labelled."""

    event_id: str
    model_version: str
    timestamp: float
    prediction: Scalar
    probabilities: Mapping[str, float] | None = None
    segments: Mapping[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "model_version": self.model_version,
            "timestamp": self.timestamp,
            "prediction": self.prediction,
            "probabilities": dict(self.probabilities) if self.probabilities is not None else None,
            "segments": dict(self.segments) if self.segments is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PredictionRecord:
        return cls(
            event_id=str(data["event_id"]),
            model_version=str(data["model_version"]),
            timestamp=float(data["timestamp"]),
            prediction=data["prediction"],
            probabilities=data.get("probabilities"),
            segments=data.get("segments"),
        )

    def to_list(self) -> list[Any]:
        """The compact form checkpoints use (a store holds up to ``max_entries`` of them).

        The mappings are not copied: records are immutable once added.
        """
        return [
            self.event_id,
            self.model_version,
            self.timestamp,
            self.prediction,
            self.probabilities,
            self.segments,
        ]

    @classmethod
    def from_list(cls, item: list[Any]) -> PredictionRecord:
        event_id, model_version, timestamp, prediction, probabilities, segments = item
        return cls(str(event_id), str(model_version), float(timestamp), prediction, probabilities, segments)
