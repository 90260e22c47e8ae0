"""``/api/v1/model-groups``: the live versions of each model side by side, champion first.

Built from the per-version status of ``/api/v1/models`` (which keeps its own
shape), so the two views cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from collector.roles import CHAMPION, version_key


def group_versions(models: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One entry per model: its champion and its versions' drift, quality and performance."""
    by_model: dict[str, list[Mapping[str, Any]]] = {}
    for status in models:
        by_model.setdefault(str(status["model"]), []).append(status)
    groups = []
    for model in sorted(by_model):
        versions = sorted(
            by_model[model],
            key=lambda s: (s.get("role") != CHAMPION, version_key(str(s["model_version"]))),
        )
        champion = next((str(s["model_version"]) for s in versions if s.get("role") == CHAMPION), None)
        groups.append({"model": model, "champion": champion, "versions": [_version(s) for s in versions]})
    return groups


def _version(status: Mapping[str, Any]) -> dict[str, Any]:
    last = status.get("last_window") or {}
    reference = status.get("reference") or {}
    health = status.get("model_health") or {}
    return {
        "model_version": status["model_version"],
        "role": status.get("role"),
        "data_version": status.get("data_version"),
        "reference_id": reference.get("id"),
        "events": status.get("events"),
        "windows_evaluated": status.get("windows_evaluated"),
        "drift": {
            "share": last.get("dataset_drift_share"),
            "detected": last.get("dataset_drift_detected"),
            "drifted_features": last.get("drifted_features", []),
        },
        "quality": last.get("quality"),
        "performance": health.get("performance") or {"realized": None, "estimated": None},
    }
