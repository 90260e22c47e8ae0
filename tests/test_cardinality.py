"""Cardinality guards: a producer that sends thousands of names cannot create thousands of series."""

from __future__ import annotations

import re
import urllib.request

import numpy as np
from driftline.schema import Prediction, encode

from collector.config import parse_config
from collector.dlq import MemoryDeadLetterSink
from collector.http_server import Endpoints, HttpServer
from collector.pipeline import Pipeline
from collector.sources import RawMessage
from exporters.prometheus import build_registry
from exporters.store import MetricStore

LIMITS = {"max_models": 50, "max_model_versions": 3, "max_features": 100, "max_segment_values": 10}
CONFIG = {
    "limits": LIMITS,
    "defaults": {"window": {"events": 50, "min_events": 10}, "reference": {"auto_events": 50}},
}


def _scrape(store: MetricStore, pipeline: Pipeline) -> str:
    server = HttpServer(
        Endpoints(build_registry(store), pipeline.status, lambda: None), "127.0.0.1", 0
    ).start()
    try:
        with urllib.request.urlopen(server.url + "/metrics", timeout=30) as response:
            return str(response.read().decode())
    finally:
        server.stop()


def test_ten_thousand_model_and_feature_names_stay_within_the_limits() -> None:
    store, dlq = MetricStore(), MemoryDeadLetterSink()
    pipeline = Pipeline(parse_config(CONFIG), store, dlq, event_time=True)
    events = [
        Prediction(
            event_id=f"m{i}",
            model=f"model-{i}",
            model_version="1",
            features={"x": 1.0},
            prediction=1,
            timestamp=1.0,
        )
        for i in range(10_000)
    ]
    # One admitted model sees 10,000 distinct feature names (beside 10 steady ones) and 100 segment values.
    rng = np.random.default_rng(31)
    events += [
        Prediction(
            event_id=f"f{i}",
            model="model-0",
            model_version="1",
            features={
                **{f"base-{j}": float(rng.normal()) for j in range(10)},
                **{f"feature-{i * 100 + j}": float(j) for j in range(100)},
            },
            prediction=1,
            timestamp=2.0 + i,
            segments={"tenant": f"t{i}"},
        )
        for i in range(100)
    ]
    events += [
        Prediction(
            event_id=f"v{i}",
            model="model-1",
            model_version=f"v{i}",
            features={"x": 1.0},
            prediction=1,
            timestamp=3.0,
        )
        for i in range(10)
    ]
    pipeline.process([RawMessage(encode(e), "t", 0, i, 0.0) for i, e in enumerate(events)])
    text = _scrape(store, pipeline)

    models = set(re.findall(r'model="([^"]+)"', text))
    assert len(models) == LIMITS["max_models"]
    features = set(re.findall(r'driftline_feature_drift_score\{[^}]*feature="([^"]+)"', text))
    assert {f"base-{j}" for j in range(10)} <= features
    assert len(features) <= LIMITS["max_features"]
    versions = set(re.findall(r'driftline_model_info\{[^}]*model="model-1",model_version="([^"]+)"', text))
    assert len(versions) == LIMITS["max_model_versions"]
    tenants = set(re.findall(r'segment="tenant",value="([^"]+)"', text))
    assert len(tenants) == LIMITS["max_segment_values"] + 1 and "__other__" in tenants
    assert len(text.splitlines()) < 3000

    assert pipeline.counts.rejected == {"limit": 9_950 + 8}
    assert len(dlq.rejected) == 9_958
    assert 'driftline_limit_exceeded_total{kind="model"} 9950.0' in text
    assert 'driftline_limit_exceeded_total{kind="model_version"} 8.0' in text
    assert 'driftline_limit_exceeded_total{kind="feature"} 100.0' in text
    assert 'driftline_limit_exceeded_total{kind="segment_value"} 90.0' in text
