"""The current window of one model version: the accepted predictions since the last close."""

from __future__ import annotations

from driftline.schema import Prediction

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
        self.predictions: list[Prediction] = []

    @property
    def n_events(self) -> int:
        return self.features.n_rows

    def add(self, event: Prediction, event_time: float) -> None:
        """Append one prediction."""
        self.features.append(event.features)
        self.outputs.append(output_row(event))
        self.predictions.append(event)
        self.end = max(self.end, event_time)

    def age(self, now: float) -> float:
        return now - self.start
