"""Window append: CPU cost of adding predictions to a window, columnar against the former lists.

``collector.windows.Window.add`` over ``--events`` decoded predictions of the
workload (20 features, probabilities), against a baseline in the same
process: the former layout, a Python list per feature and output column and
the ``Prediction`` kept (``ListWindow`` below, as ``collector/windows.py``
was before the columnar windows). Measured alone and followed by what a
window's close reads (the feature table in the kinds of its first rows), best of
``--rounds``; CPU time (``time.process_time``).

Run: ``.venv/bin/python bench/window_append.py [--full]``
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import harness
import workload
from driftline.schema import Prediction
from workload import raw

from collector.fast_decode import decode
from collector.tables import Value, build_table, infer_kind
from collector.windows import Window
from detectors.base import FeatureKind


class Appendable(Protocol):
    def add(self, event: Prediction, event_time: float) -> None: ...


class ListWindow:
    """The former window: per-name lists padded with None, an output row per event, every event kept."""

    def __init__(self, start: float) -> None:
        self.features: dict[str, list[Value]] = {}
        self.outputs: dict[str, list[Value]] = {}
        self.n_rows = 0
        self.predictions: list[Prediction] = []
        self.end = start

    def add(self, event: Prediction, event_time: float) -> None:
        _append(self.features, event.features, self.n_rows)
        row: dict[str, Value] = {"prediction": event.prediction}
        for cls, probability in (event.probabilities or {}).items():
            row[f"proba_{cls}"] = probability
        _append(self.outputs, row, self.n_rows)
        self.n_rows += 1
        self.predictions.append(event)
        self.end = max(self.end, event_time)


def _append(columns: dict[str, list[Value]], row: Mapping[str, Value], n_rows: int) -> None:
    for name, value in row.items():
        column = columns.get(name)
        if column is None:
            column = columns[name] = [None] * n_rows
        column.append(value)
    for column in columns.values():
        if len(column) < n_rows + 1:
            column.append(None)


def best_us(events: Sequence[Prediction], fill: Callable[[Sequence[Prediction]], object], n: int) -> float:
    """Best CPU microseconds per event of ``fill`` over ``n`` rounds."""
    return harness.best_seconds(fill, events, n) / len(events) * 1e6


def appended(make: Callable[[float], Appendable]) -> Callable[[Sequence[Prediction]], Appendable]:
    def fill(events: Sequence[Prediction]) -> Appendable:
        window = make(0.0)
        for event in events:
            window.add(event, 0.0)
        return window

    return fill


def columnar_closed(events: Sequence[Prediction]) -> object:
    window = appended(Window)(events)
    assert isinstance(window, Window)
    return window.features.table(window.features.infer_kinds({}))


def lists_closed(events: Sequence[Prediction]) -> object:
    window = appended(ListWindow)(events)
    assert isinstance(window, ListWindow)
    kinds: dict[str, FeatureKind] = {name: infer_kind(v) for name, v in window.features.items()}
    return build_table(window.features, kinds, window.n_rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, help="predictions per window (quick 20,000, full 50,000)")
    parser.add_argument("--rounds", type=int, help="rounds, best kept (quick 3, full 7)")
    parser.add_argument("--seed", type=int, default=0)
    args, chosen = harness.parse(
        parser, quick={"events": 20_000, "rounds": 3}, full={"events": 50_000, "rounds": 7}
    )
    run = harness.BenchRun("window_append", args, chosen)
    messages = raw(workload.messages((args.events * 3) // 2 + workload.LABEL_LAG, seed=args.seed))
    decoded = (decode(message.value) for message in messages)
    events = [event for event in decoded if isinstance(event, Prediction)][: args.events]
    columnar = best_us(events, appended(Window), args.rounds)
    lists = best_us(events, appended(ListWindow), args.rounds)
    run.figure("append_us_per_event", round(columnar, 3))
    run.figure("lists_append_us_per_event", round(lists, 3))
    run.compare("Window.add, per event", columnar, lists, "the former lists", "us")
    run.compare(
        "Window.add and the feature table, per event",
        best_us(events, columnar_closed, args.rounds),
        best_us(events, lists_closed, args.rounds),
        "the former lists",
        "us",
    )
    run.write()


if __name__ == "__main__":
    main()
