"""Failures of the collector's own code on valid input (bugs): logged once, counted, survived.

Input that is not a valid event is a rejection with a reason (the schema's
job). What is left are bugs: a detector raising on a window, a failure while
processing an accepted event. They must not stop the collector, and a bug hit
by every event must not flood the log, so the traceback is logged the first
time for each key and later ones only at debug level.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

A = TypeVar("A")
R = TypeVar("R")


class DetectorFailure(Exception):
    """A detector raised while evaluating a window; the original error is the ``__cause__``."""

    def __init__(self, detector: str) -> None:
        super().__init__(f"the {detector} detector failed")
        self.detector = detector


def guarded(detector: str, call: Callable[[A], R], argument: A) -> R:
    """``call(argument)``, with any exception it raises wrapped in a :class:`DetectorFailure`."""
    try:
        return call(argument)
    except Exception as exc:
        raise DetectorFailure(detector) from exc


class FailureLog:
    """Logs the traceback of the exception being handled, the first time per key."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self._seen: set[str] = set()

    def log(self, key: str, message: str, *args: object) -> None:
        """Call from an ``except`` block: the first failure per ``key`` logs at ERROR with its traceback."""
        if key in self._seen:
            self.logger.debug(message, *args, exc_info=True)
            return
        self._seen.add(key)
        self.logger.error(message + " (logged once; later ones are only counted)", *args, exc_info=True)
