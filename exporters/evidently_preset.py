"""Evidently's ``DataDriftPreset`` run on Driftline's column kinds: one place for the HTML
reports, the parity tests and the benchmarks that use Evidently as the oracle.

Evidently is imported when a function is called, never at import time: it is
slow to import and the collector's hot path never needs it. It is a runtime
dependency; where it cannot be imported anyway (an install without it), the
functions raise :class:`EvidentlyMissing`, whose message is the pip command.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import pandas as pd

from detectors.base import FeatureKind

EVIDENTLY_INSTALL = "pip install 'evidently==0.7.23' 'pandas<3'"
"""What installs the Evidently that reports need (the pin of pyproject.toml's dependencies)."""


class EvidentlyMissing(ImportError):
    """Evidently cannot be imported, so no HTML report can be rendered."""


def _import(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise EvidentlyMissing(
            f"drift reports need Evidently, which cannot be imported ({exc}); install it with: "
            f"{EVIDENTLY_INSTALL}"
        ) from exc


def data_definition(kinds: Mapping[str, FeatureKind]) -> Any:
    """Evidently's ``DataDefinition`` naming each column numerical or categorical as Driftline does."""
    return _import("evidently").DataDefinition(
        numerical_columns=[name for name, kind in kinds.items() if kind == "numerical"],
        categorical_columns=[name for name, kind in kinds.items() if kind == "categorical"],
    )


def run_data_drift_preset(
    kinds: Mapping[str, FeatureKind], reference: pd.DataFrame, current: pd.DataFrame
) -> Any:
    """The snapshot of ``Report([DataDriftPreset()])`` for ``current`` against ``reference``."""
    evidently, presets = _import("evidently"), _import("evidently.presets")
    definition = data_definition(kinds)
    return evidently.Report([presets.DataDriftPreset()]).run(
        evidently.Dataset.from_pandas(current, data_definition=definition),
        evidently.Dataset.from_pandas(reference, data_definition=definition),
    )


def value_drift_metrics(snapshot: Any) -> list[dict[str, Any]]:
    """The per-column ``ValueDrift`` results of a preset snapshot (``config`` and ``value``)."""
    return [m for m in snapshot.dict()["metrics"] if m["config"]["type"].endswith("ValueDrift")]
