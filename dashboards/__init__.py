"""Dashboards as code: the four Driftline Grafana dashboards and the tools to ship them.

:func:`build` regenerates the committed JSON under ``dashboards/json/``;
:func:`push` uploads it to an existing Grafana through its HTTP API.
"""

from dashboards.generator import build, dashboards, panel_queries, render
from dashboards.grafana import PushError, PushResult, push

__all__ = ["PushError", "PushResult", "build", "dashboards", "panel_queries", "push", "render"]
