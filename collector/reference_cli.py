"""``driftline reference add/list/show``: register and inspect reference data."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from collector.config import ReferenceFile
from collector.errors import DriftlineError
from collector.reference_registry import ReferenceRegistry
from collector.references import load_reference

DEFAULT_REGISTRY = Path("driftline-references")


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Register ``reference add|list|show`` on the ``driftline`` subcommand parsers."""
    parser = commands.add_parser("reference", help="register and inspect reference data per model version")
    actions = parser.add_subparsers(title="actions", required=True)
    add = actions.add_parser("add", help="register a CSV or Parquet file as a model version's reference")
    add.add_argument("file", type=Path, help="CSV or Parquet file: one row per prediction")
    add.add_argument("--model", required=True, help="model name")
    add.add_argument("--model-version", required=True, help="model version the reference is for")
    add.add_argument(
        "--data-version",
        help="data version of the reference (default: the version's newest entry's, else unknown)",
    )
    add.add_argument(
        "--replace",
        action="store_true",
        help="replace the entry of the same model, model version and data version (else refused)",
    )
    add.set_defaults(handler=_add)
    listing = actions.add_parser("list", help="list registered references")
    listing.add_argument("--model", help="only this model's references")
    listing.set_defaults(handler=_list)
    show = actions.add_parser("show", help="show a model version's newest reference, feature by feature")
    show.add_argument("model", help="model name")
    show.add_argument("model_version", help="model version")
    show.set_defaults(handler=_show)
    for action in (add, listing, show):
        action.add_argument(
            "--registry",
            type=Path,
            default=DEFAULT_REGISTRY,
            help=f"registry folder (default {DEFAULT_REGISTRY}; the collector reads `reference_registry:`)",
        )


def _add(args: argparse.Namespace, console: Console) -> int:
    if not args.file.is_file():
        raise DriftlineError(f"{args.file}: no such file")
    added = ReferenceRegistry(args.registry).add(
        args.file, args.model, args.model_version, args.data_version, replace=args.replace
    )
    entry, old = added.entry, added.replaced
    name = f"{entry.model}/{entry.model_version} data version {entry.data_version}"
    if added.unchanged:
        console.print(f"{name} is already registered with identical data ({entry.reference_id}): unchanged")
    elif old is not None:
        console.print(
            f"replaced {name}: {old.reference_id or old.sha256[:12]} ({old.rows} rows) "
            f"with {entry.reference_id} ({entry.rows} rows), {args.registry / entry.path}"
        )
    else:
        console.print(
            f"registered {entry.model}/{entry.model_version} (data version {entry.data_version}): "
            f"{entry.rows} rows, {entry.reference_id}, {args.registry / entry.path}"
        )
    return 0


def _list(args: argparse.Namespace, console: Console) -> int:
    table = Table(title=f"References in {args.registry}")
    for column in ("model", "model_version", "data_version", "rows", "reference_id", "file"):
        table.add_column(column)
    for entry in ReferenceRegistry(args.registry).entries():
        if args.model is None or entry.model == args.model:
            table.add_row(
                entry.model,
                entry.model_version,
                entry.data_version,
                str(entry.rows),
                entry.reference_id,
                entry.path,
            )
    console.print(table)
    return 0


def _show(args: argparse.Namespace, console: Console) -> int:
    registry = ReferenceRegistry(args.registry)
    entry = registry.latest(args.model, args.model_version)
    if entry is None:
        raise DriftlineError(
            f"no reference registered for {args.model}/{args.model_version} in {args.registry}"
        )
    file = ReferenceFile(path=args.registry / entry.path, data_version=entry.data_version)
    reference = load_reference(file, {}, None)
    console.print(
        f"{entry.model}/{entry.model_version}: reference {reference.reference_id}, "
        f"data version {entry.data_version}, {reference.n_rows} rows"
        + (", labelled" if reference.labels is not None else "")
    )
    table = Table()
    for column in ("column", "kind", "missing", "summary"):
        table.add_column(column)
    for tables, role in ((reference.features, "feature"), (reference.outputs, "output")):
        for name, kind in tables.kinds.items():
            present = tables.present(name)
            table.add_row(
                f"{name} ({role})", kind, str(tables.n_rows - len(present)), _summary(present, kind)
            )
    console.print(table)
    return 0


def _summary(values: np.ndarray, kind: str) -> str:
    if len(values) == 0:
        return "no values"
    if kind == "numerical":
        numbers = values.astype(np.float64)
        return f"min {numbers.min():.4g}, mean {numbers.mean():.4g}, max {numbers.max():.4g}"
    categories, counts = np.unique(values.astype(str), return_counts=True)
    top = sorted(zip(counts, categories, strict=True), reverse=True)[:5]
    return f"{len(categories)} categories; top: " + ", ".join(f"{c} ({n})" for n, c in top)
