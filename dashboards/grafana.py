"""Push the generated dashboards into an existing Grafana (``driftline dashboards push``).

Teams that already run Grafana do not mount our provisioning files; they push the
committed JSON through Grafana's HTTP API with grafana-client. Every dashboard
lands in one folder (uid ``driftline``), created when missing, and overwrites the
previous version of the same uid. The datasource is referenced by the fixed uid
``driftline-prometheus``, so that Grafana needs a Prometheus datasource with it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import niquests
from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

FOLDER_UID = "driftline"
FOLDER_TITLE = "Driftline"


class PushError(Exception):
    """Grafana refused the dashboards or could not be reached; ``driftline dashboards push`` reports it."""


@dataclass(frozen=True)
class PushResult:
    """One pushed dashboard: its uid, the version Grafana stored and its URL path."""

    uid: str
    version: int
    url: str


def push(
    url: str, token: str, json_dir: Path | str, *, folder_uid: str = FOLDER_UID
) -> list[PushResult]:
    """Upload every ``*.json`` dashboard in ``json_dir`` to the Grafana at ``url``.

    ``token`` is a service-account token (sent as a Bearer token). Raises
    :class:`PushError` when Grafana refuses or cannot be reached.
    """
    paths = sorted(Path(json_dir).glob("*.json"))
    if not paths:
        raise PushError(f"no dashboard JSON files in {json_dir}")
    api = GrafanaApi.from_url(url, credential=token)
    try:
        _ensure_folder(api, folder_uid)
        return [_push_one(api, path, folder_uid) for path in paths]
    except (GrafanaException, niquests.exceptions.RequestException) as exc:
        raise PushError(f"pushing dashboards to {url} failed: {exc}") from exc


def _ensure_folder(api: GrafanaApi, folder_uid: str) -> None:
    try:
        api.folder.get_folder(folder_uid)
    except GrafanaClientError as exc:
        if exc.status_code != 404:
            raise
        api.folder.create_folder(FOLDER_TITLE, uid=folder_uid)


def _push_one(api: GrafanaApi, path: Path, folder_uid: str) -> PushResult:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    doc.pop("id", None)  # Grafana matches by uid; a stale numeric id would conflict.
    reply = api.dashboard.update_dashboard(
        {
            "dashboard": doc,
            "folderUid": folder_uid,
            "overwrite": True,
            "message": "driftline dashboards push",
        }
    )
    return PushResult(uid=str(reply["uid"]), version=int(reply["version"]), url=str(reply["url"]))
