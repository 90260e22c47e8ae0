"""What the detectors found in one closed window of a model version.

A plain result object: the collector builds it when a window closes and hands
it to its window listeners (the HTML report writer, the demo's view), so they
need nothing from the collector to read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from detectors.base import FeatureTable
from detectors.data_drift import DataDriftResult
from detectors.data_quality import DataQualityResult


@dataclass(frozen=True)
class WindowReport:
    """Everything evaluated for one closed window."""

    model: str
    model_version: str
    data_version: str
    reference_id: str
    index: int
    n_events: int
    start: float
    end: float
    drift: DataDriftResult
    prediction_drift: DataDriftResult
    quality: DataQualityResult
    features: FeatureTable
    """The window's feature columns, typed by the reference's kinds (what the detectors read)."""
    reference_features: FeatureTable
    """The reference's feature columns the window was compared with."""
