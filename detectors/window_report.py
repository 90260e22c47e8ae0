"""What the detectors found in one closed window of a model version.

Plain result objects: the collector builds a :class:`WindowReport` when a
prediction window closes and a :class:`LabelWindowReport` when a window of
joined labels is evaluated, and hands them to its listeners (the HTML report
writer, the demo's view, the window history), so they need nothing from the
collector to read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from detectors.base import FeatureTable
from detectors.concept_drift import ConceptDriftResult
from detectors.data_drift import DataDriftResult
from detectors.data_quality import DataQualityResult
from detectors.embedding_drift import EmbeddingDriftResult
from detectors.fairness import FairnessResult
from detectors.multivariate_drift import MultivariateDriftResult
from detectors.performance import PerformanceResult
from detectors.performance_threshold import PerformanceThreshold
from detectors.proxy_metrics import ProxyResult

Estimator = Literal["cbpe", "multiclass_cbpe", "dle"]


@dataclass(frozen=True)
class PredictionHealth:
    """Model health read from one prediction window alone (no labels needed)."""

    proxy: ProxyResult | None = None
    """Confidence, entropy and low-confidence share (when the events carry probabilities)."""
    estimated: Mapping[str, float] | None = None
    """Estimated performance per metric: CBPE's (a binary or multiclass classifier with
    probabilities) or DLE's errors (a regressor)."""
    fairness: FairnessResult | None = None
    """Positive rate per segment value, disparate impact and parity difference per segment."""
    thresholds: Mapping[str, PerformanceThreshold] | None = None
    """The estimated metrics' thresholds from the reference (none without one)."""
    estimator: Estimator | None = None
    """What gave ``estimated``: binary CBPE, multiclass CBPE or a regressor's direct loss estimation."""


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
    health: PredictionHealth = PredictionHealth()
    """Proxy metrics, estimated performance and fairness of the same window."""
    embeddings: Mapping[str, EmbeddingDriftResult] = field(default_factory=dict)
    """Embedding drift per embedding name tested on this window."""
    multivariate: Mapping[str, MultivariateDriftResult] = field(default_factory=dict)
    """Multivariate drift per method run on this window (the domain classifier every k windows)."""


@dataclass(frozen=True)
class LabelWindowReport:
    """One evaluated window of joined labels: realized performance and concept drift."""

    model: str
    model_version: str
    reference_id: str
    index: int
    n_labels: int
    start: float
    """Time of the earliest prediction in the window."""
    end: float
    """Time of the latest prediction in the window."""
    performance: PerformanceResult
    concept_drift: ConceptDriftResult
    segments: FairnessResult | None = None
    """Accuracy per segment value (classifiers whose predictions carry segments)."""
    thresholds: Mapping[str, PerformanceThreshold] | None = None
    """The realized metrics' thresholds from the labelled reference (none without one)."""
