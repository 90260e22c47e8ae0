"""Driftline client SDK: send prediction, label and heartbeat events from serving code."""

from driftline.schema import (
    SCHEMA_VERSION,
    Event,
    Heartbeat,
    Label,
    Prediction,
    RejectReason,
    SchemaError,
    decode,
    encode,
)
from driftline.transports import FileTransport, MemoryTransport, Transport

__all__ = [
    "SCHEMA_VERSION",
    "Event",
    "FileTransport",
    "Heartbeat",
    "Label",
    "MemoryTransport",
    "Prediction",
    "RejectReason",
    "SchemaError",
    "Transport",
    "decode",
    "encode",
]
