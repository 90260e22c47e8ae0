"""The ``driftline`` command line (docs/contracts.md#command-line)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from rich.console import Console

from collector.config import Config, load_config
from collector.errors import DriftlineError

log = logging.getLogger("driftline")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``driftline`` console script; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    console = Console(soft_wrap=not sys.stdout.isatty())  # no hard line breaks in logs and pipes
    try:
        code: int = args.handler(args, console)
    except DriftlineError as exc:
        Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


def _configure_logging(verbosity: int) -> None:
    """WARNING by default, INFO with ``-v``, DEBUG with ``-vv``.

    kafka-python logs every retry against an unreachable broker at ERROR or
    WARNING (dozens of lines a minute); the collector reports the same
    conditions once, in its own words, on ``/readyz`` and in its metrics. So
    kafka-python's records are shown only with ``-vv``.
    """
    levels = {0: logging.WARNING, 1: logging.INFO}
    root = logging.getLogger()
    configured = bool(root.handlers)  # by a host process (or pytest): leave its handlers alone
    logging.basicConfig(
        level=levels.get(verbosity, logging.DEBUG),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not configured and verbosity < 2:
        # A filter on the output, not a level on the "kafka" logger: the connection
        # check (collector/kafka_check.py) reads kafka-python's records to name a cause.
        for handler in root.handlers:
            handler.addFilter(_not_kafka_python)


def _not_kafka_python(record: logging.LogRecord) -> bool:
    return record.name != "kafka" and not record.name.startswith("kafka.")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="driftline", description="Streaming monitoring for ML models."
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log progress at INFO level; -vv logs at DEBUG, with kafka-python's own logs",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {_version()}", help="print the version and exit"
    )
    commands = parser.add_subparsers(title="commands")

    demo = commands.add_parser(
        "demo", help="stream a synthetic model with injected drift through the collector"
    )
    demo.add_argument("--duration", type=float, default=60.0, help="seconds to stream (default 60)")
    demo.add_argument(
        "--seed", type=int, default=7, help="random seed of the synthetic stream (default 7)"
    )
    demo.add_argument(
        "--http-host", default="127.0.0.1", help="address to serve /metrics and reports on (default local)"
    )
    demo.add_argument("--http-port", type=int, default=9108, help="0 picks a free port")
    demo.add_argument("--kafka", metavar="HOST:PORT", help="run the same demo over a Kafka broker")
    demo.set_defaults(handler=_demo)

    collect = commands.add_parser("collect", help="run the collector service on Kafka")
    collect.add_argument("--config", type=Path, help="YAML configuration (defaults without)")
    collect.set_defaults(handler=_collect)

    replay = commands.add_parser(
        "replay", help="process a JSON-lines file of events through the pipeline"
    )
    replay.add_argument("file", type=Path, help="JSON-lines file of events, one event a line")
    replay.add_argument("--config", type=Path, help="YAML configuration (defaults without)")
    replay.add_argument(
        "--metrics-out", type=Path, help="write the final Prometheus exposition here"
    )
    replay.add_argument(
        "--dlq", type=Path, help="write rejected lines with their reasons here (JSON lines)"
    )
    replay.add_argument(
        "--windows-out",
        type=Path,
        help="write every evaluated window here, one row per window and feature "
        "(.jsonl, .csv or .parquet; schema in docs/batch.md)",
    )
    replay.set_defaults(handler=_replay)

    from collector.reference_cli import add_commands as add_reference_commands
    from collector.status import add_commands as add_status_commands
    from dashboards.cli import add_commands as add_dashboard_commands

    add_status_commands(commands)
    add_reference_commands(commands)
    add_dashboard_commands(commands)
    return parser


def _version() -> str:
    """The installed version of the ``driftline-collector`` distribution."""
    try:
        return metadata.version("driftline-collector")
    except metadata.PackageNotFoundError:
        return "unknown (driftline-collector is not installed)"


def _demo(args: argparse.Namespace, console: Console) -> int:
    from collector.demo import print_result, run_demo

    transport, source_factory = None, None
    if args.kafka:
        from collector.kafka_wiring import demo_kafka

        transport, source_factory = demo_kafka(args.kafka)
    result = run_demo(
        duration=args.duration,
        seed=args.seed,
        http_host=args.http_host,
        http_port=args.http_port,
        console=console,
        transport=transport,
        source_factory=source_factory,
    )
    print_result(result, console)
    return 0


def _collect(args: argparse.Namespace, console: Console) -> int:
    from collector.kafka_wiring import check_reachable

    config: Config = load_config(args.config)
    # Before the service's imports (seconds on a loaded machine): no broker fails fast.
    check_reachable(config.kafka.bootstrap_servers)
    from collector.service import serve

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    serve(config, stop, console)
    return 0


def _replay(args: argparse.Namespace, console: Console) -> int:
    from collector.replay import replay
    from collector.replay_summary import print_summary

    if not args.file.is_file():
        raise DriftlineError(f"{args.file}: no such file")
    config = load_config(args.config)
    if config.otlp.endpoint is not None:
        Console(stderr=True, soft_wrap=True).print(
            "note: the otlp: section is used by `driftline collect` only; replay exports nothing "
            "over OTLP (write its metrics with --metrics-out)",
            highlight=False,
            markup=False,
        )
    summary = replay(
        args.file,
        config,
        metrics_out=args.metrics_out,
        dlq_path=args.dlq,
        windows_out=args.windows_out,
        console=console,
    )
    print_summary(summary, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
