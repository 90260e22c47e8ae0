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
            arrays[name], type_errors[name] = numerical_array(values)
        else:
            arrays[name], type_errors[name] = categorical_array(values), 0
    return FeatureTable(dict(kinds), arrays, n_rows, type_errors)


def categorical_array(values: Sequence[Value]) -> np.ndarray:
    """Category strings (``None`` where missing) as an object array."""
    return np.array([as_category(v) for v in values], dtype=object)


def numerical_array(values: Sequence[Value]) -> tuple[np.ndarray, int]:
    """Float64 values, NaN where missing or not a number, and how many were not a number."""
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

