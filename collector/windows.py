"""The current window of one model version: the accepted predictions since the last close.

A window (and a model version's automatic reference while it is collected,
5,000 predictions by default, for every idle version) keeps its predictions
column by column (:mod:`collector.columns`): numbers as float64, strings as
codes, event ids in one buffer, so 5,000 predictions of 20 features take
about 1 MB, not the 16 MB of a Python object per value and per event
(docs/benchmarks.md, "Memory while collecting"). Each
event reads back exactly as added (:meth:`Window.predictions`), which is how
a checkpoint stores the window. Embedding vectors go to a bounded float32
sample per name (:class:`~collector.embedding_buffer.EmbeddingBuffer`) and do
not read back.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from operator import attrgetter
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from driftline.schema import Prediction, Scalar, encode

from collector.columns import Codes, Column, Columns, ColumnSet, Texts
from collector.embedding_buffer import EmbeddingBuffer
from collector.fast_decode import decode

FloatArray = npt.NDArray[np.float64]
Context = tuple[str, str, str, str | None]
"""An event's model, model version, data version and error: the same for most events of a window."""


PENDING = 32
"""Events a window holds as they came before storing them column by column, in one go: a
Python call per batch and column, not per value. 32 events of 20 features are about 70 KB;
64 halve the batch overhead but put 100 idle versions over 150 MB."""


class Window:
    """Predictions collected for one window, column by column, with their event times."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.end = start
        self.embeddings = EmbeddingBuffer()
        self._pending: list[Prediction] = []
        self._features = Columns()
        self._probabilities = Columns()
        self._segments = Columns()
        self._event_ids = Texts()
        self._contexts: Codes[Context] = Codes()
        self._predictions = Column()
        self._timestamps = Column()
        self._latencies = Column()

    @property
    def n_events(self) -> int:
        return self._features.n_rows + len(self._pending)

    def add(self, event: Prediction, event_time: float) -> None:
        """Append one prediction (its embeddings to the sample)."""
        if event.embeddings:
            self.embeddings.add(event.embeddings)
            event = replace(event, embeddings=None)
        self._pending.append(event)
        if len(self._pending) >= PENDING:
            self._store()
        self.end = max(self.end, event_time)

    def _store(self) -> None:
        """Move the pending events into the columns."""
        events, self._pending = self._pending, []
        self._event_ids.extend(list(map(attrgetter("event_id"), events)))
        context = attrgetter("model", "model_version", "data_version", "error")
        self._contexts.extend(list(map(context, events)))
        self._features.extend(list(map(attrgetter("features"), events)))
        self._predictions.extend(list(map(attrgetter("prediction"), events)))
        self._probabilities.extend(list(map(attrgetter("probabilities"), events)))
        self._segments.extend(list(map(attrgetter("segments"), events)))
        self._timestamps.extend(list(map(attrgetter("timestamp"), events)))
        self._latencies.extend(list(map(attrgetter("latency_ms"), events)))

    @property
    def features(self) -> Columns:
        """The events' features, one column per name."""
        self._store()
        return self._features

    @property
    def outputs(self) -> ColumnSet:
        """The model output as columns: ``prediction`` and one ``proba_<class>`` per class."""
        self._store()
        columns = {"prediction": self._predictions}
        columns.update((f"proba_{cls}", column) for cls, column in self._probabilities.columns.items())
        return ColumnSet(columns, self.n_events)

    def event_ids(self) -> list[str]:
        self._store()
        return self._event_ids.values()

    def prediction_values(self) -> list[Scalar]:
        self._store()
        return cast("list[Scalar]", self._predictions.values())

    def probability_mappings(self) -> list[Mapping[str, float] | None]:
        """Each event's class probabilities, as given (``None`` where it gave none)."""
        self._store()
        return cast("list[Mapping[str, float] | None]", list(self._probabilities.rows()))

    def probability_matrix(self) -> tuple[list[str], FloatArray]:
        """The classes named by any event (sorted) and each event's probabilities over them:
        :func:`~detectors.proxy_metrics.probability_matrix` of :meth:`probability_mappings`,
        read from the columns (an event without probabilities is a NaN row, a class it does
        not name 0, the other of two classes ``1 - p`` when it names one)."""
        classes, given = self._class_probabilities()
        matrix = np.where(np.isnan(given), 0.0, given)
        shapes, codes = self._probabilities.row_shapes()
        if len(classes) == 2:
            named = np.array([_only_class(shape, classes) for shape in shapes], dtype=np.intp)[codes]
            rows = np.flatnonzero(named >= 0)
            matrix[rows, 1 - named[rows]] = 1.0 - matrix[rows, named[rows]]
        matrix[np.array([shape is None for shape in shapes], dtype=np.bool_)[codes]] = np.nan
        return classes, matrix

    def positive_probability(self, positive_class: str) -> FloatArray:
        """:func:`~detectors.proxy_metrics.positive_probability` of :meth:`probability_mappings`,
        read from the columns: the positive class's probability, ``1 - p`` from an event that
        names only another class, NaN from one that gives none or names two others."""
        classes, given = self._class_probabilities()
        shapes, codes = self._probabilities.row_shapes()
        values = np.full(len(codes), np.nan)
        if positive_class in classes:
            names_it = np.array([bool(shape and positive_class in shape) for shape in shapes], dtype=np.bool_)
            rows_naming_it = names_it[codes]
            values[rows_naming_it] = given[rows_naming_it, classes.index(positive_class)]
        only = [-1 if shape == (positive_class,) else _only_class(shape, classes) for shape in shapes]
        other = np.array(only, dtype=np.intp)[codes]
        rows = np.flatnonzero(other >= 0)
        values[rows] = 1.0 - given[rows, other[rows]]
        return values

    def _class_probabilities(self) -> tuple[list[str], FloatArray]:
        """The classes named by any event (sorted), and per event and class the probability it
        gives (NaN where it names none)."""
        self._store()
        columns = self._probabilities
        classes = sorted(columns.columns)
        given = np.empty((columns.n_rows, len(classes)))
        for position, name in enumerate(classes):
            given[:, position] = columns.columns[name].numerical()[0]
        return classes, given

    def gives_probabilities(self) -> bool:
        """Whether any event names a class probability (``any(self.probability_mappings())``)."""
        self._store()
        shapes, _ = self._probabilities.row_shapes()
        return any(shapes)

    def segment_mappings(self) -> list[Mapping[str, str] | None]:
        """Each event's segments, as given (``None`` where it gave none)."""
        self._store()
        return cast("list[Mapping[str, str] | None]", list(self._segments.rows()))

    def predictions(self) -> Iterator[Prediction]:
        """The events as added, without their embeddings."""
        self._store()
        contexts = self._contexts.values()
        columns = zip(
            self._event_ids.values(), contexts, self._features.rows(), self._predictions.values(),
            self._timestamps.values(), self._probabilities.rows(), self._latencies.values(),
            self._segments.rows(), strict=True,
        )
        for event_id, context, features, prediction, timestamp, probabilities, latency, segments in columns:
            model, model_version, data_version, error = context
            yield Prediction(
                event_id=event_id,
                model=model,
                model_version=model_version,
                features=features,
                prediction=prediction,
                timestamp=timestamp,
                data_version=data_version,
                probabilities=probabilities,
                latency_ms=latency,
                segments=segments,
                error=error,
            )

    def age(self, now: float) -> float:
        return now - self.start

    def to_dict(self) -> dict[str, Any]:
        """The window as plain data: its times, its predictions in their wire form, its embedding sample."""
        data: dict[str, Any] = {
            "start": self.start, "end": self.end, "events": [encode(p) for p in self.predictions()]
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


def _only_class(shape: tuple[Any, ...] | None, classes: list[str]) -> int:
    """The position in ``classes`` of the one class an event of this shape names (-1: not one)."""
    return classes.index(shape[0]) if shape is not None and len(shape) == 1 else -1
