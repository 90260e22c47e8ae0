"""The notebook example of docs/batch.md: a history with a covariate shift, analysed and plotted.

.venv/bin/python docs/examples/notebook_example.py   # writes docs/examples/notebook_example.png
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd

from collector.notebook import analyze
from collector.notebook_plot import plot_windows


def history(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """A calibrated binary model p = sigmoid(2 income); ``shift`` moves income and age."""
    rng = np.random.default_rng(seed)
    income = rng.normal(shift, 1.0, n)
    p = 1 / (1 + np.exp(-2 * income))
    return pd.DataFrame(
        {
            "income": income,
            "age": rng.normal(40 + 8 * shift, 10, n),
            "tenure": rng.exponential(3.0, n),
            "region": rng.choice(["north", "south"], n),
            "y_pred": (p >= 0.5).astype(int),
            "p_default": p,
            "defaulted": (rng.random(n) < p).astype(int),
        }
    )


def main() -> None:
    matplotlib.use("Agg")
    reference = history(5000, seed=1)
    analysis = pd.concat([history(5000, seed=2), history(5000, seed=3, shift=0.6)], ignore_index=True)
    analysis["ts"] = pd.date_range("2026-05-01", periods=len(analysis), freq="523s")  # events 523 s apart
    table = analyze(
        reference,
        analysis,
        features=["income", "age", "tenure", "region"],
        prediction="y_pred",
        probabilities={"1": "p_default"},
        label="defaulted",
        timestamp="ts",
        segments=["region"],
        window_events=1000,
    )
    windows = table[
        (table.kind == "window") & (table[["feature", "output", "segment", "embedding"]] == "").all(axis=1)
    ]
    print(
        windows[["window", "dataset_drift_share", "dataset_drift_detected", "accuracy"]].to_string(
            index=False
        )
    )
    plot_windows(table).savefig(Path(__file__).with_suffix(".png"), dpi=80)


if __name__ == "__main__":
    main()
