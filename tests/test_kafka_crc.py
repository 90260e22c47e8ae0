"""kafka-python checks record batches' CRC-32C in C in what the project installs.

Without the ``crc32c`` package kafka-python computes it in pure Python: most of
its consume loop's CPU (65 of 74 us per message on the throughput bench).
"""

from __future__ import annotations

import random
import re
import tomllib
from pathlib import Path

from kafka.record import util
from kafka.record._crc32c import crc as pure_python_crc32c

ROOT = Path(__file__).resolve().parent.parent


def _requirements(path: Path, extra: str | None = None) -> list[str]:
    project = tomllib.loads(path.read_text(encoding="utf-8"))["project"]
    listed = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    return [re.sub(r"\s", "", requirement) for requirement in listed]


def test_the_collector_and_the_sdks_kafka_extra_ask_for_kafka_pythons_crc32c_extra() -> None:
    collector = [r for r in _requirements(ROOT / "pyproject.toml") if r.startswith("kafka-python")]
    sdk = [r for r in _requirements(ROOT / "sdk" / "pyproject.toml", "kafka") if r.startswith("kafka-python")]
    assert collector == ["kafka-python[crc32c]>=3.0.12,<4"]
    assert sdk == ["kafka-python[crc32c]>=3.0.12,<4"]


def test_the_installed_kafka_python_uses_the_c_crc32c_and_it_agrees_with_the_pure_one() -> None:
    assert util.crc32c_c is not None, "pip install 'kafka-python[crc32c]'"
    assert util.calc_crc32c.__defaults__ == (util.crc32c_c,)  # what record batches are checked with
    rng = random.Random(5)
    for size in (0, 1, 7, 64, 1000, 70_000):
        data = rng.randbytes(size)
        assert util.calc_crc32c(data) == pure_python_crc32c(data)
