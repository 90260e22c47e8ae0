"""docker-compose.yml: valid against the Compose specification, offline, and self-consistent.

No Docker daemon exists here, so the stack is not started; the test checks the
file against check-jsonschema's vendored compose-spec schema (no network) and
that everything it mounts, builds or depends on exists.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from collector.config import load_config
from tests.conftest import require

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
SERVICES = {"kafka", "collector", "prometheus", "alertmanager", "grafana"}


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def _check_jsonschema() -> str:
    beside_python = Path(sys.executable).with_name("check-jsonschema")
    path = str(beside_python) if beside_python.exists() else shutil.which("check-jsonschema")
    require(path is not None, "check-jsonschema is not installed (pip install -e '.[dev]')")
    assert path is not None
    return path


def test_compose_file_validates_against_the_compose_spec_offline() -> None:
    result = subprocess.run(
        [_check_jsonschema(), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok" in result.stdout


def test_the_schema_check_rejects_a_broken_compose_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  collector:\n    ports: 9108\n    restart: sometimes\n")
    result = subprocess.run(
        [_check_jsonschema(), "--builtin-schema", "vendor.compose-spec", str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr


def test_the_stack_has_every_service_and_the_official_kafka_image_in_kraft_mode() -> None:
    services = _compose()["services"]
    assert set(services) == SERVICES
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["collector"]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert services["grafana"]["image"].startswith("grafana/grafana:11.")


def test_every_mounted_path_and_dependency_exists() -> None:
    compose = _compose()
    services, volumes = compose["services"], set(compose.get("volumes", {}))
    mounted = 0
    for name, service in services.items():
        for mount in service.get("volumes", []):
            source = mount.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"
                mounted += 1
            else:
                assert source in volumes, f"{name}: named volume {source} is not declared"
        depends = service.get("depends_on", [])
        for target in depends if isinstance(depends, list) else list(depends):
            assert target in services, f"{name} depends on unknown service {target}"
        build = service.get("build")
        if build:
            assert (ROOT / build["context"] / build["dockerfile"]).is_file()
    assert mounted == 6


def test_the_stack_mounts_the_config_files_the_tests_use() -> None:
    services = _compose()["services"]
    mounts = {m.split(":")[0] for s in services.values() for m in s.get("volumes", [])}
    for path in (
        "./deploy/prometheus/prometheus.yml",
        "./deploy/prometheus/rules",
        "./deploy/alertmanager/alertmanager.yml",
        "./dashboards/provisioning",
        "./dashboards/json",
        "./deploy/collector/driftline.yaml",
    ):
        assert path in mounts, path
    prometheus = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    (scrape,) = prometheus["scrape_configs"]
    assert scrape["static_configs"][0]["targets"] == ["collector:9108"]
    targets = prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == ["alertmanager:9093"]


def test_the_collector_config_is_valid_and_listens_beyond_loopback() -> None:
    config = load_config(ROOT / "deploy/collector/driftline.yaml")
    assert config.http.host == "0.0.0.0" and config.http.port == 9108
    text = (ROOT / "deploy/collector/driftline.yaml").read_text(encoding="utf-8")
    assert "0.0.0.0 inside the container only" in text and "127.0.0.1" in text
    assert config.kafka.bootstrap_servers == "kafka:19092"
    # Checkpoints and calibrated thresholds persist in the collector's volume (the image's user has no home).
    volumes = _compose()["services"]["collector"]["volumes"]
    assert "collector-state:/var/lib/driftline" in [v.split("#")[0].strip() for v in volumes]
    for kept in (config.state.directory, config.calibration_cache):
        assert kept is not None and str(kept).startswith("/var/lib/driftline/")
    kafka_env = _compose()["services"]["kafka"]["environment"]
    assert "INTERNAL://kafka:19092" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]


def test_every_file_the_dockerfile_copies_exists() -> None:
    dockerfile = (ROOT / "deploy/Dockerfile").read_text()
    sources = [
        part
        for line in re.findall(r"^COPY (.+)$", dockerfile, flags=re.MULTILINE)
        for part in line.split()[:-1]
    ]
    assert "collector/" in sources
    for source in sources:
        assert (ROOT / source).exists(), f"deploy/Dockerfile copies missing {source}"


def test_the_image_runs_the_collector_with_the_allocator_setting_the_soak_measured() -> None:
    """docs/benchmarks.md's soak runs with --collector-env MALLOC_MMAP_THRESHOLD_=131072, as the image."""
    dockerfile = (ROOT / "deploy/Dockerfile").read_text()
    assert re.search(r"^\s+MALLOC_MMAP_THRESHOLD_=131072$", dockerfile, flags=re.MULTILINE)
    soak_section = (ROOT / "docs/benchmarks.md").read_text().split("## Soak")[1]
    assert "--collector-env MALLOC_MMAP_THRESHOLD_=131072" in soak_section


def test_every_published_port_is_bound_to_the_hosts_loopback_only() -> None:
    """A bare "9108:9108" publishes on every host interface, past any host firewall
    rule that Docker's own iptables rules bypass; the stack has no authentication."""
    published = {
        name: service.get("ports", []) for name, service in _compose()["services"].items()
    }
    assert {name for name, ports in published.items() if ports} == SERVICES
    for name, ports in published.items():
        for port in ports:
            assert isinstance(port, str), f"{name}: write ports as HOST_IP:HOST:CONTAINER strings"
            parts = port.split(":")
            assert len(parts) == 3 and parts[0] == "127.0.0.1", f"{name} publishes {port} beyond loopback"
            assert parts[1] == parts[2], f"{name}: {port}"
    assert "127.0.0.1:9108:9108" in published["collector"]
    assert "127.0.0.1:9092:9092" in published["kafka"]
