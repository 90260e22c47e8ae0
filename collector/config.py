"""Configuration: one typed, validated model, read once at start (docs/configuration.md).

Every key is optional; with no file at all the collector runs on the defaults
below. A bad file fails with :class:`~collector.errors.ConfigError` naming the
path to the bad key and what was expected.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from collector.errors import ConfigError
from detectors.base import FeatureKind
from exporters.catalog import LIMITS
from exporters.otlp_config import OtlpConfig

DriftMode = Literal["calibrated", "evidently"]
DriftMethod = Literal["ks", "wasserstein", "psi", "jensenshannon", "chisquare", "ztest"]
Task = Literal["binary_classification", "multiclass_classification", "regression"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KafkaConfig(_Strict):
    bootstrap_servers: str = "localhost:9092"
    group_id: str = "driftline"
    predictions_topic: str = "driftline.predictions"
    labels_topic: str = "driftline.labels"
    dlq_topic: str = "driftline.dlq"
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    max_poll_records: int = Field(default=2000, ge=1)


class HttpConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=9108, ge=0, le=65535)


class WindowConfig(_Strict):
    events: int = Field(default=1000, ge=1)
    max_seconds: float = Field(default=60.0, gt=0)
    min_events: int = Field(default=100, ge=1)


class ReferenceDefaults(_Strict):
    auto_events: int = Field(default=5000, ge=1)


class DriftConfig(_Strict):
    mode: DriftMode = "calibrated"
    alpha: float = Field(default=0.01, gt=0, lt=1)
    persistence: int = Field(default=1, ge=1)
    drift_share: float = Field(default=0.5, gt=0, le=1)
    seed: int = 0
    pooled_windows: int = Field(default=4, ge=1)


class Defaults(_Strict):
    window: WindowConfig = WindowConfig()
    reference: ReferenceDefaults = ReferenceDefaults()
    drift: DriftConfig = DriftConfig()
    retire_after_seconds: float = Field(default=3600.0, gt=0)


class ReferenceFile(_Strict):
    path: Path
    data_version: str = "unknown"


class ConceptDriftConfig(_Strict):
    """Concept drift on the error stream of joined labels (see docs/model-health.md)."""

    detector: Literal["adwin", "page_hinkley", "ddm"] = "adwin"
    alpha: float = Field(default=0.001, gt=0, lt=1)
    tolerance: float = Field(default=0.01, ge=0)


class ModelConfig(_Strict):
    task: Task | None = None
    positive_class: str = "1"
    features: dict[str, FeatureKind] = {}
    drift_methods: dict[str, DriftMethod] = {}
    bounds: dict[str, tuple[float, float]] = {}

    @field_validator("bounds")
    @classmethod
    def _low_before_high(cls, bounds: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for feature, (low, high) in bounds.items():
            if not (math.isfinite(low) and math.isfinite(high) and low <= high):
                raise ValueError(f"bounds of {feature!r} must be finite [low, high] with low <= high")
        return bounds
    references: dict[str, ReferenceFile] = {}
    segments: list[str] = []
    concept_drift: ConceptDriftConfig = ConceptDriftConfig()
    confidence_threshold: float = Field(default=0.6, gt=0, lt=1)
    reference_labels: int = Field(default=500, ge=1)
    window: WindowConfig | None = None
    drift: DriftConfig | None = None


_LIMIT_DEFAULTS = {limit.setting: limit.default for limit in LIMITS}


class Limits(_Strict):
    """Cardinality limits; keys and defaults are the metric catalog's (``exporters.catalog.LIMITS``)."""

    max_models: int = Field(default=_LIMIT_DEFAULTS["max_models"], ge=1)
    max_model_versions: int = Field(default=_LIMIT_DEFAULTS["max_model_versions"], ge=1)
    max_features: int = Field(default=_LIMIT_DEFAULTS["max_features"], ge=1)
    max_segment_values: int = Field(default=_LIMIT_DEFAULTS["max_segment_values"], ge=1)
    max_instances: int = Field(default=_LIMIT_DEFAULTS["max_instances"], ge=1)


class InstancesConfig(_Strict):
    """Serving instances seen through heartbeats (event time in replay, wall clock in collect)."""

    heartbeat_timeout_seconds: float = Field(default=30.0, gt=0)
    forget_after_seconds: float = Field(default=3600.0, gt=0)


class LabelsConfig(_Strict):
    """The label join store, one per model: bounded in entries and in age."""

    max_entries: int = Field(default=100_000, ge=1)
    max_age_seconds: float = Field(default=86_400.0, gt=0)


class Config(_Strict):
    kafka: KafkaConfig = KafkaConfig()
    http: HttpConfig = HttpConfig()
    defaults: Defaults = Defaults()
    models: dict[str, ModelConfig] = {}
    limits: Limits = Limits()
    instances: InstancesConfig = InstancesConfig()
    otlp: OtlpConfig = OtlpConfig()
    labels: LabelsConfig = LabelsConfig()
    reference_registry: Path | None = None

    def model(self, name: str) -> ModelConfig:
        """The configuration of one model (defaults where it has none)."""
        return self.models.get(name) or ModelConfig()

    def window_for(self, name: str) -> WindowConfig:
        return self.model(name).window or self.defaults.window

    def drift_for(self, name: str) -> DriftConfig:
        return self.model(name).drift or self.defaults.drift


def load_config(path: str | Path | None) -> Config:
    """Read and validate a YAML file; ``None`` gives the defaults."""
    if path is None:
        return Config()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration: {exc.strerror}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return parse_config(raw if raw is not None else {}, source=str(path))


def parse_config(raw: Any, source: str = "<config>") -> Config:
    """Validate an already-parsed mapping, resolving reference paths against the file's folder."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, got {type(raw).__name__}")
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from exc
    return _resolve_paths(config, Path(source).parent if source != "<config>" else Path.cwd())


def _describe(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid configuration"]
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"]) or "(top level)"
        lines.append(f"  {location}: {error['msg']} (got {error.get('input')!r})")
    return "\n".join(lines)


def _resolve_paths(config: Config, base: Path) -> Config:
    models = {}
    for name, model in config.models.items():
        references = {
            version: reference.model_copy(update={"path": base / reference.path})
            if not reference.path.is_absolute()
            else reference
            for version, reference in model.references.items()
        }
        models[name] = model.model_copy(update={"references": references})
    registry = config.reference_registry
    if registry is not None and not registry.is_absolute():
        registry = base / registry
    return config.model_copy(update={"models": models, "reference_registry": registry})
