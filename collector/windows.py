"""The current window of one model version: the accepted predictions since the last close.

Embedding vectors go to a bounded float32 sample per name
(:class:`~collector.embedding_buffer.EmbeddingBuffer`), and the window keeps
its predictions without them, so a window of wide vectors holds a few MB, not
a Python float per number.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from driftline.schema import Prediction, encode

from collector.embedding_buffer import EmbeddingBuffer
from collector.fast_decode import decode
from collector.tables import ColumnBuffer, Value


def output_row(event: Prediction) -> dict[str, Value]:
    """The model output as columns: ``prediction`` and one ``proba_<class>`` per class."""
    row: dict[str, Value] = {"prediction": event.prediction}
    if event.probabilities:
        for cls, probability in event.probabilities.items():
            row[f"proba_{cls}"] = probability
    return row


class Window:
    """Predictions collected for one window, column by column, with their event times."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.end = start
        self.features = ColumnBuffer()
        self.outputs = ColumnBuffer()
        self.embeddings = EmbeddingBuffer()
        self.predictions: list[Prediction] = []

    @property
    def n_events(self) -> int:
        return self.features.n_rows

    def add(self, event: Prediction, event_time: float) -> None:
        """Append one prediction."""
        self.features.append(event.features)
        self.outputs.append(output_row(event))
        if event.embeddings:
            self.embeddings.add(event.embeddings)
            event = replace(event, embeddings=None)
        self.predictions.append(event)
        self.end = max(self.end, event_time)

    def age(self, now: float) -> float:
        return now - self.start

    def to_dict(self) -> dict[str, Any]:
        """The window as plain data: its times, its predictions in their wire form, its embedding sample."""
        data: dict[str, Any] = {
            "start": self.start, "end": self.end, "events": [encode(p) for p in self.predictions]
        }
        if self.embeddings:
            data["embeddings"] = self.embeddings.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Window:
        """Rebuild a window from :meth:`to_dict`'s output by adding its predictions again."""
        window = cls(float(data["start"]))
        for raw in data["events"]:
            event = decode(raw)
            if not isinstance(event, Prediction):
                raise ValueError(f"a window holds predictions, not a {event.type}")
            window.add(event, window.start)
        window.end = float(data["end"])
        if "embeddings" in data:
            window.embeddings = EmbeddingBuffer.from_dict(data["embeddings"])
        return window
