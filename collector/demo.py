"""``driftline demo``: a synthetic credit model streams through the real SDK and collector.

The model scores a dozen mixed features; part-way through, drift is injected
into a few named features. The summary names the features the collector
reported as drifted, read from its window results, never from the list of
injections.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from driftline import Client, MemoryTransport
from driftline.transports import Transport
from rich.console import Console
from rich.live import Live
from rich.table import Table

from collector.config import Config
from collector.dlq import MemoryDeadLetterSink
from collector.http_server import Endpoints, HttpServer
from collector.pipeline import Pipeline
from collector.runner import run
from collector.sources import MemorySource, Source
from collector.system_metrics import SystemMetrics
from detectors.window_report import WindowReport
from exporters.html_report import HtmlReportWriter
from exporters.prometheus import build_registry
from exporters.store import MetricStore

MODEL = "credit-risk"
MODEL_VERSION = "1"
DATA_VERSION = "2026-11"
INJECTED = ("income", "utilization", "purpose")
WINDOWS = 10
DRIFT_FROM_WINDOW = 5
LABEL_DELAY_EVENTS = 300
REGIONS = ("north", "south", "east", "west", "central")
PURPOSES = ("debt_consolidation", "car", "home_improvement", "education", "medical", "vacation")
PURPOSE_P = (0.35, 0.2, 0.15, 0.12, 0.1, 0.08)
DRIFTED_PURPOSE_P = (0.08, 0.2, 0.15, 0.12, 0.1, 0.35)


class CreditModel:
    """Draws applicants and scores them with a fixed logistic model; seeded, so runs repeat."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def applicant(self, drifted: bool) -> dict[str, float | int | str | bool]:
        rng = self.rng
        income = float(rng.lognormal(10.8, 0.5)) * (1.6 if drifted else 1.0)
        utilization = min(1.0, float(rng.beta(2, 3)) + (0.15 if drifted else 0.0))
        purposes = DRIFTED_PURPOSE_P if drifted else PURPOSE_P
        return {
            "age": float(np.clip(rng.normal(41, 12), 18, 90)),
            "income": round(income, 2),
            "debt_ratio": float(rng.beta(2, 5)),
            "credit_history_years": float(rng.gamma(4, 2)),
            "num_accounts": int(rng.poisson(4)),
            "utilization": utilization,
            "loan_amount": round(float(rng.lognormal(9.5, 0.7)), 2),
            "employment_years": float(rng.exponential(6)),
            "region": str(rng.choice(REGIONS, p=(0.3, 0.2, 0.2, 0.2, 0.1))),
            "home_ownership": str(rng.choice(("rent", "own", "mortgage"), p=(0.4, 0.2, 0.4))),
            "purpose": str(rng.choice(PURPOSES, p=purposes)),
            "has_cosigner": bool(rng.random() < 0.15),
        }

    @staticmethod
    def default_probability(x: dict[str, float | int | str | bool]) -> float:
        logit = (
            -1.2
            - 0.02 * (float(x["age"]) - 41)
            - 0.8 * (math.log(float(x["income"])) - 10.8)
            + 2.5 * (float(x["debt_ratio"]) - 0.28)
            + 1.8 * (float(x["utilization"]) - 0.4)
            - 0.05 * float(x["credit_history_years"])
            + (0.4 if x["purpose"] == "vacation" else 0.0)
            - (0.5 if x["has_cosigner"] else 0.0)
        )
        return 1.0 / (1.0 + math.exp(-logit))


@dataclass
class DemoView:
    """What the terminal shows: filled by the window listener, read by the screen."""

    reports: list[WindowReport] = field(default_factory=list)
    first_detection: WindowReport | None = None
    printed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, report: WindowReport) -> None:
        with self.lock:
            self.reports.append(report)
            if self.first_detection is None and any(d.detected for d in report.drift.features):
                self.first_detection = report

    def detected_features(self) -> list[str]:
        """Every feature the collector flagged in any window, as it reported them."""
        with self.lock:
            names = {d.feature for r in self.reports for d in r.drift.features if d.detected}
        return sorted(names)

    def table(self, events_sent: int, total: int) -> Table:
        with self.lock:
            last = self.reports[-1] if self.reports else None
            windows = len(self.reports)
            first = self.first_detection
        title = f"Driftline demo: {MODEL}/{MODEL_VERSION}  events {events_sent}/{total}  windows {windows}"
        if first is not None:
            title += f"  [bold red]drift first detected in window {first.index}[/]"
        table = Table(
            title=title,
            caption="score: Evidently's statistic, as exported; "
            "drift: the flag statistic against its calibrated threshold, for the window and for the "
            "window pooled with the previous ones (docs/drift.md)",
        )
        columns = (
            "feature",
            "method",
            "score",
            "flag statistic",
            "threshold",
            "pooled flag / threshold",
            "drift",
        )
        for column in columns:
            table.add_column(column)
        if last is None:
            table.add_row("(collecting the reference)", *[""] * (len(columns) - 1))
            return table
        for d in last.drift.features:
            flag = "[bold red]DRIFT[/]" if d.detected else "ok"
            pooled = "-" if d.pooled_size == 0 else f"{d.pooled_flag_value:.4f} / {d.pooled_threshold:.4f}"
            table.add_row(
                d.feature,
                d.method,
                f"{d.score:.4f}",
                f"{d.flag_value:.4f}",
                f"{d.threshold:.4f}",
                pooled,
                flag,
            )
        return table


SHOWN_PERFORMANCE = ("accuracy", "f1", "roc_auc")
"""The performance metrics the closing summary shows, realized and estimated."""


@dataclass(frozen=True)
class ModelHealthSummary:
    """The demo version's model health as the collector exported it, read back from the metric store."""

    realized: dict[str, float]
    """Performance on the last window of joined labels, by metric."""
    estimated: dict[str, float]
    """Performance estimated without labels (CBPE) on the last prediction window, by metric."""
    concept_drift: dict[str, bool]
    """Whether each concept drift detector flags the last label window."""

    @classmethod
    def from_store(cls, store: MetricStore) -> ModelHealthSummary:
        version = {"model": MODEL, "model_version": MODEL_VERSION}
        realized: dict[str, float] = {}
        estimated: dict[str, float] = {}
        concept_drift: dict[str, bool] = {}
        for snapshot in store.snapshot():
            names = snapshot.metric.labels
            for values, value in snapshot.samples.items():
                labels = dict(zip(names, values, strict=True))
                if any(labels.get(k) != v for k, v in version.items()) or not isinstance(value, float):
                    continue
                if snapshot.metric.name == "driftline_performance" and labels["metric"] in SHOWN_PERFORMANCE:
                    by_source = realized if labels["source"] == "realized" else estimated
                    by_source[labels["metric"]] = value
                elif snapshot.metric.name == "driftline_concept_drift_detected":
                    concept_drift[labels["detector"]] = value == 1.0
        return cls(realized, estimated, concept_drift)


@dataclass(frozen=True)
class DemoResult:
    detected: list[str]
    windows: int
    first_detection_window: int | None
    events_sent: int
    events_processed: int
    undelivered: int
    """Events the SDK could not hand to the collector (failed or dropped), from ``client.stats``."""
    rejected: int
    health: ModelHealthSummary
    url: str
    """Where the demo served its endpoints (gone once it ends)."""


def run_demo(
    *,
    duration: float,
    seed: int,
    http_host: str,
    http_port: int,
    console: Console,
    transport: Transport | None = None,
    source_factory: Callable[[MetricStore], Source] | None = None,
) -> DemoResult:
    """Stream the synthetic model for ``duration`` seconds and return what the collector found."""
    config = Config()
    events_per_window = config.defaults.window.events
    total = config.defaults.reference.auto_events + WINDOWS * events_per_window
    drift_from = config.defaults.reference.auto_events + (DRIFT_FROM_WINDOW - 1) * events_per_window
    store = MetricStore()
    view, reports = DemoView(), HtmlReportWriter(config.reports)
    pipeline = Pipeline(config, store, MemoryDeadLetterSink(), event_time=False, listeners=(view, reports))
    memory = MemoryTransport()
    source = source_factory(store) if source_factory is not None else MemorySource(memory)
    system = SystemMetrics(store)
    endpoints = Endpoints(build_registry(store), pipeline.status, lambda: None, reports, system.update)
    server = HttpServer(endpoints, http_host, http_port, settings=config.http).start()
    console.print(f"Driftline demo: /metrics on {server.url}/metrics, reports on {server.url}/reports/")
    console.print(f"{total} events over {duration:.0f} s; drift injected from window {DRIFT_FROM_WINDOW} on")
    stop = threading.Event()
    collector = threading.Thread(target=run, args=(source, pipeline, stop), kwargs={"poll_timeout": 0.05})
    collector.start()
    client = Client(
        MODEL,
        MODEL_VERSION,
        transport or memory,
        data_version=DATA_VERSION,
        max_queue=total + 10,
        heartbeat_interval=1.0,
    )
    sent = 0
    try:
        sent = _stream(client, CreditModel(seed), total, drift_from, duration, view, console)
        client.flush(timeout=30.0)
        _wait_until_processed(pipeline, sent, timeout=60.0)
        if not console.is_terminal:
            _print_new_windows(view, console)
    finally:
        client.close()
        stop.set()
        collector.join(timeout=30)
        source.close()
        server.stop()
    first = view.first_detection
    return DemoResult(
        detected=view.detected_features(),
        windows=len(view.reports),
        first_detection_window=first.index if first else None,
        events_sent=sent,
        events_processed=pipeline.counts.accepted["prediction"],
        undelivered=_undelivered(client),
        rejected=sum(pipeline.counts.rejected.values()),
        health=ModelHealthSummary.from_store(store),
        url=server.url,
    )


def _undelivered(client: Client) -> int:
    stats = client.stats
    return stats.failed + stats.invalid + stats.dropped_queue_full + stats.dropped_closed + stats.pending


def _stream(
    client: Client,
    model: CreditModel,
    total: int,
    drift_from: int,
    duration: float,
    view: DemoView,
    console: Console,
) -> int:
    pending_labels: deque[tuple[int, str, int]] = deque()
    started = time.monotonic()
    live = Live(view.table(0, total), console=console, refresh_per_second=4) if console.is_terminal else None
    if live is not None:
        live.start()
    try:
        for index in range(total):
            x = model.applicant(drifted=index >= drift_from)
            p = model.default_probability(x)
            event_id = client.log_prediction(
                x,
                int(p >= 0.5),
                probabilities={"0": 1.0 - p, "1": p},
                latency_ms=float(model.rng.lognormal(2.5, 0.4)),
                segments={"region": str(x["region"])},
            )
            pending_labels.append((index + LABEL_DELAY_EVENTS, event_id, int(model.rng.random() < p)))
            while pending_labels and pending_labels[0][0] <= index:
                _, label_id, label = pending_labels.popleft()
                client.log_label(label_id, label)
            _pace(started, index + 1, total, duration)
            if live is not None and index % 100 == 0:
                live.update(view.table(index + 1, total))
            elif live is None:
                _print_new_windows(view, console)
    finally:
        if live is not None:
            live.update(view.table(total, total))
            live.stop()
    return total


def _pace(started: float, done: int, total: int, duration: float) -> None:
    ahead = started + duration * done / total - time.monotonic()
    if ahead > 0.002:
        time.sleep(ahead)


def _print_new_windows(view: DemoView, console: Console) -> None:
    with view.lock:
        new = view.reports[view.printed :]
        view.printed += len(new)
    for report in new:
        drifted = [d.feature for d in report.drift.features if d.detected]
        console.print(
            f"window {report.index}: {report.n_events} events, drift share {report.drift.share:.2f}, "
            f"drifted: {', '.join(drifted) or 'none'}"
        )


def _wait_until_processed(pipeline: Pipeline, sent: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with pipeline.lock:
            if pipeline.counts.accepted["prediction"] >= sent:
                return
        time.sleep(0.05)


def print_result(result: DemoResult, console: Console) -> None:
    console.print()
    console.print(
        f"[bold]Summary[/]: {result.events_sent} predictions sent, {result.events_processed} processed, "
        f"{result.windows} windows evaluated, {result.rejected} events rejected"
    )
    if result.undelivered:
        console.print(
            f"[bold yellow]warning:[/] {result.undelivered} events were not delivered to the collector "
            "(see the SDK's client.stats: failed, dropped)"
        )
    if result.first_detection_window is not None:
        console.print(
            f"Drift first detected in window {result.first_detection_window} "
            f"(injected from window {DRIFT_FROM_WINDOW})."
        )
    console.print(f"Drifted features reported by the collector: {', '.join(result.detected) or 'none'}")
    console.print(f"Features the demo injected drift into: {', '.join(INJECTED)}")
    _print_model_health(result.health, console)
    console.print("Where to look next (served while a collector runs; this demo's server has now stopped):")
    for path, what in (
        ("/api/v1/models", "each model version's status as JSON"),
        ("/reports/", f"drift reports, e.g. /reports/{MODEL}/{MODEL_VERSION}/latest"),
        ("/metrics", "every number above, for Prometheus"),
    ):
        console.print(f"  {result.url}{path}  {what}")
    console.print(
        "  `driftline demo --duration 600` leaves time to browse them; "
        "`driftline collect` serves the same on Kafka, and "
        f"`driftline status --url {result.url}` tables its model versions."
    )


def _print_model_health(health: ModelHealthSummary, console: Console) -> None:
    def shown(metrics: dict[str, float]) -> str:
        values = [f"{name} {metrics[name]:.3f}" for name in SHOWN_PERFORMANCE if name in metrics]
        return ", ".join(values) or "none yet"

    flagged = sorted(name for name, detected in health.concept_drift.items() if detected)
    console.print(f"Realized performance (last window of joined labels): {shown(health.realized)}")
    console.print(f"Estimated performance (CBPE, no labels, last window): {shown(health.estimated)}")
    if not health.concept_drift:
        console.print("Concept drift: not evaluated yet")
    else:
        checked = ", ".join(sorted(health.concept_drift))
        console.print(f"Concept drift ({checked}): {', '.join(flagged) if flagged else 'none'} flagged")
