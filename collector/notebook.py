"""Batch analysis from a notebook: two DataFrames in, the windows table out (docs/batch.md).

:func:`analyze` turns an analysis DataFrame into prediction (and label)
events, writes them and the reference to a temporary folder and runs
``driftline replay`` on them with ``--windows-out``: the same pipeline, the
same detectors, the same rows. Nothing here computes a statistic.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from driftline.schema import Label, Prediction, encode
from rich.console import Console

from collector.config import Config, parse_config
from collector.replay import replay
from collector.window_table import read_window_table

START = 1_600_000_000.0
"""Event time of the first row when the frame has no timestamp column (one row a second)."""
PROGRESS_MIN_ROWS = 50_000


def analyze(
    reference: pd.DataFrame,
    analysis: pd.DataFrame,
    *,
    features: Sequence[str],
    prediction: str,
    probabilities: Mapping[str, str] | None = None,
    label: str | None = None,
    timestamp: str | None = None,
    segments: Sequence[str] = (),
    window_events: int = 1000,
    model: str = "model",
    model_version: str = "1",
    config: Mapping[str, Any] | None = None,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Every window of ``analysis`` against ``reference``, as the windows table.

    ``features`` name the feature columns; ``prediction`` the model output;
    ``probabilities`` map each class to its probability column
    (``{"1": "p_default"}``); ``label`` the ground truth, logged right after
    each prediction; ``timestamp`` the event time (datetimes or Unix seconds;
    default one row a second); ``segments`` columns whose values are segments
    for fairness. Windows hold ``window_events`` predictions. ``config`` is the
    rest of a ``driftline`` configuration (as a mapping; its ``models`` entry
    for ``model`` is merged). ``progress`` shows a progress bar (default: on
    inputs of 50,000 rows or more; replay draws it on files of 5 MB or more).

    Returns a DataFrame of :data:`collector.window_history.COLUMNS`, equal to
    what ``driftline replay --windows-out`` writes for the same events.
    """
    columns = [*features, prediction, *(probabilities or {}).values(), *segments]
    columns += [c for c in (label, timestamp) if c is not None]
    _check_columns("analysis", analysis, columns)
    _check_columns("reference", reference, [*features, prediction, *(probabilities or {}).values()])
    with tempfile.TemporaryDirectory(prefix="driftline-analyze-") as folder:
        reference_file = Path(folder) / "reference.parquet"
        _reference_frame(reference, features, prediction, probabilities, label).to_parquet(reference_file)
        history = Path(folder) / "history.jsonl"
        events = _events(
            analysis, features, prediction, probabilities, label, timestamp, segments, model, model_version
        )
        with history.open("wb") as out:
            for event in events:
                out.write(encode(event) + b"\n")
        settings = _config(config, model, model_version, reference_file, window_events, len(reference))
        windows = Path(folder) / "windows.parquet"
        show = len(analysis) >= PROGRESS_MIN_ROWS if progress is None else progress
        replay(history, settings, windows_out=windows, console=Console() if show else None)
        return pd.DataFrame(read_window_table(windows))


def _check_columns(name: str, frame: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"the {name} frame has no column {', '.join(map(repr, missing))}")


def _reference_frame(
    reference: pd.DataFrame,
    features: Sequence[str],
    prediction: str,
    probabilities: Mapping[str, str] | None,
    label: str | None,
) -> pd.DataFrame:
    """The reference in the reference-file layout: features, ``prediction``, ``proba_<class>``, ``label``."""
    frame = reference[list(features)].copy()
    frame["prediction"] = reference[prediction]
    for cls, column in (probabilities or {}).items():
        frame[f"proba_{cls}"] = reference[column]
    if label is not None and label in reference.columns:
        frame["label"] = reference[label]
    return frame


def _events(
    analysis: pd.DataFrame,
    features: Sequence[str],
    prediction: str,
    probabilities: Mapping[str, str] | None,
    label: str | None,
    timestamp: str | None,
    segments: Sequence[str],
    model: str,
    model_version: str,
) -> Iterator[Prediction | Label]:
    times = _times(analysis, timestamp)
    for position, values in enumerate(analysis.to_dict("records")):
        when = float(times[position])
        event_id = f"{position}"
        yield Prediction(
            event_id=event_id,
            model=model,
            model_version=model_version,
            features={name: _value(values[name]) for name in features},
            prediction=_value(values[prediction]),
            probabilities={cls: float(values[c]) for cls, c in probabilities.items()}
            if probabilities
            else None,
            segments={name: str(values[name]) for name in segments} if segments else None,
            timestamp=when,
        )
        if label is not None and _value(values[label]) is not None:
            yield Label(event_id=event_id, model=model, label=_value(values[label]), timestamp=when)


def _times(analysis: pd.DataFrame, timestamp: str | None) -> list[float]:
    """Unix seconds per row: from datetimes, from numbers, or one row a second."""
    if timestamp is None:
        return [START + i for i in range(len(analysis))]
    column = analysis[timestamp]
    if pd.api.types.is_datetime64_any_dtype(column):
        utc = pd.to_datetime(column, utc=True)
        return [t.timestamp() for t in utc]
    return [float(t) for t in column]


def _value(value: Any) -> Any:
    """A cell as the event schema takes it: plain Python scalars, NaN as missing."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _config(
    config: Mapping[str, Any] | None,
    model: str,
    model_version: str,
    reference_file: Path,
    window_events: int,
    reference_rows: int,
) -> Config:
    """The replay configuration: the caller's, with the reference file and the window size added."""
    raw: dict[str, Any] = dict(config or {})
    defaults = dict(raw.get("defaults", {}))
    defaults["window"] = {**defaults.get("window", {}), "events": window_events}
    models = dict(raw.get("models", {}))
    entry = dict(models.get(model, {}))
    entry["references"] = {**entry.get("references", {}), model_version: {"path": str(reference_file)}}
    models[model] = entry
    return parse_config({**raw, "defaults": defaults, "models": models})
