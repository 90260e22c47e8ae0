"""The HTML reports' own settings: the ``reports:`` section of the collector's configuration.

They live with the report writer that reads them, so the exporters never
import the collector; the collector's configuration embeds this model as-is.
Every bound caps memory: a kept report holds its window's feature table (the
reference table is shared with the model version while it is current).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ReportsConfig(BaseModel):
    """How many windows the report index lists and how many reports stay browsable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keep_flagged: int = Field(default=10, ge=0, le=1000)
    """Reports kept per model version for its last N flagged windows (the latest window is kept too)."""
    index_windows: int = Field(default=100, ge=1, le=10_000)
    """Windows listed per model version on the index, newest first (a few fields each)."""
    max_versions: int = Field(default=50, ge=1, le=10_000)
    """Model versions with reports; beyond it, the version whose last window is oldest is forgotten."""
