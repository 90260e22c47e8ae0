"""Render ``docs/metrics.md`` from the metric catalog, so the page cannot drift from the code.

Run ``python -m exporters.catalog_doc`` to rewrite the page, or
``python -m exporters.catalog_doc --check`` to fail (exit 1) when it is out
of date. ``tests/test_metrics_catalog.py`` runs the check.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from driftline.schema import RejectReason

from exporters.catalog import (
    CATALOG,
    DETECTORS,
    LIMIT_KINDS,
    LIMITS,
    MULTIVARIATE_DRIFT_METHODS,
    PERFORMANCE_METRICS,
    MetricDef,
)

DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "metrics.md"

GROUP_TITLES = {
    "events": "Events",
    "data_drift": "Data drift",
    "data_quality": "Data quality",
    "model_health": "Model health",
    "fairness": "Fairness and segments",
    "system": "Serving system (from events and heartbeats)",
    "collector": "Collector pipeline",
    "process": "Collector process and host (psutil)",
}

HEADER = """\
# Metric catalog

<!-- Generated from exporters/catalog.py by `python -m exporters.catalog_doc`. Do not edit. -->

Every metric Driftline exports, on `/metrics` (Prometheus) and over OTLP
(same names, same labels, same values; see [operations](operations.md)).
This page is generated from `exporters/catalog.py`, the single source of
truth; a test fails when it is out of date.

Conventions ([contracts](contracts.md#metrics)): the prefix `driftline_`; base units named
by the suffix (`_seconds`, `_bytes`, `_ratio` for a ratio in [0, 1]);
counters end in `_total`; timestamps are Unix seconds. Rates are left to the
query: events per second is `rate(driftline_events_total[5m])`, not a gauge.
The per-event series (events, labels, segments, latencies, delays) are written
once per batch the collector takes from Kafka: a scrape sees whole batches.
"""


def render(catalog: Sequence[MetricDef] = CATALOG) -> str:
    """The whole page as Markdown."""
    parts = [HEADER, _limits_section(), _label_values_section()]
    for group in dict.fromkeys(metric.group for metric in catalog):
        parts.append(_group_section(group, [m for m in catalog if m.group == group]))
    return "\n".join(parts)


def _limits_section() -> str:
    lines = [
        "## Cardinality limits",
        "",
        "Label sets are bounded. Input over a limit never becomes new series: it is",
        "refused (sent to the dead-letter queue with reason `limit`) or folded, and",
        "counted in `driftline_limit_exceeded_total{kind}`. The limits are set under",
        "`limits:` in the configuration; the defaults:",
        "",
        "| setting | default | bounds | `kind` when exceeded |",
        "| --- | --- | --- | --- |",
    ]
    for limit in LIMITS:
        lines.append(f"| `limits.{limit.setting}` | {limit.default} | {limit.bounds} | `{limit.kind}` |")
    lines += [
        "",
        "Series of a model version are removed when it retires (no traffic for",
        "`defaults.retire_after_seconds`); a serving instance's series are removed",
        "once it has been down for `instances.forget_after_seconds`.",
        "",
    ]
    return "\n".join(lines)


def _label_values_section() -> str:
    reasons = ", ".join(f"`{reason.value}`" for reason in RejectReason)
    kinds = ", ".join(f"`{kind}`" for kind in LIMIT_KINDS)
    detectors = ", ".join(f"`{detector}`" for detector in DETECTORS)
    performance = ", ".join(f"`{metric}`" for metric in PERFORMANCE_METRICS)
    multivariate = ", ".join(f"`{method}`" for method in MULTIVARIATE_DRIFT_METHODS)
    return "\n".join(
        [
            "## Closed label values",
            "",
            f"- `reason` (`driftline_events_rejected_total`): {reasons}.",
            f"- `kind` (`driftline_limit_exceeded_total`): {kinds}.",
            f"- `detector` (`driftline_detector_failures_total`): {detectors}.",
            f"- `metric` (`driftline_performance`): {performance}.",
            f"- `method` (`driftline_multivariate_drift_*`): {multivariate}.",
            "",
        ]
    )


def _group_section(group: str, metrics: Sequence[MetricDef]) -> str:
    lines = [
        f"## {GROUP_TITLES.get(group, group)}",
        "",
        "| metric | type | labels | unit | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for metric in metrics:
        labels = ", ".join(f"`{label}`" for label in metric.labels) or "none"
        meaning = metric.help
        if metric.buckets:
            meaning += " Buckets: " + ", ".join(f"{b:g}" for b in metric.buckets) + "."
        unit = f"`{metric.unit}`" if metric.unit else ""
        lines.append(f"| `{metric.name}` | {metric.kind} | {labels} | {unit} | {meaning} |")
    lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", nargs="?", type=Path, default=DOC_PATH)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.path.read_text(encoding="utf-8") if args.path.exists() else ""
        if current != text:
            print(f"{args.path} is out of date: run python -m exporters.catalog_doc", file=sys.stderr)
            return 1
        return 0
    args.path.parent.mkdir(parents=True, exist_ok=True)
    args.path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
