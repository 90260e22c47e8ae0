"""Poison pills: messages that are valid JSON (mostly) but must never crash the collector.

Each comes with the reason and field it must be dead-lettered with. They are
plain byte lines without newlines, so the same list serves the pipeline, a
JSON-lines file for ``driftline replay`` and ``kcat`` producing to Kafka.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

BIG = "1" + "0" * 400  # an integer over float64's range
HUGE = "9" * 4301  # over Python's 4,300-digit limit for parsing an integer


@dataclass(frozen=True)
class Poison:
    name: str
    raw: bytes
    reason: str
    field: str


def valid(i: int, *, model: str = "m", model_version: str = "1") -> bytes:
    """A valid prediction, numbered (its event id and feature ``x``)."""
    event = {
        "type": "prediction",
        "schema_version": 1,
        "event_id": f"{model}-{i}",
        "model": model,
        "model_version": model_version,
        "features": {"x": float(i % 17), "c": "abcd"[i % 4]},
        "prediction": i % 2,
        "probabilities": {"0": 0.25, "1": 0.75},
        "segments": {"region": "north"},
        "latency_ms": 2.5,
    }
    return json.dumps(event, separators=(",", ":")).encode()


def _with(literal: str, path: str, base: bytes | None = None) -> bytes:
    """A valid prediction with the value at ``path`` (``a`` or ``a.b``) replaced by raw JSON."""
    event = json.loads(base or valid(0))
    target = event
    *parents, name = path.split(".")
    for parent in parents:
        target = target.setdefault(parent, {})
    target[name] = "__HOLE__"
    return json.dumps(event, separators=(",", ":")).replace('"__HOLE__"', literal).encode()


HEARTBEAT = b'{"type":"heartbeat","schema_version":1,"model":"m","model_version":"1","instance":"i"}'

POISONS: tuple[Poison, ...] = (
    Poison("latency-400-zeros", _with(BIG, "latency_ms"), "non_finite", "latency_ms"),
    Poison("latency-4301-digits", _with(HUGE, "latency_ms"), "invalid_field", "latency_ms"),
    Poison("feature-1e400", _with("1e400", "features.x"), "non_finite", "features.x"),
    Poison("feature-big-int", _with(BIG, "features.x"), "non_finite", "features.x"),
    Poison("prediction-big-negative", _with("-" + BIG, "prediction"), "non_finite", "prediction"),
    Poison("probability-big", _with(BIG, "probabilities.1"), "non_finite", "probabilities.1"),
    Poison("heartbeat-big", _with(BIG, "rss_bytes", HEARTBEAT), "non_finite", "rss_bytes"),
    Poison("model-version-surrogate", _with('"\\ud800"', "model_version"), "invalid_field", "model_version"),
    Poison("segment-surrogate", _with('"\\udfff"', "segments.region"), "invalid_field", "segments.region"),
    Poison("feature-name-surrogate", _with("1", "features.\ud800"), "invalid_field", "features.\\ud800"),
    Poison("duplicate-key", valid(0)[:-1] + b',"model_version":"2"}', "invalid_json", ""),
    Poison(
        "timestamp-year-9999", _with('"9999-12-31T23:59:59+00:00"', "timestamp"), "invalid_field", "timestamp"
    ),
)
