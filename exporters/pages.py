"""Driftline's own HTML, rendered through Jinja2 with autoescaping on.

No value from an event reaches a page except through a template variable, so
it is escaped for HTML by construction; links are built here with each path
segment percent-encoded, so a model version holding ``/``, ``?`` or ``#`` stays
one segment of its own link.
"""

from __future__ import annotations

from functools import cache
from urllib.parse import quote

import jinja2


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("exporters", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def render(template: str, **values: object) -> str:
    """One template of ``exporters/templates`` with ``values`` (every one escaped where it lands)."""
    return _environment().get_template(template).render(**values)


def report_href(model: str, model_version: str, window: int | None = None) -> str:
    """The link to a version's report of ``window`` (None: the latest), each segment percent-encoded.

    A lone surrogate (which the schema rejects) is encoded as its escape rather
    than failing the whole index page.
    """
    segments = (quote(part, safe="", errors="backslashreplace") for part in (model, model_version))
    return "/reports/{}/{}/{}".format(*segments, "latest" if window is None else window)
