"""Champion and challenger: which live version of a model the others are compared with.

The configured ``champion`` version when it is live, otherwise the oldest
live version by its number: versions compare part by part, digits as numbers
(``"9" < "10"``, ``"v1.9" < "v1.10"``), so the order never depends on which
version's events happened to arrive first.

>>> assign_roles({"4", "3"}, None)
{'3': 'champion', '4': 'challenger'}
>>> assign_roles({"4", "3"}, "4")
{'3': 'challenger', '4': 'champion'}
"""

from __future__ import annotations

import re
from collections.abc import Iterable

CHAMPION, CHALLENGER = "champion", "challenger"
ROLES = (CHAMPION, CHALLENGER)


def version_key(version: str) -> tuple[tuple[int, int, str], ...]:
    """Sort key of a version string: digit runs compare as numbers, other runs as text."""
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.findall(r"\d+|\D+", version)
    )


def assign_roles(versions: Iterable[str], champion: str | None) -> dict[str, str]:
    """The role of each live version (in version order): one champion, the rest challengers."""
    ordered = sorted(versions, key=version_key)
    if not ordered:
        return {}
    chosen = champion if champion in ordered else ordered[0]
    return {version: CHAMPION if version == chosen else CHALLENGER for version in ordered}
