"""Secrets in the configuration are never printed, logged or echoed in an error.

Every failing-configuration case below carries the same secret; the error
message, the CLI's output and the log records of each are searched for it.
"""

from __future__ import annotations

import base64
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from collector.cli import main
from collector.config import Config, load_config, parse_config
from collector.errors import ConfigError
from collector.kafka_wiring import security_options
from exporters.secrets import secret_fields

SECRET = "SECRET-TOKEN-123"
BEARER = f"Bearer {SECRET}"

# (case name, YAML text, a fragment the error must name)
FAILING_CONFIGS = [
    (
        "object-level validator echoes the otlp mapping",
        f"otlp:\n  tracing: true\n  headers:\n    Authorization: '{BEARER}'\n",
        "tracing: true needs otlp.endpoint",
    ),
    (
        "unknown key beside the headers",
        f"otlp:\n  endpoint: http://127.0.0.1:4318\n  headers: {{Authorization: '{BEARER}'}}\n"
        "  bogus: 1\n",
        "otlp.bogus",
    ),
    (
        "headers given as a string",
        f"otlp:\n  endpoint: http://127.0.0.1:4318\n  headers: 'Authorization: {BEARER}'\n",
        "otlp.headers",
    ),
    (
        "a header value of the wrong type",
        f"otlp:\n  endpoint: http://127.0.0.1:4318\n  headers: {{Authorization: ['{BEARER}']}}\n",
        "otlp.headers.Authorization",
    ),
    (
        "a misspelled password key",
        f"kafka:\n  security_protocol: SASL_PLAINTEXT\n  sasl_plain_username: u\n"
        f"  sasl_password: {SECRET}\n",
        "kafka.sasl_password",
    ),
    (
        "a password of the wrong type",
        f"kafka:\n  security_protocol: SASL_PLAINTEXT\n  sasl_plain_username: u\n"
        f"  sasl_plain_password: [{SECRET}]\n",
        "kafka.sasl_plain_password",
    ),
    (
        "SASL without a user name",
        f"kafka:\n  security_protocol: SASL_SSL\n  sasl_plain_password: {SECRET}\n",
        "sasl_plain_username",
    ),
    (
        "a password without SASL",
        f"kafka:\n  sasl_plain_username: u\n  sasl_plain_password: {SECRET}\n",
        "SASL_PLAINTEXT or SASL_SSL",
    ),
    (
        "a secret reference with an unknown source",
        f"kafka:\n  security_protocol: SASL_PLAINTEXT\n  sasl_plain_username: u\n"
        f"  sasl_plain_password: {{vault: {SECRET}}}\n",
        "env or file",
    ),
    (
        "a YAML syntax error on the secret's line",
        f"otlp:\n  headers:\n    Authorization: \"{BEARER}\n  endpoint: x\n",
        "not valid YAML",
    ),
    (
        "an HTTP bearer token beside a password",
        f"http:\n  auth:\n    mode: bearer\n    token: {SECRET}\n    password: {SECRET}\n",
        "mode bearer needs one of token",
    ),
    (
        "an HTTP token of the wrong type",
        f"http:\n  auth:\n    mode: bearer\n    token: [{SECRET}]\n",
        "http.auth.token",
    ),
    (
        "another model's bad key after a secret",
        f"otlp:\n  endpoint: http://127.0.0.1:4318\n  headers: {{Authorization: '{BEARER}'}}\n"
        "defaults:\n  drift:\n    alpha: 2\n",
        "defaults.drift.alpha",
    ),
]
CASE_IDS = [case[0] for case in FAILING_CONFIGS]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "driftline.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("case", "text", "named"), FAILING_CONFIGS, ids=CASE_IDS)
def test_no_failing_config_echoes_the_secret(
    tmp_path: Path, case: str, text: str, named: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, text))
    message = str(caught.value)
    assert named in message, message
    assert SECRET not in message, f"{case}: {message}"
    assert SECRET not in repr(caught.value.__cause__ or ""), case


@pytest.mark.parametrize(("case", "text", "named"), FAILING_CONFIGS, ids=CASE_IDS)
def test_the_cli_prints_and_logs_no_secret_for_a_failing_config(
    tmp_path: Path,
    case: str,
    text: str,
    named: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = _write(tmp_path, text)
    with caplog.at_level(logging.DEBUG):
        assert main(["-v", "collect", "--config", str(path)]) == 2
        assert main(["-v", "replay", str(path), "--config", str(path)]) == 2
    out, err = capsys.readouterr()
    assert named.split(".")[0] in err
    assert SECRET not in out + err, case
    assert all(SECRET not in record.getMessage() for record in caplog.records), case


def test_the_installed_cli_exits_with_one_clean_error(tmp_path: Path) -> None:
    path = _write(tmp_path, FAILING_CONFIGS[0][1])
    result = subprocess.run(
        [sys.executable, "-m", "collector.cli", "-v", "collect", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "tracing: true needs otlp.endpoint" in result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_a_valid_config_never_shows_its_secrets(tmp_path: Path) -> None:
    config = parse_config(
        {
            "otlp": {"endpoint": "http://127.0.0.1:4318", "headers": {"Authorization": BEARER}},
            "kafka": {
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_plain_username": "alice",
                "sasl_plain_password": SECRET,
            },
        }
    )
    for text in (repr(config), str(config), config.model_dump_json()):
        assert SECRET not in text
    assert config.otlp.headers["Authorization"].get_secret_value() == BEARER
    assert config.kafka.sasl_plain_password is not None
    assert config.kafka.sasl_plain_password.get_secret_value() == SECRET


def test_a_secret_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLINE_TEST_OTLP_AUTH", BEARER)
    config = parse_config(
        {"otlp": {"headers": {"Authorization": {"env": "DRIFTLINE_TEST_OTLP_AUTH"}}}}
    )
    assert config.otlp.headers["Authorization"].get_secret_value() == BEARER


def test_a_missing_environment_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRIFTLINE_TEST_UNSET", raising=False)
    with pytest.raises(ConfigError, match="environment variable DRIFTLINE_TEST_UNSET is not set"):
        parse_config({"otlp": {"headers": {"Authorization": {"env": "DRIFTLINE_TEST_UNSET"}}}})


def test_a_secret_file_is_read_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "kafka").write_text(f"{SECRET}\n", encoding="utf-8")
    path = _write(
        tmp_path,
        yaml.safe_dump(
            {
                "kafka": {
                    "security_protocol": "SASL_PLAINTEXT",
                    "sasl_mechanism": "SCRAM-SHA-512",
                    "sasl_plain_username": "alice",
                    "sasl_plain_password": {"file": "secrets/kafka"},
                }
            }
        ),
    )
    config = load_config(path)
    assert config.kafka.sasl_plain_password is not None
    assert config.kafka.sasl_plain_password.get_secret_value() == SECRET  # newline stripped


def test_a_missing_or_empty_secret_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError, match=f"cannot read the secret file {missing}"):
        parse_config({"otlp": {"headers": {"Authorization": {"file": str(missing)}}}})
    empty = tmp_path / "empty"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=f"the secret file {empty} is empty"):
        parse_config({"otlp": {"headers": {"Authorization": {"file": str(empty)}}}})


def test_kafka_security_keys_are_accepted_and_become_client_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTLINE_TEST_KEY_PASSWORD", "key-Pa55")
    for name in ("ca.pem", "client.pem", "client.key"):
        (tmp_path / name).write_text("-----BEGIN-----\n", encoding="utf-8")
    path = _write(
        tmp_path,
        yaml.safe_dump(
            {
                "kafka": {
                    "security_protocol": "SASL_SSL",
                    "sasl_mechanism": "SCRAM-SHA-256",
                    "sasl_plain_username": "alice",
                    "sasl_plain_password": SECRET,
                    "ssl_cafile": "ca.pem",
                    "ssl_certfile": "client.pem",
                    "ssl_keyfile": "client.key",
                    "ssl_password": {"env": "DRIFTLINE_TEST_KEY_PASSWORD"},
                }
            }
        ),
    )
    options = security_options(load_config(path).kafka)
    assert options == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "alice",
        "sasl_plain_password": SECRET,
        "ssl_cafile": str(tmp_path / "ca.pem"),
        "ssl_certfile": str(tmp_path / "client.pem"),
        "ssl_keyfile": str(tmp_path / "client.key"),
        "ssl_password": "key-Pa55",
    }


def test_plaintext_is_the_default_and_adds_no_options() -> None:
    assert security_options(parse_config({}).kafka) == {"security_protocol": "PLAINTEXT"}


def test_a_missing_tls_file_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "kafka:\n  security_protocol: SSL\n  ssl_cafile: missing-ca.pem\n")
    with pytest.raises(ConfigError, match=r"kafka.ssl_cafile: no such file .*missing-ca.pem"):
        load_config(path)


def test_tls_files_without_tls_are_refused() -> None:
    with pytest.raises(ConfigError, match="ssl_cafile needs security_protocol SSL or SASL_SSL"):
        parse_config({"kafka": {"ssl_cafile": "/etc/ssl/ca.pem"}})
    with pytest.raises(ConfigError, match="ssl_password needs security_protocol SSL or SASL_SSL"):
        parse_config({"kafka": {"ssl_password": SECRET}})


def test_the_secret_locations_are_found_in_the_model() -> None:
    assert secret_fields(Config) == {
        ("kafka", "sasl_plain_password"),
        ("kafka", "ssl_password"),
        ("otlp", "headers"),
        ("http", "auth", "password"),
        ("http", "auth", "token"),
    }


def test_values_outside_secrets_are_still_echoed_in_errors() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"defaults": {"drift": {"alpha": 2}}, "kafka": {"auto_offset_reset": "newest"}})
    message = str(caught.value)
    assert "defaults.drift.alpha: Input should be less than 1 (got 2)" in message
    assert "kafka.auto_offset_reset" in message and "(got 'newest')" in message


def test_http_auth_secrets_take_the_same_references(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from collector.http_auth import Authenticator

    monkeypatch.setenv("DRIFTLINE_TEST_HTTP_TOKEN", SECRET)
    token = {"env": "DRIFTLINE_TEST_HTTP_TOKEN"}
    bearer = parse_config({"http": {"auth": {"mode": "bearer", "token": token}}})
    assert Authenticator.from_config(bearer.http.auth).allows(f"Bearer {SECRET}")
    (tmp_path / "http-password").write_text("pw-123\n", encoding="utf-8")
    path = _write(
        tmp_path,
        "http:\n  auth:\n    mode: basic\n    username: prom\n    password: {file: http-password}\n",
    )
    basic = Authenticator.from_config(load_config(path).http.auth)
    assert basic.allows("Basic " + base64.b64encode(b"prom:pw-123").decode())
    assert not basic.allows("Basic " + base64.b64encode(b"prom:wrong").decode())
