"""Walk the ``driftline`` argument parser: every (sub)command with its path."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

Command = tuple[str, argparse.ArgumentParser]


def commands(parser: argparse.ArgumentParser, path: str = "") -> Iterator[Command]:
    """Every (sub)command parser with its path (``"reference add"``), the top level first."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, f"{path} {name}".strip())


def without_help(parser: argparse.ArgumentParser) -> list[str]:
    """Every subcommand, argument and option under ``parser`` that has no help text."""
    missing = []
    for path, command in commands(parser):
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                helped = {choice.dest for choice in action._choices_actions if choice.help}
                missing += [f"{path} {name}".strip() for name in action.choices if name not in helped]
            elif not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}".strip())
    return missing
