"""tests/test_schema.py, unchanged, run against the decoder the collector uses (collector.fast_decode).

Every test of the schema module is collected here a second time, with that
module's ``decode`` replaced by the collector's, so each round trip and each
rejection (reason, field) is checked on both decoders.
"""

from __future__ import annotations

import pytest

from collector import fast_decode
from tests import test_schema
from tests.test_schema import *  # noqa: F403  (the tests to collect again)


@pytest.fixture(autouse=True)
def _collector_decoder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(test_schema, "decode", fast_decode.decode)


def test_the_schema_tests_are_collected_here() -> None:
    collected = [name for name in globals() if name.startswith("test_") and name != "test_schema"]
    assert len(collected) > 20 and "test_duplicate_keys_at_any_depth_are_invalid_json" in collected
