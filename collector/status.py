"""``driftline status``: what a running collector monitors, as a terminal table.

Reads the collector's ``/api/v1/models`` (with a bearer token or basic
credentials when the collector's ``http.auth`` is on) and, when given a
Prometheus, the alerts firing there (``/api/v1/alerts``), matched to each
model version by their ``model`` and ``model_version`` labels.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from collector.errors import DriftlineError

DEFAULT_URL = "http://127.0.0.1:9108"
TOKEN_ENV = "DRIFTLINE_TOKEN"
PASSWORD_ENV = "DRIFTLINE_PASSWORD"
PRIMARY_METRICS = ("accuracy", "mae")
"""The metric shown per version: accuracy for classifiers, mean absolute error for regressors."""

Alerts = dict[tuple[str, str], list[str]]


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Register ``status`` on the ``driftline`` subcommand parsers."""
    status = commands.add_parser("status", help="show the model versions a running collector monitors")
    status.add_argument(
        "--url", default=DEFAULT_URL, help=f"the collector's base URL (default {DEFAULT_URL})"
    )
    status.add_argument(
        "--prometheus", metavar="URL", help="Prometheus base URL: adds the alerts firing per model version"
    )
    credentials = status.add_mutually_exclusive_group()
    credentials.add_argument(
        "--token-file",
        type=Path,
        help=f"file holding the collector's bearer token (default: ${TOKEN_ENV} when set)",
    )
    credentials.add_argument(
        "--user", help=f"user name for the collector's basic authentication (password: ${PASSWORD_ENV})"
    )
    status.add_argument(
        "--password-file", type=Path, help=f"file holding the --user password (default: ${PASSWORD_ENV})"
    )
    status.add_argument(
        "--timeout", type=float, default=5.0, help="seconds to wait for each answer (default 5)"
    )
    status.set_defaults(handler=_status)


def _status(args: argparse.Namespace, console: Console) -> int:
    authorization = authorization_header(args.token_file, args.user, args.password_file, os.environ)
    models = fetch_models(args.url, authorization, args.timeout)
    alerts = fetch_alerts(args.prometheus, args.timeout) if args.prometheus else None
    console.print(status_table(models, alerts, args.url))
    if alerts is not None and alerts.get(("", "")):
        console.print(f"other alerts firing: {', '.join(alerts[('', '')])}")
    return 0


def authorization_header(
    token_file: Path | None, user: str | None, password_file: Path | None, environ: Mapping[str, str]
) -> str | None:
    """The ``Authorization`` header value for the collector, or ``None`` without credentials."""
    if user is not None:
        password = _read_secret(password_file) if password_file else environ.get(PASSWORD_ENV)
        if password is None:
            raise DriftlineError(f"--user needs a password: --password-file or ${PASSWORD_ENV}")
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    if password_file is not None:
        raise DriftlineError("--password-file needs --user")
    token = _read_secret(token_file) if token_file else environ.get(TOKEN_ENV)
    return f"Bearer {token}" if token else None


def fetch_models(url: str, authorization: str | None, timeout: float) -> list[dict[str, Any]]:
    """The ``models`` list of the collector's ``/api/v1/models``."""
    endpoint = url.rstrip("/") + "/api/v1/models"
    headers = {"Authorization": authorization} if authorization else {}
    answer = _get_json(endpoint, headers, timeout, "the collector")
    models = answer.get("models") if isinstance(answer, dict) else None
    if not isinstance(models, list):
        raise DriftlineError(f"{endpoint} did not answer a Driftline models list")
    return models


def fetch_alerts(prometheus: str, timeout: float) -> Alerts:
    """Names of the firing alerts by (model, model_version); ``("", "")`` holds the others."""
    endpoint = prometheus.rstrip("/") + "/api/v1/alerts"
    answer = _get_json(endpoint, {}, timeout, "Prometheus")
    try:
        listed = answer["data"]["alerts"]
    except (KeyError, TypeError):
        raise DriftlineError(f"{endpoint} did not answer a Prometheus alerts list") from None
    alerts: Alerts = {}
    for alert in listed:
        if alert.get("state") != "firing":
            continue
        labels = alert.get("labels", {})
        key = (labels.get("model", ""), labels.get("model_version", "")) if "model" in labels else ("", "")
        names = alerts.setdefault(key, [])
        if labels.get("alertname") not in names:
            names.append(str(labels.get("alertname")))
    return {key: sorted(names) for key, names in alerts.items()}


def status_table(models: list[dict[str, Any]], alerts: Alerts | None, url: str) -> Table:
    """One row per model version, sorted by model and version."""
    table = Table(title=f"Driftline collector at {url}: {len(models)} model versions")
    columns = ["model", "version", "role", "data version", "reference", "events", "windows", "drift share"]
    columns += ["performance"] + (["alerts firing"] if alerts is not None else [])
    numbers = {"events", "windows", "drift share"}
    for column in columns:
        table.add_column(column, justify="right" if column in numbers else "left")
    for status in sorted(models, key=lambda s: (str(s.get("model")), str(s.get("model_version")))):
        row = _row(status)
        if alerts is not None:
            key = (str(status.get("model")), str(status.get("model_version")))
            row.append(", ".join(alerts.get(key, [])) or "none")
        table.add_row(*row)
    return table


def _row(status: dict[str, Any]) -> list[str]:
    reference = status.get("reference")
    last = status.get("last_window")
    share = f"{last['dataset_drift_share']:.2f}" if last else "-"
    if last and last.get("dataset_drift_detected"):
        share += " drift"
    return [
        str(status.get("model")),
        str(status.get("model_version")),
        str(status.get("role", "-")),
        str(status.get("data_version")),
        str(reference["id"]) if reference else f"collecting {status.get('reference_events_collected') or 0}",
        str(status.get("events", "-")),
        str(status.get("windows_evaluated", "-")),
        share,
        performance_text(status.get("model_health") or {}),
    ]


def performance_text(health: Mapping[str, Any]) -> str:
    """The realized primary metric, else the estimated one, e.g. ``accuracy 0.912 (realized)``."""
    performance = health.get("performance") or {}
    for source in ("realized", "estimated"):
        metrics = performance.get(source) or {}
        for metric in PRIMARY_METRICS:
            if metrics.get(metric) is not None:
                return f"{metric} {metrics[metric]:.3f} ({source})"
    return "-"


def _get_json(url: str, headers: dict[str, str], timeout: float, what: str) -> Any:
    request = urllib.request.Request(url, headers={"Accept": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as error:
        hint = " (pass --token-file, $DRIFTLINE_TOKEN or --user)" if error.code == 401 else ""
        raise DriftlineError(f"{what} at {url} answered {error.code} {error.reason}{hint}") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise DriftlineError(f"cannot reach {what} at {url}: {reason}") from None
    try:
        return json.loads(body)
    except ValueError:
        raise DriftlineError(f"{what} at {url} did not answer JSON") from None


def _read_secret(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise DriftlineError(f"{path}: cannot read the credential: {exc.strerror}") from None
