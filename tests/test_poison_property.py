"""Property-based: no generated message breaks decode, the pipeline or the exposition.

Hypothesis throws batches of generated events (valid ones, ones with a field
set to a hostile value, duplicate keys, numbers JSON can write but a float
cannot hold), random JSON and raw bytes through ``decode``, the pipeline (on
event time and on the wall clock, with windows small enough to close) and the
Prometheus exposition, checked with ``promtool check metrics`` once per
batch. Every message must be accepted or rejected (the counts add up), none
may raise, and valid input must never hit a collector bug (no
``processing_error``, no detector failure). The HTML report is checked on a
fixed set of the nastiest values.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from driftline.schema import RejectReason, SchemaError, decode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest

from collector.config import parse_config
from collector.dlq import MemoryDeadLetterSink
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from exporters.catalog import DETECTORS
from exporters.html_report import HtmlReportWriter
from exporters.prometheus import build_registry
from exporters.store import MetricStore
from tests.conftest import require_binary
from tests.poison import BIG, HUGE, POISONS

SMALL_WINDOWS = {
    "defaults": {"window": {"events": 6, "min_events": 2}, "reference": {"auto_events": 6}},
    "limits": {"max_models": 3, "max_model_versions": 3, "max_features": 6, "max_segment_values": 3},
}
NASTY_TEXT = [
    "\ud800",
    "\udfff",
    "a\ud83d",
    "\x00",
    "\n",
    '"',
    "\\",
    "<script>",
    "é",
    "\U0001f600",
    "",
    "x" * 1100,
]
NUMBER_LITERALS = [
    "1e400",
    "-1e400",
    BIG,
    "-" + BIG,
    HUGE,
    "NaN",
    "Infinity",
    "-0",
    "1e-400",
    "1.7976931348623157e308",
]
FIELDS = {
    "prediction": [
        "event_id",
        "model",
        "model_version",
        "data_version",
        "timestamp",
        "features",
        "prediction",
        "probabilities",
        "latency_ms",
        "segments",
        "error",
    ],
    "label": ["event_id", "model", "label", "timestamp", "model_version"],
    "heartbeat": [
        "model",
        "model_version",
        "instance",
        "timestamp",
        "cpu_ratio",
        "rss_bytes",
        "requests_total",
        "errors_total",
        "uptime_seconds",
    ],
}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(NASTY_TEXT),
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
hostile = st.one_of(json_values, st.sampled_from([f"__LITERAL_{i}__" for i in range(len(NUMBER_LITERALS))]))
names = st.sampled_from(["a", "b", "c", "\ud800", "é", "<b>", "x" * 130, ""])


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event of a few models and versions, small enough that windows close."""
    kind = draw(st.sampled_from(["prediction"] * 6 + ["label", "heartbeat"]))
    event: dict[str, Any] = {
        "type": kind,
        "schema_version": 1,
        "model": draw(st.sampled_from(["m"] * 8 + ["n", "o", "p"])),
        "timestamp": 1_700_000_000 + draw(st.integers(0, 200)),
    }
    if kind != "label":
        event["model_version"] = draw(st.sampled_from(["1"] * 8 + ["é", "<v>", 'v"1', "4"]))
    if kind == "prediction":
        event["event_id"] = f"e{draw(st.integers(0, 30))}"
        values = st.one_of(
            st.none(),
            st.booleans(),
            st.floats(-1e308, 1e308),
            st.integers(-(10**300), 10**300),
            st.sampled_from(["north", "south", "<i>", "é", ""]),
        )
        event["features"] = draw(
            st.dictionaries(st.sampled_from(["a", "b", "c", "d", "e", "f", "g", "h"]), values, max_size=8)
        )
        event["prediction"] = draw(
            st.one_of(st.integers(0, 2), st.sampled_from(["yes", "no"]), st.floats(0, 1))
        )
        if draw(st.booleans()):
            p = draw(st.floats(0, 1))
            event["probabilities"] = {"1": p, "0": 1 - p}
        if draw(st.booleans()):
            event["segments"] = {
                "region": draw(st.sampled_from(["north", "south", "east", "west", "é", "<s>"]))
            }
        if draw(st.booleans()):
            event["latency_ms"] = draw(st.floats(0, 1e308))
    elif kind == "label":
        event["event_id"] = f"e{draw(st.integers(0, 30))}"
        event["label"] = draw(st.one_of(st.integers(0, 2), st.sampled_from(["yes", "no"])))
    else:
        event["instance"] = draw(st.sampled_from(["i1", "i2", "<i>"]))
        event["cpu_ratio"] = draw(st.floats(0, 1))
    return event


@st.composite
def hostile_events(draw: st.DrawFn) -> bytes:
    """An event with some fields (or keys) set to hostile values, written several ways."""
    event = draw(events())
    for _ in range(draw(st.integers(0, 3))):
        fields = FIELDS[event["type"]] + ["features.a", "segments.region", "probabilities.1", "extra"]
        path = draw(st.sampled_from(fields))
        parent, _, name = path.rpartition(".")
        target = event.setdefault(parent, {}) if parent else event
        if not isinstance(target, dict):
            continue
        if draw(st.booleans()):
            target[name] = draw(hostile)
        else:
            target[draw(names)] = draw(hostile)
    text = json.dumps(event, ensure_ascii=draw(st.booleans()), allow_nan=True)
    for i, literal in enumerate(NUMBER_LITERALS):
        text = text.replace(f'"__LITERAL_{i}__"', literal)
    if draw(st.booleans()) and text.endswith("}") and len(text) > 2:
        text = text[:-1] + ', "model": "m"}'  # a duplicate key, or an extra one
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate becomes bytes that are not UTF-8


hostile_messages = st.one_of(
    hostile_events(),
    json_values.map(lambda value: json.dumps(value).encode("utf-8", "surrogatepass")),
    st.binary(max_size=64),
    st.sampled_from([p.raw for p in POISONS]),
)


@st.composite
def batches(draw: st.DrawFn) -> list[bytes]:
    """Enough valid events for windows to close, with hostile messages spread among them."""
    batch = [json.dumps(event).encode() for event in draw(st.lists(events(), min_size=12, max_size=50))]
    for message in draw(st.lists(hostile_messages, max_size=15)):
        batch.insert(draw(st.integers(0, len(batch))), message)
    return batch


@settings(
    max_examples=120,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(batch=batches(), event_time=st.booleans())
def test_no_generated_message_breaks_decode_pipeline_or_exposition(
    batch: list[bytes], event_time: bool
) -> None:
    for raw in batch:
        try:
            decode(raw)
        except SchemaError as error:
            str(error).encode("utf-8")  # the reason and field are printable
    store, dlq = MetricStore(), MemoryDeadLetterSink()
    pipeline = Pipeline(parse_config(SMALL_WINDOWS), store, dlq, event_time=event_time)
    pipeline.process([RawMessage(raw, "t", 0, offset, 1.7e9) for offset, raw in enumerate(batch)])
    if not event_time:
        pipeline.tick(1.7e9 + 3600.0)

    counts = pipeline.counts
    assert counts.total == len(batch)
    assert len(dlq.rejected) == sum(counts.rejected.values())
    assert counts.rejected.get(RejectReason.PROCESSING_ERROR.value, 0) == 0, dlq.rejected
    for reason in RejectReason:  # (accepted series go when their version retires; these stay)
        rejected = store.get("driftline_events_rejected_total", {"reason": reason.value})
        assert rejected == counts.rejected.get(reason.value, 0), reason
    for detector in DETECTORS:
        assert store.get("driftline_detector_failures_total", {"detector": detector}) == 0.0, detector
    _promtool_check(generate_latest(build_registry(store)))


def _promtool_check(exposition: bytes) -> None:
    promtool = require_binary("promtool")
    result = subprocess.run([promtool, "check", "metrics"], input=exposition, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


NASTIEST = ["<script>alert(1)</script>", 'q"uote', "back\\slash", "é", "\U0001f600", "a\u202eb", "&amp;", " "]


def test_the_html_report_renders_the_nastiest_valid_values() -> None:
    """Names and values that are valid but hostile to HTML reach a rendered, encodable report."""
    config = parse_config(
        {"defaults": {"window": {"events": 40, "min_events": 2}, "reference": {"auto_events": 40}}}
    )
    store, reports = MetricStore(), HtmlReportWriter()
    pipeline = Pipeline(config, store, MemoryDeadLetterSink(), event_time=True, listeners=(reports,))
    batch = []
    for i in range(80):
        features: dict[str, Any] = {name: (i % 7) * 1.5 for name in NASTIEST[:4]}
        features |= {name: NASTIEST[(i + j) % len(NASTIEST)] for j, name in enumerate(NASTIEST[4:])}
        event = {
            "type": "prediction",
            "schema_version": 1,
            "event_id": f"e{i}",
            "model": "m",
            "model_version": "<v1>",
            "data_version": '"d"',
            "features": features,
            "prediction": i % 2,
            "timestamp": 1_700_000_000 + i,
            "segments": {"<seg>": NASTIEST[i % len(NASTIEST)]},
        }
        batch.append(RawMessage(json.dumps(event).encode(), "t", 0, i, 0.0))
    pipeline.process(batch)
    assert pipeline.counts.accepted["prediction"] == 80
    assert pipeline.states[("m", "<v1>")].windows_evaluated == 1
    page = reports.render("m", "<v1>")
    assert page is not None
    page.encode("utf-8")
    assert "\U0001f600" in page or "&#128512;" in page or "\\ud83d" in page.lower()
    _promtool_check(generate_latest(build_registry(store)))
