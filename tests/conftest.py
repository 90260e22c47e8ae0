"""Shared test helpers.

Integration tests use real services. Under ``CI=true`` a missing service is a
failure, never a skip; on a developer's laptop the test skips with the reason.
"""

from __future__ import annotations

import os
import shutil
import socket

import pytest

# Session fixtures for real services (the Kafka broker), shared by every test module.
pytest_plugins = ["tests.kafka_fixture"]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(condition: bool, reason: str) -> None:
    """Skip (laptop) or fail (CI) the calling test when ``condition`` is false."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"required service missing under CI=true: {reason}")
    pytest.skip(reason)


def require_binary(name: str) -> str:
    """The path of an executable on PATH, or skip/fail with a clear reason."""
    path = shutil.which(name)
    require(path is not None, f"{name} is not on PATH (install it: see README, 'make test' does)")
    assert path is not None
    return path


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
