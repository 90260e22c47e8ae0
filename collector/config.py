"""Configuration: one typed, validated model, read once at start (docs/configuration.md).

Every key is optional; with no file at all the collector runs on the defaults
below. A bad file fails with :class:`~collector.errors.ConfigError` naming the
path to the bad key and what was expected.
"""

from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from collector.errors import ConfigError
from detectors.base import FeatureKind
from exporters.catalog import LIMITS
from exporters.otlp_config import OtlpConfig
from exporters.report_config import ReportsConfig
from exporters.secrets import BASE_DIR, Secret, secret_fields

DriftMode = Literal["calibrated", "evidently"]
DriftMethod = Literal["ks", "wasserstein", "psi", "jensenshannon", "chisquare", "ztest"]
Task = Literal["binary_classification", "multiclass_classification", "regression"]
SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
TLS_FILES = ("ssl_cafile", "ssl_certfile", "ssl_keyfile")
"""The Kafka TLS keys holding paths (resolved against the configuration file's folder)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


CONFLUENT_INSTALL = "pip install 'driftline-collector[confluent]'"
"""How to install the optional confluent-kafka client (``kafka.client: confluent``)."""


def confluent_installed() -> bool:
    """Whether confluent-kafka can be imported (looked up, not imported)."""
    return importlib.util.find_spec("confluent_kafka") is not None


class KafkaConfig(_Strict):
    client: Literal["kafka-python", "confluent"] = "kafka-python"
    """The consumer's client library; ``confluent`` needs the ``confluent`` extra."""
    bootstrap_servers: str = "localhost:9092"
    group_id: str = "driftline"
    predictions_topic: str = "driftline.predictions"
    labels_topic: str = "driftline.labels"
    dlq_topic: str = "driftline.dlq"
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    max_poll_records: int = Field(default=2000, ge=1)
    commit_stall_seconds: float = Field(default=30.0, gt=0)
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "PLAIN"
    sasl_plain_username: str | None = None
    sasl_plain_password: Secret | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_password: Secret | None = None

    @model_validator(mode="after")
    def _client_is_installed(self) -> KafkaConfig:
        if self.client == "confluent" and not confluent_installed():
            raise ValueError(
                f"client confluent needs the confluent-kafka package, which is not installed: "
                f"{CONFLUENT_INSTALL} (or set kafka.client: kafka-python)"
            )
        return self

    @model_validator(mode="after")
    def _credentials_fit_the_protocol(self) -> KafkaConfig:
        sasl = self.security_protocol.startswith("SASL_")
        tls = self.security_protocol.endswith("SSL")
        if sasl and not (self.sasl_plain_username and self.sasl_plain_password):
            raise ValueError(
                f"security_protocol {self.security_protocol} needs sasl_plain_username "
                "and sasl_plain_password"
            )
        if not sasl and (self.sasl_plain_username or self.sasl_plain_password):
            raise ValueError(
                "sasl_plain_username and sasl_plain_password need security_protocol "
                "SASL_PLAINTEXT or SASL_SSL"
            )
        for name in (*TLS_FILES, "ssl_password"):
            if getattr(self, name) is not None and not tls:
                raise ValueError(f"{name} needs security_protocol SSL or SASL_SSL")
        return self


def _given(**sources: object) -> list[str]:
    return [name for name, value in sources.items() if value is not None]


class HttpAuthConfig(_Strict):
    """Optional authentication of /metrics, /api/ and /reports/ (see docs/operations.md)."""

    mode: Literal["none", "basic", "bearer"] = "none"
    username: str | None = None
    password: Secret | None = None
    password_file: Path | None = None
    password_env: str | None = None
    token: Secret | None = None
    token_file: Path | None = None
    token_env: str | None = None

    @model_validator(mode="after")
    def _one_source_for_the_mode(self) -> HttpAuthConfig:
        passwords = _given(
            password=self.password, password_file=self.password_file, password_env=self.password_env
        )
        tokens = _given(token=self.token, token_file=self.token_file, token_env=self.token_env)
        if self.mode == "basic" and not (self.username and len(passwords) == 1 and not tokens):
            raise ValueError("mode basic needs username and one of password, password_file, password_env")
        if self.mode == "bearer" and not (len(tokens) == 1 and not passwords and not self.username):
            raise ValueError("mode bearer needs one of token, token_file, token_env (and no password)")
        if self.mode == "none" and (passwords or tokens or self.username):
            raise ValueError("mode none takes no username, password or token: set mode basic or bearer")
        return self


class HttpTlsConfig(_Strict):
    """HTTPS with a PEM certificate chain and its private key; both or neither."""

    cert_file: Path | None = None
    key_file: Path | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> HttpTlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("TLS needs both cert_file and key_file")
        return self


class HttpConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=9108, ge=0, le=65535)
    request_timeout_seconds: float = Field(default=10.0, gt=0)  # whole request: TLS, line, headers
    max_connections: int = Field(default=256, ge=1)  # more are answered 503 at once
    max_request_bytes: int = Field(default=16_384, ge=1024)  # request line and headers
    backlog: int = Field(default=1024, ge=1)
    report_workers: int = Field(default=1, ge=1)  # concurrent report renders (as many may wait)
    report_timeout_seconds: float = Field(default=120.0, gt=0)
    auth: HttpAuthConfig = HttpAuthConfig()
    tls: HttpTlsConfig = HttpTlsConfig()


class WindowConfig(_Strict):
    events: int = Field(default=1000, ge=1)
    max_seconds: float = Field(default=60.0, gt=0)
    min_events: int = Field(default=100, ge=1)


class ReferenceDefaults(_Strict):
    auto_events: int = Field(default=5000, ge=1)


class MultivariateDriftConfig(_Strict):
    """Drift no single column shows (see docs/drift.md#multivariate-drift)."""

    pca: bool = True
    variance_share: float = Field(default=0.65, gt=0, lt=1)
    domain_classifier: bool = False
    classifier_every_windows: int = Field(default=10, ge=1)
    classifier_max_rows: int = Field(default=1000, ge=20)


class DriftConfig(_Strict):
    mode: DriftMode = "calibrated"
    alpha: float = Field(default=0.01, gt=0, lt=1)
    persistence: int = Field(default=1, ge=1)
    drift_share: float = Field(default=0.5, gt=0, le=1)
    seed: int = 0
    pooled_windows: int = Field(default=4, ge=1)
    multivariate: MultivariateDriftConfig = MultivariateDriftConfig()


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
    performance_alpha: float = Field(default=0.01, gt=0, lt=0.5)  # false alarms per metric and window
    window: WindowConfig | None = None
    drift: DriftConfig | None = None
    champion: str | None = None  # else the oldest live version (collector/roles.py)


_LIMIT_DEFAULTS = {limit.setting: limit.default for limit in LIMITS}


class Limits(_Strict):
    """Cardinality limits; keys and defaults are the metric catalog's (``exporters.catalog.LIMITS``)."""

    max_models: int = Field(default=_LIMIT_DEFAULTS["max_models"], ge=1)
    max_model_versions: int = Field(default=_LIMIT_DEFAULTS["max_model_versions"], ge=1)
    max_features: int = Field(default=_LIMIT_DEFAULTS["max_features"], ge=1)
    max_segment_values: int = Field(default=_LIMIT_DEFAULTS["max_segment_values"], ge=1)
    max_instances: int = Field(default=_LIMIT_DEFAULTS["max_instances"], ge=1)
    max_embeddings: int = Field(default=_LIMIT_DEFAULTS["max_embeddings"], ge=1)


class InstancesConfig(_Strict):
    """Serving instances seen through heartbeats (event time in replay, wall clock in collect)."""

    heartbeat_timeout_seconds: float = Field(default=30.0, gt=0)
    forget_after_seconds: float = Field(default=3600.0, gt=0)


class LabelsConfig(_Strict):
    """The label join store, one per model: bounded in entries and in age, and so are early labels."""

    max_entries: int = Field(default=20_000, ge=1)
    max_age_seconds: float = Field(default=86_400.0, gt=0)
    max_early: int = Field(default=10_000, ge=0)
    """Labels held while their prediction is not seen yet (0: unmatched at once)."""
    max_early_age_seconds: float = Field(default=3_600.0, gt=0)


class HistoryConfig(_Strict):
    """Windows kept per model version for ``/api/v1/models/{model}/{version}/windows``."""

    windows: int = Field(default=100, ge=0, le=10_000)


def default_calibration_cache() -> Path:
    """``$XDG_CACHE_HOME/driftline/calibration``, or ``~/.cache/driftline/calibration``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "driftline" / "calibration"


class StateConfig(_Strict):
    """Checkpoints of each partition's state with its offsets (``driftline collect``)."""

    store: Literal["local", "kafka", "none"] = "local"
    """local: one collector, files in ``directory``; kafka: the compacted ``topic``, for several."""
    directory: Path = Path(".driftline/state")
    """For the local store; relative to the configuration file."""
    topic: str = "driftline.state"
    replication_factor: int | None = Field(default=None, ge=1)
    """Replicas of ``topic`` when Driftline creates it; unset: min(3, brokers in the cluster)."""
    interval_seconds: float = Field(default=10.0, gt=0)
    """Save at least this often while events flow."""
    min_interval_seconds: float = Field(default=1.0, ge=0)
    """A closed window saves at once, but not sooner than this after the last save (saves cost)."""
    replay_events: int = Field(default=100_000, ge=0)
    """Concept-drift inputs kept per version to rebuild river's detector on restore."""


class Config(_Strict):
    kafka: KafkaConfig = KafkaConfig()
    http: HttpConfig = HttpConfig()
    defaults: Defaults = Defaults()
    models: dict[str, ModelConfig] = {}
    limits: Limits = Limits()
    instances: InstancesConfig = InstancesConfig()
    otlp: OtlpConfig = OtlpConfig()
    reports: ReportsConfig = ReportsConfig()
    labels: LabelsConfig = LabelsConfig()
    history: HistoryConfig = HistoryConfig()
    state: StateConfig = StateConfig()
    reference_registry: Path | None = None
    calibration_cache: Path | None = Field(default_factory=default_calibration_cache)
    """Folder of calibrated drift thresholds kept across restarts; ``None`` keeps them in memory only."""

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
        raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(exc)}") from None
    return parse_config(raw if raw is not None else {}, source=str(path))


def parse_config(raw: Any, source: str = "<config>") -> Config:
    """Validate an already-parsed mapping, resolving reference paths against the file's folder."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, got {type(raw).__name__}")
    base = Path(source).parent if source != "<config>" else Path.cwd()
    try:
        config = Config.model_validate(raw, context={BASE_DIR: base})
    except ValidationError as exc:
        # from None: the pydantic error holds the raw input, secrets included.
        raise ConfigError(_describe(exc, source)) from None
    config = _resolve_paths(config, base)
    _check_tls_files(config.kafka, source)
    return config


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """The parser's complaint and position, without the quoted source line (it may hold a secret)."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"{exc.problem} at line {mark.line + 1}, column {mark.column + 1}"
    return type(exc).__name__


def _describe(exc: ValidationError, source: str) -> str:
    """One line per error; the offending value is echoed only when it cannot be a secret."""
    secrets = secret_fields(Config)
    lines = [f"{source}: invalid configuration"]
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"]) or "(top level)"
        line = f"  {location}: {error['msg']}"
        if _may_echo(error["loc"], error["type"], error.get("input"), secrets):
            line += f" (got {error.get('input')!r})"
        lines.append(line)
    return "\n".join(lines)


def _may_echo(
    loc: tuple[int | str, ...], kind: str, value: Any, secrets: set[tuple[str, ...]]
) -> bool:
    """Scalars only (a mapping may hold a secret), never under a secret or an unknown key."""
    scalar = value is None or isinstance(value, bool | int | float | str)
    under_secret = any(tuple(loc[: len(path)]) == path for path in secrets)
    return scalar and kind != "extra_forbidden" and not under_secret


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
    http = _resolve_http_paths(config.http, base)
    tls = {name: base / path for name in TLS_FILES if (path := getattr(config.kafka, name))}
    return config.model_copy(
        update={
            "models": models,
            "reference_registry": _resolve(config.reference_registry, base),
            "calibration_cache": _resolve(config.calibration_cache, base),
            "state": config.state.model_copy(update={"directory": _resolve(config.state.directory, base)}),
            "http": http,
            "kafka": config.kafka.model_copy(update=tls),
        }
    )


def _resolve_http_paths(http: HttpConfig, base: Path) -> HttpConfig:
    """Credential and certificate files named relative to the configuration file's folder."""

    def resolved(section: BaseModel, names: tuple[str, ...]) -> dict[str, Path]:
        paths = {name: getattr(section, name) for name in names}
        return {name: base / path for name, path in paths.items() if path and not path.is_absolute()}

    auth = http.auth.model_copy(update=resolved(http.auth, ("password_file", "token_file")))
    tls = http.tls.model_copy(update=resolved(http.tls, ("cert_file", "key_file")))
    return http.model_copy(update={"auth": auth, "tls": tls})


def _check_tls_files(kafka: KafkaConfig, source: str) -> None:
    for name in TLS_FILES:
        path = getattr(kafka, name)
        if path is not None and not path.is_file():
            raise ConfigError(f"{source}: invalid configuration\n  kafka.{name}: no such file {path}")


def _resolve(path: Path | None, base: Path) -> Path | None:
    if path is None:
        return None
    path = path.expanduser()
    return path if path.is_absolute() else base / path
