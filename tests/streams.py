"""Seeded synthetic event streams for pipeline tests."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
from driftline.schema import Heartbeat, Label, Prediction, Scalar, encode

NUMERICAL = ("n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7")
CATEGORICAL = ("c0", "c1", "c2", "c3")
CATEGORIES = ("a", "b", "c", "d")


def predictions(
    n: int,
    *,
    seed: int,
    start: int = 0,
    t0: float = 1_700_000_000.0,
    dt: float = 0.01,
    shifted: Sequence[str] = (),
    model: str = "m",
    model_version: str = "1",
    data_version: str = "d1",
) -> Iterator[Prediction]:
    """``n`` predictions of 8 numerical and 4 categorical features; ``shifted`` ones drift strongly."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        features: dict[str, float | str | None] = {}
        for name in NUMERICAL:
            features[name] = float(rng.normal(1.0 if name in shifted else 0.0, 1.0))
        for name in CATEGORICAL:
            p = (0.1, 0.2, 0.3, 0.4) if name in shifted else (0.4, 0.3, 0.2, 0.1)
            features[name] = str(rng.choice(CATEGORIES, p=p))
        score = 1 / (1 + np.exp(-float(features["n0"] or 0.0)))
        yield Prediction(
            event_id=f"{model}-{model_version}-{start + i}",
            model=model,
            model_version=model_version,
            data_version=data_version,
            features=features,
            prediction=int(score >= 0.5),
            probabilities={"0": 1 - score, "1": score},
            timestamp=t0 + (start + i) * dt,
            latency_ms=5.0,
            segments={"region": str(rng.choice(("north", "south")))},
        )


def lines(events: Sequence[Prediction | Label | Heartbeat]) -> list[bytes]:
    return [encode(event) for event in events]


def shadow_versions(
    n: int,
    *,
    seed: int,
    error_rates: dict[str, float],
    model: str = "m",
    start: int = 0,
    labelled: bool = True,
) -> list[Prediction | Label]:
    """The same traffic scored by several versions of one model (shadow deployment).

    Every version sees the same ``n`` feature rows and the same ground truth; a
    version's prediction is the truth flipped with its error rate (seeded per
    version), and one label per prediction follows each row's predictions.
    No probabilities, so only realized performance is computed.
    """
    truth = [int(y) for y in np.random.default_rng(seed).integers(0, 2, size=n)]
    rows = list(predictions(n, seed=seed, start=start, model=model))
    scored: dict[str, list[Scalar]] = {}
    for offset, (version, rate) in enumerate(sorted(error_rates.items())):
        wrong = np.random.default_rng(seed + 1 + offset).random(n) < rate
        scored[version] = [y ^ int(w) for y, w in zip(truth, wrong, strict=True)]
    events, labels = _shadow(rows, truth, scored, model=model, start=start)
    return events + labels if labelled else events


def shadow_regressors(
    n: int,
    *,
    seed: int,
    error_scales: dict[str, float],
    model: str = "m",
    start: int = 0,
) -> list[Prediction | Label]:
    """The same traffic scored by several versions of one regressor (shadow deployment).

    Every version sees the same ``n`` feature rows and the same true value; a
    version's prediction is the truth plus normal noise of its scale (seeded per
    version), so its mean absolute error is about ``0.8 * scale``; one label per
    prediction follows each row's predictions.
    """
    truth = np.random.default_rng(seed).normal(100.0, 10.0, size=n)
    rows = list(predictions(n, seed=seed, start=start, model=model))
    scored: dict[str, list[Scalar]] = {}
    for offset, (version, scale) in enumerate(sorted(error_scales.items())):
        noise = np.random.default_rng(seed + 1 + offset).normal(0.0, scale, size=n)
        scored[version] = [float(v) for v in truth + noise]
    events, labels = _shadow(rows, [float(y) for y in truth], scored, model=model, start=start)
    return events + labels


def _shadow(
    rows: list[Prediction],
    truth: Sequence[Scalar],
    scored: dict[str, list[Scalar]],
    *,
    model: str,
    start: int,
) -> tuple[list[Prediction | Label], list[Prediction | Label]]:
    """Each version's predictions of the same rows (without probabilities), and one label for each."""
    events: list[Prediction | Label] = []
    labels: list[Prediction | Label] = []
    for version, predicted in scored.items():
        for i, row in enumerate(rows):
            event_id = f"{model}-{version}-{start + i}"
            row = replace(row, event_id=event_id, model_version=version, prediction=predicted[i])
            events.append(replace(row, probabilities=None))
            labels.append(Label(event_id=event_id, model=model, label=truth[i], timestamp=row.timestamp))
    return events, labels


def drifting_stream(
    n: int, *, seed: int, shift_at: int, label_lag: int = 40, early_every: int = 7, model: str = "m"
) -> list[Prediction | Label]:
    """``n`` predictions whose features shift at ``shift_at``, and their labels.

    The model is right 85% of the time before the shift and 60% after it (so
    concept drift shows). A label follows its prediction ``label_lag`` events
    later, except every ``early_every``-th, which comes just before it (early).
    """
    events = [
        *predictions(shift_at, seed=seed, model=model),
        *predictions(n - shift_at, seed=seed + 1, start=shift_at, shifted=("n1", "n2", "c1"), model=model),
    ]
    rng = np.random.default_rng(seed + 2)
    ordered: list[Prediction | Label] = []
    pending: dict[int, Label] = {}
    for i, event in enumerate(events):
        right = rng.random() < (0.85 if i < shift_at else 0.6)
        truth = event.prediction if right else 1 - int(event.prediction)
        label = Label(
            event_id=event.event_id, model=event.model, label=truth, timestamp=(event.timestamp or 0) + 1
        )
        if early_every and i % early_every == 0:
            ordered.append(label)
        else:
            pending[i + label_lag] = label
        ordered.append(event)
        if i in pending:
            ordered.append(pending.pop(i))
    return ordered + [pending[i] for i in sorted(pending)]


def regression_rows(rng: np.random.Generator, n: int, spread: float, noise: float = 1.0) -> pd.DataFrame:
    """A regressor that predicts the mean of y exactly; the noise grows with |x0| (times ``noise``)."""
    x0, x1 = rng.normal(0.0, spread, n), rng.normal(0.0, 1.0, n)
    prediction = 2.0 * x0 - x1
    label = prediction + rng.normal(size=n) * (0.3 + np.abs(x0)) * noise
    return pd.DataFrame({"x0": x0, "x1": x1, "prediction": prediction, "label": label})


def regression_predictions(rows: pd.DataFrame, start: int = 0) -> list[Prediction]:
    """The predictions of :func:`regression_rows`, ids ``e<start>`` on, 0.01 s apart."""
    return [
        Prediction(
            event_id=f"e{start + i}",
            model="m",
            model_version="1",
            features={"x0": float(row.x0), "x1": float(row.x1)},
            prediction=float(row.prediction),
            timestamp=1_700_000_000.0 + (start + i) * 0.01,
        )
        for i, row in enumerate(rows.itertuples())
    ]
