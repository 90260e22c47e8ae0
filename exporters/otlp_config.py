"""The OTLP exporters' own settings: the ``otlp:`` section of the collector's configuration.

They live with the exporters that read them, so the exporters never import
the collector; the collector's configuration embeds this model as-is.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from exporters.secrets import Secret


class OtlpConfig(BaseModel):
    """OTLP/HTTP export: off unless ``endpoint`` (the base URL, e.g. http://host:4318) is set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: str | None = None
    interval_seconds: float = Field(default=15.0, gt=0)
    timeout_seconds: float = Field(default=5.0, gt=0)
    headers: dict[str, Secret] = {}
    service_instance_id: str | None = None
    tracing: bool = False

    @model_validator(mode="after")
    def _tracing_needs_endpoint(self) -> OtlpConfig:
        if self.tracing and not self.endpoint:
            raise ValueError("tracing: true needs otlp.endpoint, where the spans are sent")
        return self
