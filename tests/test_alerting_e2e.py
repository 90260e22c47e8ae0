"""End to end with the real services: collector -> Prometheus -> rules -> Alertmanager -> webhook.

The harness starts Debian's ``prometheus`` and ``prometheus-alertmanager`` on free
loopback ports with the project's own configuration files, copied to a temporary
folder with only addresses, intervals and ``for:`` durations substituted (each
substitution must match, so a config change cannot slip past). The collector is
the real service, ``driftline collect --config``, consuming a real Kafka broker;
the test produces the demo's synthetic credit model through the SDK, with drift
injected part-way, delayed labels, heartbeats and a few failed requests.
The test asserts that

(a) Prometheus scrapes the collector,
(b) a drift alert fires,
(c) Alertmanager delivers it to a webhook receiver run by the test, with the
    labels model, model_version, data_version and severity, and
(d) every PromQL query of every dashboard panel (and every variable and
    annotation query) returns at least one series from that Prometheus.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from driftline import Client
from driftline.kafka_transport import KafkaTransport

from collector.demo import DATA_VERSION, LABEL_DELAY_EVENTS, MODEL, MODEL_VERSION, CreditModel
from dashboards import panel_queries
from tests.conftest import free_port, require_binary
from tests.kafka_fixture import KafkaBroker, create_topics, unique_topic

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
JSON_DIR = ROOT / "dashboards" / "json"
STREAM_SECONDS = 35.0
REFERENCE_EVENTS = 5000  # the default automatic reference (docs/contracts.md#counting-and-windows)
WINDOW_EVENTS = 1000  # the default window
TOTAL_PREDICTIONS = REFERENCE_EVENTS + 10 * WINDOW_EVENTS
DRIFT_FROM_EVENT = REFERENCE_EVENTS + 4 * WINDOW_EVENTS  # windows 5 to 10 drift
REGRESSOR_PANELS = ("model / Regression errors",)
EMBEDDING_DIMENSIONS = 8  # an embedding on every prediction, so the embedding drift panel has series
GRAFANA_VARIABLES = {
    "$__rate_interval": "30s",
    "$__range": "10m",
    "$model_version": MODEL_VERSION,
    "$model": MODEL,
}


def _substitute(text: str, replacements: list[tuple[str, str]]) -> str:
    """Apply regex replacements, each of which must match at least once."""
    for pattern, replacement in replacements:
        text, count = re.subn(pattern, replacement, text)
        assert count, f"the shipped config no longer contains {pattern!r}"
    return text


def _get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def _wait_for(
    what: str,
    check: Callable[[], bool],
    timeout: float,
    interval: float = 0.5,
    diagnose: Callable[[], str] = lambda: "",
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{diagnose()}")


def _alert_states(prometheus: str, webhook: Webhook) -> str:
    """What Prometheus evaluated and what the webhook received, for a failure message."""
    rules = _get_json(f"{prometheus}/api/v1/alerts")["data"]["alerts"]
    evaluated = sorted(f"{a['labels']['alertname']} {a['state']} {a['labels']}" for a in rules)
    received = sorted(f"{r}: {a['labels']} {a['status']}" for r, a in webhook.alerts())
    return "Prometheus alerts:\n" + "\n".join(evaluated) + "\nwebhook:\n" + "\n".join(received)


@dataclass
class Webhook:
    """Alertmanager's webhook receiver: records every notification it is sent."""

    port: int
    notifications: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def alerts(self) -> list[tuple[str, dict[str, Any]]]:
        """(receiver, alert) for every alert of every notification so far."""
        with self.lock:
            return [(n["receiver"], a) for n in self.notifications for a in n["alerts"]]


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with hook.lock:
                hook.notifications.append(body)
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


class Processes:
    """Child processes started by the test, each stopped by its own handle at the end."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("wb")
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=self.logs)
        self.children.append((name, child))
        return child

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        for _, child in reversed(self.children):
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait(timeout=10)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    running = Processes(tmp_path)
    try:
        yield running
    finally:
        running.stop()


def _alertmanager_config(tmp_path: Path, webhook_port: int) -> Path:
    text = (ROOT / "deploy/alertmanager/alertmanager.yml").read_text()
    text = _substitute(
        text,
        [
            (r"alert-receiver:9095", f"127.0.0.1:{webhook_port}"),
            (r"group_wait: \d+s", "group_wait: 1s"),
            (r"group_interval: \d+m", "group_interval: 1s"),
        ],
    )
    path = tmp_path / "alertmanager.yml"
    path.write_text(text)
    return path


def _prometheus_config(tmp_path: Path, collector_port: int, alertmanager_port: int) -> Path:
    source = ROOT / "deploy" / "prometheus"
    text = _substitute(
        (source / "prometheus.yml").read_text(),
        [
            (r"scrape_interval: 15s", "scrape_interval: 1s"),
            (r"evaluation_interval: 15s", "evaluation_interval: 1s"),
            (r"collector:9108", f"127.0.0.1:{collector_port}"),
            (r"alertmanager:9093", f"127.0.0.1:{alertmanager_port}"),
        ],
    )
    (tmp_path / "prometheus").mkdir()
    (tmp_path / "prometheus" / "rules").mkdir()
    for rules in (source / "rules").glob("*.yml"):
        shortened = _substitute(rules.read_text(), [(r"for: \d+m", "for: 1s")])
        (tmp_path / "prometheus" / "rules" / rules.name).write_text(shortened)
    path = tmp_path / "prometheus" / "prometheus.yml"
    path.write_text(text)
    return path


def _query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    reply = _get_json(f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
    assert reply["status"] == "success", reply
    result: list[dict[str, Any]] = reply["data"]["result"]
    return result


def _dashboard_queries() -> list[tuple[str, str]]:
    queries = []
    for path in sorted(JSON_DIR.glob("*.json")):
        doc = json.loads(path.read_text())
        queries += [(f"{path.stem} / {title}", expr) for title, expr in panel_queries(doc)]
        for variable in doc["templating"].get("list", []):
            if variable["type"] == "query":
                inner = variable["query"].removeprefix("label_values(").rsplit(",", 1)[0]
                queries.append((f"{path.stem} / ${variable['name']}", inner))
        for annotation in doc["annotations"]["list"]:
            queries.append((f"{path.stem} / annotation {annotation['name']}", annotation["expr"]))
    return queries


def _grafana_expand(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unexpanded Grafana variable in {expr!r}"
    return expr


def test_drift_alert_reaches_the_webhook_and_every_dashboard_query_has_data(
    tmp_path: Path, webhook: Webhook, processes: Processes, kafka_broker: KafkaBroker
) -> None:
    prometheus_bin = require_binary("prometheus")
    collector_port, prometheus_port = free_port(), free_port()
    prometheus = f"http://127.0.0.1:{prometheus_port}"
    collector = f"http://127.0.0.1:{collector_port}"
    alertmanager_port = _start_alertmanager(tmp_path, webhook, processes)
    processes.start(
        "prometheus",
        [
            prometheus_bin,
            f"--config.file={_prometheus_config(tmp_path, collector_port, alertmanager_port)}",
            f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
        ],
    )
    _wait_for("prometheus to be ready", functools.partial(_ready, prometheus), timeout=30)

    topics = Topics.unique()
    create_topics(kafka_broker.bootstrap, [topics.predictions, topics.labels, topics.dlq])
    config = _collector_config(tmp_path, kafka_broker.bootstrap, topics, collector_port)
    processes.start("collector", [sys.executable, "-m", "collector.cli", "collect", "--config", str(config)])
    _wait_for(
        "the collector's /readyz (group joined, Kafka reachable)",
        lambda: _ready(collector, "/readyz"),
        timeout=60,
        diagnose=lambda: processes.log("collector"),
    )
    producer = threading.Thread(target=_produce, args=(kafka_broker.bootstrap, topics), name="e2e-producer")
    producer.start()
    try:
        _check_alerting(prometheus, webhook, collector)
    finally:
        producer.join(timeout=STREAM_SECONDS + 60)
    assert not producer.is_alive()

    # Everything sent has been processed: every window and label join has happened.
    _wait_for(
        f"the collector to count all {TOTAL_PREDICTIONS} predictions",
        lambda: _scalar(prometheus, 'sum(driftline_events_total{type="prediction"})') >= TOTAL_PREDICTIONS,
        timeout=60,
        diagnose=lambda: processes.log("collector"),
    )
    time.sleep(3.0)  # a few more scrapes, so rates over the last seconds see the final counts

    # (d) every dashboard query returns at least one series.
    # The stream is a classifier's: panels that only a regressor fills are run against a
    # regressor's series in real Prometheus by tests/test_champion_challenger.py.
    queries = [(at, expr) for at, expr in _dashboard_queries() if not at.startswith(REGRESSOR_PANELS)]
    assert len(queries) > 60
    empty = [f"{where}: {expr}" for where, expr in queries if not _query(prometheus, _grafana_expand(expr))]
    assert not empty, "dashboard queries without any series:\n" + "\n".join(empty)


def _check_alerting(prometheus: str, webhook: Webhook, collector: str) -> None:
    """(a) Prometheus scrapes the collector; (b, c) a drift alert reaches the webhook, and
    its report link (on the collector's default address) serves the drift report."""
    _wait_for(
        "Prometheus to scrape the collector's driftline_model_info",
        lambda: bool(_query(prometheus, "driftline_model_info")),
        timeout=STREAM_SECONDS,
    )
    (info,) = _query(prometheus, "driftline_model_info")
    assert info["metric"]["job"] == "driftline-collector"
    assert (info["metric"]["model"], info["metric"]["model_version"]) == (MODEL, MODEL_VERSION)
    assert info["metric"]["data_version"] == DATA_VERSION

    _wait_for(
        "a drift alert at the webhook",
        lambda: any(_is_drift_alert(alert) for _, alert in webhook.alerts()),
        timeout=STREAM_SECONDS + 60,
        diagnose=lambda: _alert_states(prometheus, webhook),
    )
    receiver, alert = next((r, a) for r, a in webhook.alerts() if _is_drift_alert(a))
    labels, annotations = alert["labels"], alert["annotations"]
    assert (labels["model"], labels["model_version"], labels["data_version"]) == (
        MODEL,
        MODEL_VERSION,
        DATA_VERSION,
    )
    assert labels["severity"] in {"info", "warning"}
    assert receiver == "driftline-models"
    assert alert["status"] == "firing"
    assert annotations["report_url"].endswith(f"/reports/{MODEL}/{MODEL_VERSION}/latest")
    assert annotations["runbook_url"] == f"docs/runbook.md#{labels['alertname'].lower()}"
    assert DATA_VERSION in annotations["summary"]
    report_path = urllib.parse.urlparse(annotations["report_url"]).path
    # An Evidently render: wait as long as the server would (http.report_timeout_seconds).
    with urllib.request.urlopen(collector + report_path, timeout=120) as response:
        assert response.status == 200
        assert "text/html" in response.headers["Content-Type"]
        assert "income" in response.read().decode()  # a drifted feature of the demo model


@dataclass(frozen=True)
class Topics:
    predictions: str
    labels: str
    dlq: str

    @classmethod
    def unique(cls) -> Topics:
        return cls(unique_topic("e2e-predictions"), unique_topic("e2e-labels"), unique_topic("e2e-dlq"))


def _collector_config(tmp_path: Path, bootstrap: str, topics: Topics, port: int) -> Path:
    """``driftline collect`` on the test's topics, with conditions the dashboards must show:
    a segment over its value limit (5 regions, limit 4) and an OTLP endpoint that is down."""
    config = {
        "kafka": {
            "bootstrap_servers": bootstrap,
            "group_id": f"e2e-{uuid.uuid4().hex[:8]}",
            "predictions_topic": topics.predictions,
            "labels_topic": topics.labels,
            "dlq_topic": topics.dlq,
        },
        "http": {"host": "127.0.0.1", "port": port},
        "otlp": {
            "endpoint": f"http://127.0.0.1:{free_port()}",
            "interval_seconds": 1.0,
            "timeout_seconds": 1.0,
        },
        "limits": {"max_segment_values": 4},
    }
    path = tmp_path / "driftline.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _produce(bootstrap: str, topics: Topics) -> None:
    """The demo's synthetic credit model through the real SDK over Kafka: a reference, clean
    windows, then drift; delayed labels, heartbeats, an embedding, and 2% of requests failing."""
    model = CreditModel(seed=11)
    transport = KafkaTransport(bootstrap, topics.predictions, topics.labels)
    client = Client(
        MODEL,
        MODEL_VERSION,
        transport,
        data_version=DATA_VERSION,
        max_queue=TOTAL_PREDICTIONS + 10,
        heartbeat_interval=1.0,
    )
    pending: deque[tuple[int, str, int]] = deque()
    started = time.monotonic()
    try:
        for index in range(TOTAL_PREDICTIONS):
            x = model.applicant(drifted=index >= DRIFT_FROM_EVENT)
            p = model.default_probability(x)
            failed = model.rng.random() < 0.02
            event_id = client.log_prediction(
                x,
                int(p >= 0.5),
                probabilities={"0": 1.0 - p, "1": p},
                latency_ms=float(model.rng.lognormal(2.5, 0.4)),
                segments={"region": str(x["region"])},
                embeddings={"profile": model.rng.normal(size=EMBEDDING_DIMENSIONS)},
                error="timeout" if failed else None,
            )
            pending.append((index + LABEL_DELAY_EVENTS, event_id, int(model.rng.random() < p)))
            while pending and pending[0][0] <= index:
                _, label_id, label = pending.popleft()
                client.log_label(label_id, label)
            ahead = started + STREAM_SECONDS * (index + 1) / TOTAL_PREDICTIONS - time.monotonic()
            if ahead > 0.002:
                time.sleep(ahead)
        client.flush(timeout=30.0)
    finally:
        client.close()


def _scalar(prometheus: str, expr: str) -> float:
    result = _query(prometheus, expr)
    return float(result[0]["value"][1]) if result else 0.0


def _start_alertmanager(tmp_path: Path, webhook: Webhook, processes: Processes) -> int:
    """Start Alertmanager on the shipped config, wait until it is ready, return its port."""
    binary = require_binary("prometheus-alertmanager")
    port = free_port()
    processes.start(
        "alertmanager",
        [
            binary,
            f"--config.file={_alertmanager_config(tmp_path, webhook.port)}",
            f"--storage.path={tmp_path / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
    )
    url = f"http://127.0.0.1:{port}"
    _wait_for("alertmanager to be ready", functools.partial(_ready, url), timeout=30)
    return port


def _post_alerts(alertmanager: str, alerts: list[dict[str, str]]) -> None:
    body = json.dumps([{"labels": labels} for labels in alerts]).encode()
    request = urllib.request.Request(
        f"{alertmanager}/api/v2/alerts", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def test_collector_down_inhibits_every_other_driftline_alert(
    tmp_path: Path, webhook: Webhook, processes: Processes
) -> None:
    """The real Alertmanager on the shipped config: routing to the receivers, and the
    inhibition of every Driftline alert while DriftlineCollectorDown fires."""
    alertmanager = f"http://127.0.0.1:{_start_alertmanager(tmp_path, webhook, processes)}"
    model = {"model": "credit-risk", "model_version": "3", "data_version": "2026-05"}
    drift_age = {"alertname": "DriftlineFeatureDrift", "severity": "info", "feature": "age"} | model
    _post_alerts(alertmanager, [drift_age])
    _wait_for("the feature drift alert at the webhook", lambda: bool(webhook.alerts()), timeout=30)
    assert [(r, a["labels"]["feature"]) for r, a in webhook.alerts()] == [("driftline-models", "age")]

    down = {"alertname": "DriftlineCollectorDown", "severity": "critical", "job": "driftline-collector"}
    drift_income = drift_age | {"feature": "income"}
    performance = {"alertname": "DriftlinePerformanceDrop", "severity": "critical"} | model
    _post_alerts(alertmanager, [down])
    _wait_for(
        "the collector-down alert at the webhook",
        lambda: any(r == "driftline-platform" for r, _ in webhook.alerts()),
        timeout=30,
    )
    _post_alerts(alertmanager, [down, drift_income, performance])
    by_name: dict[tuple[str, str], dict[str, Any]] = {}
    for alert in _get_json(f"{alertmanager}/api/v2/alerts"):
        by_name[(alert["labels"]["alertname"], alert["labels"].get("feature", ""))] = alert
    assert by_name[("DriftlineCollectorDown", "")]["status"]["state"] == "active"
    for key in (("DriftlineFeatureDrift", "income"), ("DriftlinePerformanceDrop", "")):
        status = by_name[key]["status"]
        assert status["state"] == "suppressed" and status["inhibitedBy"], (key, status)
    time.sleep(3.0)  # several group_wait/group_interval periods of the test config (1s)
    delivered = {(a["labels"]["alertname"], a["labels"].get("feature")) for _, a in webhook.alerts()}
    assert ("DriftlineFeatureDrift", "income") not in delivered
    assert ("DriftlinePerformanceDrop", None) not in delivered


def _ready(base: str, path: str = "/-/ready") -> bool:
    try:
        with urllib.request.urlopen(base + path, timeout=2) as response:
            return int(response.status) == 200
    except OSError:
        return False


def _is_drift_alert(alert: dict[str, Any]) -> bool:
    return (
        alert["labels"].get("alertname")
        in {
            "DriftlineDatasetDrift",
            "DriftlineFeatureDrift",
            "DriftlinePredictionDrift",
        }
        and alert.get("status") == "firing"
    )


def test_the_harness_substitutions_fail_loudly_on_a_changed_config() -> None:
    with pytest.raises(AssertionError, match="no longer contains"):
        _substitute("scrape_interval: 30s\n", [(r"scrape_interval: 15s", "scrape_interval: 1s")])
    assert _substitute("for: 30m\n", [(r"for: \d+m", "for: 1s")]) == "for: 1s\n"
