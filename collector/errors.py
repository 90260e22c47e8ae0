"""The collector's errors: one small tree under :class:`DriftlineError`.

Errors from Kafka, HTTP or the file system are translated at the boundary
with ``raise ... from exc`` so callers catch these, not library internals.
"""

from __future__ import annotations


class DriftlineError(Exception):
    """Base of every error the collector raises on purpose."""


class ConfigError(DriftlineError):
    """The configuration file is missing, unreadable or invalid."""


class ReferenceDataError(DriftlineError):
    """A reference data file cannot be read or does not fit the model."""


class SourceError(DriftlineError):
    """A source (Kafka, file) failed in a way the pipeline cannot recover from."""


class DeadLetterBacklog(SourceError):
    """Dead letters were not acknowledged in time; they are still buffered and may be flushed again."""


class StateStoreError(DriftlineError):
    """The state store cannot be read or written now (its service is unreachable, a write timed out)."""
