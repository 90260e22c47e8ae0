"""docs/contracts.md is the repository's own contract, and it matches the code.

The repository stands alone: no tracked file cites a design file that is not
in it. The rejection reasons and the command line are documented exactly as
coded.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from driftline.schema import RejectReason

from collector.cli import _parser
from tests.cli_walk import commands

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = ROOT / "docs" / "contracts.md"
GONE = "DESIGN" + ".md"  # spelled apart so this file does not match itself


def section(title: str) -> str:
    """The text of one ``## title`` section of docs/contracts.md."""
    text = CONTRACTS.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match is not None, f"no section {title!r} in {CONTRACTS}"
    return match.group(1)


def test_no_tracked_file_cites_a_file_the_repository_does_not_contain() -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    citing = []
    for name in filter(None, listed.split("\0")):
        path = ROOT / name
        if path.is_file() and not path.is_symlink() and GONE.encode() in path.read_bytes():
            citing.append(name)
    assert citing == []


def test_the_rejection_reasons_table_is_the_reject_reason_enum() -> None:
    documented = re.findall(r"^\| `([a-z_]+)` \|", section("Rejection reasons"), re.MULTILINE)
    assert documented == [reason.value for reason in RejectReason]


def test_every_command_and_option_is_in_the_command_line_contract() -> None:
    text = section("Command line")
    missing = []
    for path, parser in commands(_parser()):
        if path and f"`driftline {path.split()[0]}" not in text:
            missing.append(path)
        for action in parser._actions:
            missing += [
                f"{path} {option}"
                for option in action.option_strings
                if option.startswith("--") and option != "--help" and option not in text
            ]
    assert missing == []


def test_the_section_helpers_read_what_they_claim() -> None:
    assert "`invalid_json`" in section("Rejection reasons")
    assert "## " not in section("Rejection reasons")
    paths = [path for path, _ in commands(_parser())]
    assert {"", "demo", "collect", "replay", "reference add", "dashboards push"} <= set(paths)
