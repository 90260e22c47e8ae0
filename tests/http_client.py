"""A plain GET for the tests of the collector's HTTP endpoints."""

from __future__ import annotations

import urllib.error
import urllib.request


def http_get(url: str, timeout: float = 30.0) -> tuple[int, str, str]:
    """Status, Content-Type and body of ``url``; error statuses are answers, not exceptions."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()
