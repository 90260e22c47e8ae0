"""Driftline client SDK: send prediction, label and heartbeat events from serving code."""

from driftline.client import Client, ClientStats
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
    "Client",
    "ClientStats",
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
