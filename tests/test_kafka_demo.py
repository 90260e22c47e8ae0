"""``driftline demo --kafka HOST:PORT``: the demo's SDK and collector talk through a real broker."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kafka_fixture import KafkaBroker

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent


def test_demo_over_kafka_finds_the_injected_drift(kafka_broker: KafkaBroker) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "collector.cli", "demo", "--kafka", kafka_broker.bootstrap,
         "--duration", "2", "--http-port", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = re.search(
        r"(\d+) predictions sent, (\d+) processed, (\d+) windows evaluated, (\d+) events rejected",
        result.stdout,
    )
    assert summary is not None, result.stdout
    sent, processed, windows, rejected = (int(group) for group in summary.groups())
    assert (sent, processed, windows, rejected) == (15000, 15000, 10, 0), result.stdout + result.stderr
    assert "not delivered" not in result.stdout
    detection = re.search(r"Drift first detected in window (\d+) \(injected from window (\d+)\)",
                          result.stdout)
    assert detection is not None, result.stdout
    assert detection.group(1) == detection.group(2)
