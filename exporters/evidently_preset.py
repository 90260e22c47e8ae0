"""Evidently's ``DataDriftPreset`` run on Driftline's column kinds: one place for the HTML
reports, the parity tests and the benchmarks that use Evidently as the oracle.

Evidently is imported when a function is called, never at import time: it is
slow to import and the collector's hot path never needs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from detectors.base import FeatureKind


def data_definition(kinds: Mapping[str, FeatureKind]) -> Any:
    """Evidently's ``DataDefinition`` naming each column numerical or categorical as Driftline does."""
    from evidently import DataDefinition

    return DataDefinition(
        numerical_columns=[name for name, kind in kinds.items() if kind == "numerical"],
        categorical_columns=[name for name, kind in kinds.items() if kind == "categorical"],
    )


def run_data_drift_preset(
    kinds: Mapping[str, FeatureKind], reference: pd.DataFrame, current: pd.DataFrame
) -> Any:
    """The snapshot of ``Report([DataDriftPreset()])`` for ``current`` against ``reference``."""
    from evidently import Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = data_definition(kinds)
    return Report([DataDriftPreset()]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )


def value_drift_metrics(snapshot: Any) -> list[dict[str, Any]]:
    """The per-column ``ValueDrift`` results of a preset snapshot (``config`` and ``value``)."""
    return [m for m in snapshot.dict()["metrics"] if m["config"]["type"].endswith("ValueDrift")]
