"""``driftline collect`` without a reachable broker: one clear line, a non-zero exit, in seconds."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from collector.errors import SourceError
from collector.kafka_wiring import bootstrap_addresses, check_reachable
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


def test_collect_against_an_unreachable_broker_fails_fast_in_one_line(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    config = tmp_path / "collector.yaml"
    config.write_text(yaml.safe_dump({"kafka": {"bootstrap_servers": address}, "http": {"port": 0}}))
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "collector.cli", "collect", "--config", str(config)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "300"},
    )
    elapsed = time.monotonic() - started
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0
    assert len(lines) == 1, result.stderr
    assert address in lines[0] and "make kafka" in lines[0]
    assert result.stdout == ""
    assert elapsed < 10.0, f"took {elapsed:.1f} s"


def test_check_reachable_names_every_address_it_tried() -> None:
    first, second = free_port(), free_port()
    with pytest.raises(SourceError) as raised:
        check_reachable(f"127.0.0.1:{first},127.0.0.1:{second}", timeout=0.0)
    message = str(raised.value)
    assert f"127.0.0.1:{first}: " in message and f"127.0.0.1:{second}: " in message


def test_check_reachable_passes_when_one_server_listens() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        check_reachable(f"127.0.0.1:{free_port()},127.0.0.1:{port}", timeout=0.0)


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("localhost:9093,other", [("localhost", 9093), ("other", 9092)]),
        ("[::1]:19092", [("::1", 19092)]),
        ("::1", [("::1", 9092)]),
        (" 10.0.0.1:9092 ,", [("10.0.0.1", 9092)]),
    ],
)
def test_bootstrap_addresses_are_parsed(server: str, expected: list[tuple[str, int]]) -> None:
    assert bootstrap_addresses(server) == expected


def test_a_bootstrap_address_without_a_numeric_port_is_an_error() -> None:
    with pytest.raises(SourceError, match="no numeric port"):
        bootstrap_addresses("broker:kafka")
