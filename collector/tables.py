"""Turning rows of feature values into the column tables detectors read.

Feature kinds are inferred from the reference (numbers are numerical; strings
and bools are categorical) unless the model's configuration names them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from detectors.base import FeatureKind, FeatureTable

Value = float | int | str | bool | None


_PLAIN_NUMBERS_OR_MISSING = frozenset({float, int, type(None)})


def infer_kind(values: Iterable[Value]) -> FeatureKind:
    """Numerical when every present value is a non-bool number, categorical otherwise."""
    values = values if isinstance(values, Sequence) else list(values)
    types = set(map(type, values))  # the usual column: one pass at C speed decides
    if types <= _PLAIN_NUMBERS_OR_MISSING:
        return "numerical" if types - {type(None)} else "categorical"
    seen = False
    for value in values:
        if value is None:
            continue
        seen = True
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "categorical"
    return "numerical" if seen else "categorical"


def as_category(value: Value) -> str | None:
    """The category string of a value (``None`` stays missing)."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return str(value)


def build_table(
    columns: Mapping[str, Sequence[Value]], kinds: Mapping[str, FeatureKind], n_rows: int
) -> FeatureTable:
    """Typed columns for the named features; values of the wrong type become missing and are counted."""
    arrays: dict[str, np.ndarray] = {}
    type_errors: dict[str, int] = {}
    for name, kind in kinds.items():
        values = columns.get(name)
        if values is None:
            values = [None] * n_rows
        if kind == "numerical":
            arrays[name], type_errors[name] = _numerical(values)
        else:
            arrays[name] = np.array([as_category(v) for v in values], dtype=object)
            type_errors[name] = 0
    return FeatureTable(dict(kinds), arrays, n_rows, type_errors)


def _numerical(values: Sequence[Value]) -> tuple[np.ndarray, int]:
    if all(type(value) is float for value in values):  # the usual column, converted in one call
        return np.array(values, dtype=np.float64), 0
    out = np.empty(len(values), dtype=np.float64)
    errors = 0
    for index, value in enumerate(values):
        if value is None:
            out[index] = np.nan
        elif isinstance(value, bool) or not isinstance(value, int | float):
            out[index] = np.nan
            errors += 1
        else:
            out[index] = value
    return out, errors


class ColumnBuffer:
    """Accumulates rows as per-feature lists; a feature absent from a row is missing there."""

    def __init__(self) -> None:
        self.columns: dict[str, list[Value]] = {}
        self.n_rows = 0

    def append(self, row: Mapping[str, Value]) -> None:
        for name, value in row.items():
            column = self.columns.get(name)
            if column is None:
                column = [None] * self.n_rows
                self.columns[name] = column
            column.append(value)
        self.n_rows += 1
        for column in self.columns.values():
            if len(column) < self.n_rows:
                column.append(None)

    def table(self, kinds: Mapping[str, FeatureKind]) -> FeatureTable:
        return build_table(self.columns, kinds, self.n_rows)

    def infer_kinds(self, overrides: Mapping[str, FeatureKind]) -> dict[str, FeatureKind]:
        return {
            name: overrides.get(name) or infer_kind(values) for name, values in self.columns.items()
        }
