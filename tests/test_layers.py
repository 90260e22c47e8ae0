"""Layers point down: the collector uses detectors and exporters, never the reverse.

Every import statement of every module in a lower layer is read with ``ast``
(including imports under ``if TYPE_CHECKING:`` and inside functions), so an
upward import fails here before it can turn into an import cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN = {
    "detectors": {"collector", "exporters", "dashboards"},
    "exporters": {"collector", "dashboards"},
    "dashboards": {"collector"},
    "sdk/driftline": {"collector", "detectors", "exporters", "dashboards"},
}
"""Package folder -> top-level packages its modules must not import."""


def imported_packages(source: str) -> set[str]:
    """Top-level names of every absolute import in a module's source."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_imported_packages_sees_every_form_of_import() -> None:
    source = (
        "import collector.config\n"
        "from exporters.store import MetricStore\n"
        "from . import sibling\n"
        "if TYPE_CHECKING:\n    from dashboards import build\n"
        "def late():\n    import detectors.base as base\n"
    )
    assert imported_packages(source) == {"collector", "exporters", "dashboards", "detectors"}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_lower_layers_never_import_upward(package: str) -> None:
    modules = sorted((ROOT / package).rglob("*.py"))
    assert modules, f"no modules under {package}"
    upward = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in modules
        for name in imported_packages(path.read_text(encoding="utf-8")) & FORBIDDEN[package]
    }
    assert not upward, sorted(upward)
