"""Optional authentication of the HTTP endpoints: HTTP basic or a bearer token.

The expected credential is read once at start from the configuration, a file
or an environment variable (never logged), and compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import os
from pathlib import Path

from pydantic import SecretStr

from collector.config import HttpAuthConfig
from collector.errors import ConfigError


class Authenticator:
    """Decides whether an ``Authorization`` header carries the configured credential."""

    def __init__(self, mode: str, secret: bytes = b"") -> None:
        self.mode = mode
        self._secret = secret

    @classmethod
    def from_config(cls, auth: HttpAuthConfig) -> Authenticator:
        if auth.mode == "basic":
            password = read_secret(auth.password, auth.password_file, auth.password_env, "password")
            return cls("basic", f"{auth.username}:{password}".encode())
        if auth.mode == "bearer":
            return cls("bearer", read_secret(auth.token, auth.token_file, auth.token_env, "token").encode())
        return cls("none")

    @property
    def enabled(self) -> bool:
        return self.mode != "none"

    @property
    def challenge(self) -> str:
        """The ``WWW-Authenticate`` value sent with a 401."""
        return f'{self.mode.capitalize()} realm="driftline"'

    def allows(self, header: str | None) -> bool:
        if not self.enabled:
            return True
        scheme, _, credentials = (header or "").strip().partition(" ")
        if scheme.lower() != self.mode:
            return False
        given = credentials.strip().encode()
        if self.mode == "basic":
            try:
                given = base64.b64decode(given, validate=True)
            except (binascii.Error, ValueError):
                return False
        return hmac.compare_digest(given, self._secret)


def read_secret(value: SecretStr | None, file: Path | None, env: str | None, what: str) -> str:
    """The secret from exactly one of its sources; a clear error naming the source, never the value."""
    if value is not None:
        secret = value.get_secret_value()
    elif file is not None:
        try:
            secret = file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"http.auth.{what}_file: cannot read {file}: {exc.strerror}") from exc
    else:
        secret = os.environ.get(env or "", "")
        if not secret:
            raise ConfigError(f"http.auth.{what}_env: the environment variable {env} is not set or empty")
    if not secret:
        raise ConfigError(f"http.auth: the {what} is empty")
    return secret


def exposure_warning(host: str, auth_mode: str) -> str | None:
    """The warning to print when the endpoints listen beyond loopback without authentication."""
    if auth_mode != "none" or _is_loopback(host):
        return None
    return (
        f"http.host {host or '(all interfaces)'} listens beyond loopback WITHOUT authentication: "
        "anyone who can reach it reads /metrics, /api/ and /reports/. Set http.auth (and http.tls), "
        "or bind 127.0.0.1 behind a reverse proxy"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
