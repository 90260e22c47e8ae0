"""Dashboards as code: reproducible JSON, catalog coverage, provisioning, push."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards import PushError, build, panel_queries, push
from dashboards.generator import DATASOURCE_UID
from exporters.catalog import CATALOG, CATALOG_BY_NAME
from tests.conftest import free_port
from tests.promql_names import PROMETHEUS_BUILTINS, metric_names

ROOT = Path(__file__).resolve().parent.parent
JSON_DIR = ROOT / "dashboards" / "json"
RULES = ROOT / "deploy" / "prometheus" / "rules" / "driftline.rules.yml"
SHOWN_GROUPS = {"data_drift", "data_quality", "model_health", "fairness"}


def _committed() -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(JSON_DIR.glob("*.json"))}


def _dashboard_exprs() -> list[tuple[str, str]]:
    exprs = []
    for stem, doc in _committed().items():
        exprs += [(f"{stem}: {title}", expr) for title, expr in panel_queries(doc)]
        for variable in doc["templating"].get("list", []):
            if variable["type"] == "query":
                exprs.append((f"{stem}: ${variable['name']}", _variable_expr(variable["query"])))
        for annotation in doc["annotations"]["list"]:
            exprs.append((f"{stem}: annotation {annotation['name']}", annotation["expr"]))
    return exprs


def _variable_expr(query: str) -> str:
    """label_values(expr, label) -> expr."""
    assert query.startswith("label_values(") and query.endswith(")"), query
    return query.removeprefix("label_values(").rsplit(",", 1)[0]


def _rule_exprs() -> list[tuple[str, str]]:
    """(alert or recorded name, expression) of every rule."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    return [(rule.get("alert") or rule["record"], rule["expr"]) for rule in rules]


def _recorded() -> set[str]:
    """The series the recording rules write (``driftline:...``), which rules may read."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}


def test_regenerating_reproduces_the_committed_json_byte_for_byte(tmp_path: Path) -> None:
    written = build(tmp_path)
    assert sorted(p.name for p in written) == sorted(p.name for p in JSON_DIR.glob("*.json"))
    assert {p.name for p in written} == {
        "overview.json",
        "model.json",
        "feature-drift.json",
        "system-health.json",
    }
    for path in written:
        committed = (JSON_DIR / path.name).read_bytes()
        assert path.read_bytes() == committed, f"{path.name} differs: run `driftline dashboards build`"
        assert committed.endswith(b"}\n") and not committed.endswith(b"\n\n")


def test_every_dashboard_and_rule_metric_is_in_the_catalog() -> None:
    exprs = _dashboard_exprs() + _rule_exprs()
    assert len(exprs) > 60
    unknown = {
        (where, name)
        for where, expr in exprs
        for name in metric_names(expr)
        if name not in CATALOG_BY_NAME and name not in PROMETHEUS_BUILTINS and name not in _recorded()
    }
    assert not unknown, f"metrics missing from exporters/catalog.py: {sorted(unknown)}"


def test_every_data_and_model_health_metric_is_on_some_dashboard() -> None:
    shown = {name for _, expr in _dashboard_exprs() for name in metric_names(expr)}
    wanted = {metric.name for metric in CATALOG if metric.group in SHOWN_GROUPS}
    assert len(wanted) > 25
    assert wanted - shown == set()


def test_every_catalog_metric_is_on_some_dashboard() -> None:
    """Stronger than the issue asks: events, serving and collector metrics are shown too."""
    shown = {name for _, expr in _dashboard_exprs() for name in metric_names(expr)}
    assert {metric.name for metric in CATALOG} - shown == set()


def test_no_constant_fallbacks_in_queries_or_rules() -> None:
    for where, expr in _dashboard_exprs() + _rule_exprs():
        compact = "".join(expr.split())
        assert "vector(" not in compact, f"{where}: constant fallback in {expr!r}"


def test_every_panel_reads_the_fixed_datasource_uid() -> None:
    for stem, doc in _committed().items():
        text = json.dumps(doc)
        assert "${DS_" not in text and "__inputs" not in doc, stem
        for panel in doc["panels"]:
            if panel["type"] in {"row", "text"}:
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}, panel
            assert panel["targets"], f"{stem}: panel {panel['title']!r} has no query"
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == DATASOURCE_UID


def test_dashboards_have_unique_uids_and_version_annotations() -> None:
    docs = _committed()
    assert len({doc["uid"] for doc in docs.values()}) == len(docs)
    for doc in docs.values():
        (annotation,) = doc["annotations"]["list"]
        assert "driftline_model_info" in annotation["expr"]
        assert annotation["titleFormat"] == "{{model}} {{model_version}} (data {{data_version}})"


def test_model_dashboard_links_to_the_latest_report_and_shows_the_data_version() -> None:
    doc = _committed()["model"]
    urls = [link.get("url") for link in doc["links"]]
    assert "${collector_url}/reports/${model}/${model_version}/latest" in urls
    assert [v["name"] for v in doc["templating"]["list"]] == ["model", "model_version", "collector_url"]
    exprs = [expr for _, expr in panel_queries(doc)]
    assert any(expr.startswith("driftline_model_info{") for expr in exprs)


def test_provisioning_points_at_the_json_and_the_fixed_uid() -> None:
    datasources = yaml.safe_load((ROOT / "dashboards/provisioning/datasources/prometheus.yaml").read_text())
    (datasource,) = datasources["datasources"]
    assert datasource["uid"] == DATASOURCE_UID and datasource["type"] == "prometheus"
    providers = yaml.safe_load((ROOT / "dashboards/provisioning/dashboards/driftline.yaml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./dashboards/json:{provider['options']['path']}:ro" in mounts


class _FakeGrafana(BaseHTTPRequestHandler):
    """Just enough of Grafana's folder and dashboard API for :func:`dashboards.push`."""

    folders: set[str]
    saved: list[dict[str, Any]]
    auth: list[str]

    def do_GET(self) -> None:
        self.auth.append(self.headers.get("Authorization", ""))
        uid = self.path.rsplit("/", 1)[-1]
        if self.path.startswith("/api/folders/") and uid in self.folders:
            self._reply(200, {"uid": uid, "title": "Driftline"})
        else:
            self._reply(404, {"message": "not found"})

    def do_POST(self) -> None:
        self.auth.append(self.headers.get("Authorization", ""))
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/api/folders":
            self.folders.add(body["uid"])
            self._reply(200, {"uid": body["uid"], "title": body["title"]})
        elif self.path == "/api/dashboards/db":
            if body.get("folderUid") not in self.folders:
                self._reply(400, {"message": "folder not found"})
                return
            self.saved.append(body)
            uid = body["dashboard"]["uid"]
            self._reply(200, {"uid": uid, "version": len(self.saved), "url": f"/d/{uid}"})
        else:
            self._reply(404, {"message": "not found"})

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def fake_grafana() -> Iterator[tuple[str, type[_FakeGrafana]]]:
    handler = type("Handler", (_FakeGrafana,), {"folders": set(), "saved": [], "auth": []})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_push_uploads_every_dashboard_into_the_driftline_folder(
    fake_grafana: tuple[str, type[_FakeGrafana]],
) -> None:
    """No Grafana binary exists on this machine, so a tiny local HTTP server stands in
    for Grafana's /api/folders and /api/dashboards/db; grafana-client does the real calls."""
    url, grafana = fake_grafana
    results = push(url, "glsa_test_token", JSON_DIR)
    assert [r.uid for r in results] == [
        "driftline-feature-drift",
        "driftline-model",
        "driftline-overview",
        "driftline-system-health",
    ]
    assert [r.version for r in results] == [1, 2, 3, 4]
    assert grafana.folders == {"driftline"}
    assert all(body["overwrite"] and body["folderUid"] == "driftline" for body in grafana.saved)
    assert grafana.saved[1]["dashboard"] == json.loads((JSON_DIR / "model.json").read_text())
    assert set(grafana.auth) == {"Bearer glsa_test_token"}


def test_push_reports_an_unreachable_grafana_as_a_push_error(tmp_path: Path) -> None:
    with pytest.raises(PushError, match="pushing dashboards"):
        push(f"http://127.0.0.1:{free_port()}", "token", JSON_DIR)
    with pytest.raises(PushError, match="no dashboard JSON"):
        push("http://127.0.0.1:1", "token", tmp_path)


def test_cli_dashboards_build_writes_the_committed_json(tmp_path: Path) -> None:
    from collector.cli import main

    assert main(["dashboards", "build", "--out", str(tmp_path)]) == 0
    for path in JSON_DIR.glob("*.json"):
        assert (tmp_path / path.name).read_bytes() == path.read_bytes()


def test_cli_dashboards_push_uploads_to_grafana(
    fake_grafana: tuple[str, type[_FakeGrafana]], capsys: pytest.CaptureFixture[str]
) -> None:
    """Against the stand-in Grafana above (no Grafana binary exists here)."""
    from collector.cli import main

    url, grafana = fake_grafana
    assert main(["dashboards", "push", "--url", url, "--token", "t0ken"]) == 0
    assert sorted(body["dashboard"]["uid"] for body in grafana.saved) == [
        "driftline-feature-drift",
        "driftline-model",
        "driftline-overview",
        "driftline-system-health",
    ]
    capsys.readouterr()
    assert main(["dashboards", "push", "--url", f"http://127.0.0.1:{free_port()}", "--token", "t"]) == 2
    assert "error: pushing dashboards" in capsys.readouterr().err
    assert main(["dashboards", "push", "--url", url, "--token", ""]) == 2
    assert "error: --token-file, GRAFANA_TOKEN or --token is required" in capsys.readouterr().err


def test_cli_dashboards_push_reads_the_token_from_a_file_or_the_environment(
    fake_grafana: tuple[str, type[_FakeGrafana]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from collector.cli import main

    url, grafana = fake_grafana
    token_file = tmp_path / "grafana-token"
    token_file.write_text("glsa_from_file\n", encoding="utf-8")
    monkeypatch.setenv("GRAFANA_TOKEN", "glsa_from_env")
    assert main(["dashboards", "push", "--url", url, "--token-file", str(token_file)]) == 0
    assert set(grafana.auth) == {"Bearer glsa_from_file"}  # a flag wins over the environment
    grafana.auth.clear()
    assert main(["dashboards", "push", "--url", url]) == 0
    assert set(grafana.auth) == {"Bearer glsa_from_env"}


def test_cli_dashboards_push_names_a_missing_token_source_and_never_prints_the_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from collector.cli import main

    monkeypatch.delenv("GRAFANA_TOKEN", raising=False)
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["dashboards", "push", "--url", url]) == 2
    assert "--token-file, GRAFANA_TOKEN or --token is required" in capsys.readouterr().err
    missing = tmp_path / "missing-token"
    assert main(["dashboards", "push", "--url", url, "--token-file", str(missing)]) == 2
    assert f"cannot read the secret file {missing}" in capsys.readouterr().err
    monkeypatch.setenv("GRAFANA_TOKEN", "glsa_SECRET_123")
    assert main(["dashboards", "push", "--url", url]) == 2  # nothing listens there
    out, err = capsys.readouterr()
    assert "error: pushing dashboards" in err
    assert "glsa_SECRET_123" not in out + err
