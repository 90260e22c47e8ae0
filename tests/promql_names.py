"""Metric names referenced by a PromQL expression, for the catalog-coverage tests.

A small lexer, not a parser: it drops strings, label matchers, range and offset
durations, and the label lists of ``by``/``on``/``group_left``..., then keeps the
identifiers that are not functions or keywords. Histogram series suffixes map
back to the catalog's family name.
"""

from __future__ import annotations

import re

from exporters.catalog import CATALOG_BY_NAME

KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
    "and", "or", "unless", "inf", "nan",
}  # fmt: skip
PROMETHEUS_BUILTINS = {"up", "ALERTS"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_OFFSET = re.compile(r"\boffset\s+\w+")
_IDENT = re.compile(r"(?<![\w.$])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """Every metric (or histogram family) the expression selects."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    text = _OFFSET.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in KEYWORDS:
            continue
        names.add(_family(name))
    return names


def _family(name: str) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        base = name.removesuffix(suffix)
        if base != name and base in CATALOG_BY_NAME and CATALOG_BY_NAME[base].kind == "histogram":
            return base
    return name
