"""``driftline dashboards build`` and ``driftline dashboards push`` (docs/contracts.md#command-line)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from rich.console import Console

from dashboards.generator import JSON_DIR, build
from dashboards.grafana import PushError, push
from exporters.secrets import read_secret_file

TOKEN_ENV = "GRAFANA_TOKEN"


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Register ``dashboards build|push`` on the ``driftline`` subcommand parsers."""
    parser = commands.add_parser("dashboards", help="regenerate or push the Grafana dashboards")
    actions = parser.add_subparsers(title="actions", required=True)
    build_cmd = actions.add_parser("build", help="regenerate the dashboard JSON")
    build_cmd.add_argument("--out", type=Path, default=JSON_DIR, help=f"default {JSON_DIR}")
    build_cmd.set_defaults(handler=_build)
    push_cmd = actions.add_parser("push", help="upload the dashboards to an existing Grafana")
    push_cmd.add_argument("--url", required=True, help="Grafana base URL")
    token = push_cmd.add_mutually_exclusive_group()
    token.add_argument(
        "--token-file",
        type=Path,
        help=f"file holding the service-account token (default: ${TOKEN_ENV})",
    )
    token.add_argument(
        "--token",
        help="the token itself; other users can read it in the process list, so prefer "
        f"--token-file or ${TOKEN_ENV}",
    )
    push_cmd.add_argument("--json-dir", type=Path, default=JSON_DIR, help=f"default {JSON_DIR}")
    push_cmd.set_defaults(handler=_push)


def _build(args: argparse.Namespace, console: Console) -> int:
    for path in build(args.out):
        console.print(f"wrote {path}")
    return 0


def _push(args: argparse.Namespace, console: Console) -> int:
    try:
        results = push(args.url, _token(args), args.json_dir)
    except (PushError, ValueError) as exc:
        return _error(str(exc))
    for result in results:
        console.print(f"pushed {result.uid} (version {result.version}): {args.url}{result.url}")
    return 0


def _token(args: argparse.Namespace) -> str:
    """The Grafana token: ``--token-file`` or ``--token`` if given, else the environment."""
    if args.token_file is not None:
        return read_secret_file(args.token_file)
    token = args.token or os.environ.get(TOKEN_ENV)
    if not token:
        raise ValueError(f"--token-file, {TOKEN_ENV} or --token is required")
    return str(token)


def _error(message: str) -> int:
    """Print ``message`` as the command's error on stderr; the exit code of a failed command."""
    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {message}", highlight=False)
    return 2
