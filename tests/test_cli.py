"""The ``driftline`` command line: its version and a help text for every option."""

from __future__ import annotations

import argparse
import subprocess
import sys
from importlib import metadata

from collector.cli import _parser
from tests.cli_walk import without_help


def test_version_prints_the_installed_distribution_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "collector.cli", "--version"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"driftline {metadata.version('driftline-collector')}\n"


def test_every_command_argument_and_option_has_a_help_text() -> None:
    assert without_help(_parser()) == []


def test_the_help_check_finds_what_lacks_help() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bare")
    sub = parser.add_subparsers()
    quiet = sub.add_parser("quiet")
    quiet.add_argument("target")
    sub.add_parser("told", help="has help").add_argument("--loud", help="has help")
    assert without_help(parser) == ["--bare", "quiet", "quiet target"]
