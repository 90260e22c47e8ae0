"""Reference ids hash the same bytes as the per-value scheme they were defined with: built per
column with joins, the digest of any table is unchanged."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

import numpy as np

from collector.references import content_id
from collector.tables import Value


def _per_value(columns: Mapping[str, Sequence[Value]]) -> str:
    """The scheme as first written: one digest update per value."""
    digest = hashlib.sha256()
    for name in sorted(columns):
        digest.update(json.dumps(name).encode() + b"\x00")
        for value in columns[name]:
            if value is None:
                canonical = b"n"
            elif isinstance(value, bool):
                canonical = b"b1" if value else b"b0"
            elif isinstance(value, int | float):
                canonical = b"f" + float(value).hex().encode()
            else:
                canonical = b"s" + json.dumps(value).encode()
            digest.update(canonical + b"\x1f")
        digest.update(b"\x1e")
    return digest.hexdigest()


def test_content_id_is_pinned_for_every_kind_of_value() -> None:
    table: dict[str, list[Value]] = {
        "x": [1, 2.5, None, True, -0.0, float("nan"), 10**20],
        "c": ["a", "é", None, '"q"'],
        "e": [],
    }
    assert content_id(table) == "80b90d192fe05b0c243887bdd15f7e70b6ff026040c6ea9a998e67cca303f10d"


def test_content_id_equals_the_per_value_digest_on_seeded_columns() -> None:
    rng = np.random.default_rng(0)
    table: dict[str, list[Value]] = {f"f{i}": [float(v) for v in rng.normal(size=500)] for i in range(5)}
    table["ints"] = [int(v) for v in rng.integers(-5, 5, 500)]
    table["numbers_and_missing"] = [None if v < 0.1 else float(v) for v in rng.random(500)]
    table["text"] = [str(v) for v in rng.choice(["a", "b c", "é", ' "q"\n', "日本", "1"], 500)]
    table["flags"] = [bool(v) for v in rng.random(500) < 0.5]
    table["mixed"] = [None, True, 0, 1.5, "1", float("inf"), np.float64(2.25)] * 10
    table["one"] = [3.0]
    table["empty"] = []
    assert content_id(table) == _per_value(table)
    for name in table:
        assert content_id({name: table[name]}) == _per_value({name: table[name]}), name
    assert content_id({}) == _per_value({})


def test_content_id_of_numbers_equals_float_hex_for_every_kind_of_float() -> None:
    """The array-built ``float.hex`` forms, on seeded random bit patterns (NaN payloads,
    subnormals, infinities, both zeros) and on the edges of the exponent range."""
    rng = np.random.default_rng(1)
    random_bits = rng.integers(0, 2**64, 20_000, dtype=np.uint64).view(np.float64).tolist()
    edges = [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -1e-310]
    specials = [float("inf"), float("-inf"), float("nan"), 1.0, -2.5, 0.1]
    integers = [3, -7, 10**20, 2**53 + 1, 0]
    for column in (random_bits, edges, specials, integers, edges + integers + specials):
        table: dict[str, list[Value]] = {"x": list(column)}
        assert content_id(table) == _per_value(table)
