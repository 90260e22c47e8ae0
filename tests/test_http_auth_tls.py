"""Optional authentication and TLS of the HTTP endpoints, scraped by a client and by real Prometheus."""

from __future__ import annotations

import base64
import json
import logging
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.registry import CollectorRegistry

from collector.config import HttpConfig, parse_config
from collector.errors import ConfigError
from collector.http_server import Endpoints, HttpServer
from tests.conftest import free_port, require_binary
from tests.tls_files import self_signed

SECRET = "s3cret-Pa55-9f1c"
LOOPBACK = "127.0.0.1"


def _endpoints() -> Endpoints:
    return Endpoints(CollectorRegistry(), lambda: [], lambda: None)


@contextmanager
def _serving(settings: dict[str, Any], port: int = 0) -> Iterator[HttpServer]:
    server = HttpServer(_endpoints(), "127.0.0.1", port, settings=HttpConfig.model_validate(settings))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _get(
    url: str, authorization: str | None = None, context: ssl.SSLContext | None = None, method: str = "GET"
) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, method=method)
    if authorization is not None:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_auth_guards_everything_but_health(tmp_path: Path) -> None:
    password_file = tmp_path / "password"
    password_file.write_text(SECRET + "\n")
    settings = {"auth": {"mode": "basic", "username": "prom", "password_file": str(password_file)}}
    with _serving(settings) as server:
        guarded = ("/metrics", "/api/v1/models", "/api/v1/model-groups", "/reports/", "/reports/m/1/latest")
        for path in guarded:
            status, headers = _get(server.url + path)
            assert status == 401 and headers["WWW-Authenticate"] == 'Basic realm="driftline"', path
        assert _get(server.url + "/metrics", _basic("prom", SECRET))[0] == 200
        assert _get(server.url + "/metrics", _basic("prom", SECRET), method="HEAD")[0] == 200
        assert _get(server.url + "/metrics", _basic("prom", SECRET + "x"))[0] == 401
        assert _get(server.url + "/metrics", _basic("other", SECRET))[0] == 401
        assert _get(server.url + "/metrics", "Basic !!not-base64")[0] == 401
        assert _get(server.url + "/metrics", "Bearer " + SECRET)[0] == 401
        assert _get(server.url + "/healthz")[0] == 200 and _get(server.url + "/readyz")[0] == 200


def test_bearer_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLINE_TEST_TOKEN", SECRET)
    with _serving({"auth": {"mode": "bearer", "token_env": "DRIFTLINE_TEST_TOKEN"}}) as server:
        status, headers = _get(server.url + "/metrics")
        assert status == 401 and headers["WWW-Authenticate"] == 'Bearer realm="driftline"'
        assert _get(server.url + "/metrics", "Bearer " + SECRET)[0] == 200
        assert _get(server.url + "/metrics", "bearer " + SECRET)[0] == 200  # the scheme is case-insensitive
        assert _get(server.url + "/metrics", "Bearer " + SECRET[:-1])[0] == 401
        assert _get(server.url + "/healthz")[0] == 200


def test_auth_configuration_errors_are_clear(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="mode basic needs username"):
        parse_config({"http": {"auth": {"mode": "basic", "password": SECRET}}})
    with pytest.raises(ConfigError, match="mode bearer needs one of"):
        parse_config({"http": {"auth": {"mode": "bearer", "token_file": "t", "token_env": "X"}}})
    with pytest.raises(ConfigError, match="TLS needs both"):
        parse_config({"http": {"tls": {"cert_file": "c.pem"}}})
    monkeypatch.delenv("DRIFTLINE_UNSET_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="DRIFTLINE_UNSET_TOKEN is not set"):
        HttpServer(_endpoints(), "127.0.0.1", 0, settings=HttpConfig.model_validate(
            {"auth": {"mode": "bearer", "token_env": "DRIFTLINE_UNSET_TOKEN"}}
        ))
    with pytest.raises(ConfigError, match="token_file: cannot read"):
        HttpServer(_endpoints(), "127.0.0.1", 0, settings=HttpConfig.model_validate(
            {"auth": {"mode": "bearer", "token_file": str(tmp_path / "missing")}}
        ))
    config = parse_config({"http": {"auth": {"mode": "bearer", "token": SECRET}}})
    assert SECRET not in repr(config) and SECRET not in str(config.model_dump())


def test_relative_credential_and_certificate_files_are_read_next_to_the_config(tmp_path: Path) -> None:
    source = tmp_path / "driftline.yaml"
    config = parse_config(
        {"http": {"auth": {"mode": "bearer", "token_file": "token"},
                  "tls": {"cert_file": "cert.pem", "key_file": "/abs/key.pem"}}},
        source=str(source),
    )
    assert config.http.auth.token_file == tmp_path / "token"
    assert config.http.tls.cert_file == tmp_path / "cert.pem"
    assert config.http.tls.key_file == Path("/abs/key.pem")


def test_tls_with_a_self_signed_certificate(tmp_path: Path) -> None:
    cert_file, key_file = self_signed(tmp_path)
    client = ssl.create_default_context(cafile=str(cert_file))
    tls = {"cert_file": str(cert_file), "key_file": str(key_file)}
    settings = {"request_timeout_seconds": 2.0, "tls": tls}
    with _serving(settings) as server:
        assert server.url.startswith("https://127.0.0.1:")
        status, headers = _get(server.url + "/healthz", context=client)
        assert status == 200 and headers["X-Content-Type-Options"] == "nosniff"
        with pytest.raises(urllib.error.URLError):
            _get(server.url + "/healthz", context=ssl.create_default_context())  # untrusted: refused
        start = time.monotonic()
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            _get(server.url.replace("https", "http") + "/healthz")  # plain HTTP to a TLS port
        assert time.monotonic() - start < 5.0
        assert _get(server.url + "/healthz", context=client)[0] == 200  # still serving
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as silent:
            assert _get(server.url + "/healthz", context=client)[0] == 200  # not blocked by it
            start = time.monotonic()
            assert silent.recv(1024) == b""  # closed at the deadline, never handshaken
            assert time.monotonic() - start < 4.0


def test_an_unreadable_certificate_is_a_clear_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate")
    settings = HttpConfig.model_validate(
        {"tls": {"cert_file": str(tmp_path / "cert.pem"), "key_file": str(tmp_path / "key.pem")}}
    )
    with pytest.raises(ConfigError, match=r"http\.tls: cannot load the certificate"):
        HttpServer(_endpoints(), "127.0.0.1", 0, settings=settings)


def test_start_logs_the_exposure_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="collector")
    with _serving({}):
        pass
    assert not [r for r in caplog.records if "beyond loopback" in r.getMessage()]
    server = HttpServer(_endpoints(), "127.0.0.1", 0, settings=HttpConfig())
    server.warning = "simulated"  # the bind address decides it (unit-tested); here only that start() logs it
    server.start()
    server.stop()
    assert [r.levelno for r in caplog.records if r.getMessage() == "simulated"] == [logging.WARNING]


@pytest.mark.integration
def test_prometheus_scrapes_with_basic_auth_and_with_a_bearer_token_over_tls(tmp_path: Path) -> None:
    prometheus_bin = require_binary("prometheus")
    (tmp_path / "password").write_text(SECRET)
    (tmp_path / "token").write_text(SECRET)
    cert_file, key_file = self_signed(tmp_path)
    basic = {"auth": {"mode": "basic", "username": "prom", "password_file": str(tmp_path / "password")}}
    bearer = {
        "auth": {"mode": "bearer", "token_file": str(tmp_path / "token")},
        "tls": {"cert_file": str(cert_file), "key_file": str(key_file)},
    }
    prometheus_port = free_port()
    with _serving(basic) as plain, _serving(bearer) as secure:
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
            "scrape_configs": [
                {
                    "job_name": "basic",
                    "basic_auth": {"username": "prom", "password_file": str(tmp_path / "password")},
                    "static_configs": [{"targets": [f"127.0.0.1:{plain.port}"]}],
                },
                {
                    "job_name": "bearer_tls",
                    "scheme": "https",
                    "authorization": {"credentials_file": str(tmp_path / "token")},
                    "tls_config": {"ca_file": str(cert_file)},
                    "static_configs": [{"targets": [f"127.0.0.1:{secure.port}"]}],
                },
                {
                    "job_name": "no_credentials",
                    "static_configs": [{"targets": [f"127.0.0.1:{plain.port}"]}],
                },
            ],
        }
        (tmp_path / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
        log = (tmp_path / "prometheus.log").open("wb")
        child = subprocess.Popen(
            [
                prometheus_bin,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            health = _wait_for_targets(f"http://127.0.0.1:{prometheus_port}", 3, timeout=60)
        finally:
            child.terminate()
            child.wait(timeout=20)
            log.close()
    assert health["basic"] == ("up", ""), health
    assert health["bearer_tls"] == ("up", ""), health
    assert health["no_credentials"][0] == "down" and "401" in health["no_credentials"][1], health


def _wait_for_targets(prometheus: str, count: int, timeout: float) -> dict[str, tuple[str, str]]:
    """Each job's (health, last error) once every target was scraped at least once."""
    deadline, health = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(prometheus + "/api/v1/targets", timeout=5) as response:
                targets = json.load(response)["data"]["activeTargets"]
        except (OSError, ValueError):
            targets = []
        health = {t["labels"]["job"]: (t["health"], t["lastError"]) for t in targets}
        if len(health) == count and "unknown" not in {state for state, _ in health.values()}:
            return health
        time.sleep(0.5)
    raise AssertionError(f"prometheus did not scrape every target within {timeout} s: {health}")
