"""A folder of registered references: ``driftline reference add/list/show``.

Layout: ``<registry>/index.json`` lists the entries; each file is copied to
``<registry>/<model>/<model_version>/<sha256 prefix>/<file name>`` so the
registry is self-contained. An entry is one (model, model_version,
data_version); its ``reference_id`` is the hash of the data as loaded
(:func:`collector.references.content_id`). Adding data for an entry that
exists needs ``replace`` and reports what it replaced; adding the same data
again changes nothing. The collector uses the newest entry of a model version
unless the configuration names a reference file for it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from driftline.schema import MAX_VERSION_CHARS, MODEL_PATTERN

from collector.config import ReferenceFile
from collector.errors import ReferenceDataError
from collector.references import load_reference

INDEX = "index.json"


@dataclass(frozen=True)
class RegistryEntry:
    """One registered reference file."""

    model: str
    model_version: str
    data_version: str
    path: str
    """Relative to the registry folder."""
    sha256: str
    rows: int
    added_at: float
    reference_id: str = ""
    """The data's id (empty in indexes written before ids were content hashes)."""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.model, self.model_version, self.data_version)


@dataclass(frozen=True)
class Added:
    """What :meth:`ReferenceRegistry.add` did."""

    entry: RegistryEntry
    replaced: RegistryEntry | None = None
    unchanged: bool = False
    """The same data was already registered under this entry: nothing was written."""


class ReferenceRegistry:
    """Registers reference files per (model, model_version, data_version) and finds them again."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def entries(self) -> list[RegistryEntry]:
        """Every entry, oldest first."""
        index = self.root / INDEX
        if not index.exists():
            return []
        try:
            raw = json.loads(index.read_text(encoding="utf-8"))
            return [RegistryEntry(**item) for item in raw["entries"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ReferenceDataError(f"{index}: not a Driftline reference index: {exc}") from exc

    def add(
        self,
        source: Path,
        model: str,
        model_version: str,
        data_version: str | None = None,
        *,
        replace: bool = False,
    ) -> Added:
        """Validate ``source`` (it must load as a reference), copy it in, and index it.

        Without ``data_version`` the version's newest entry's data version is
        meant (``unknown`` for a first entry), never silently a new one.
        Registering different data for an existing entry raises unless
        ``replace``.
        """
        _check_name("model", model, bool(MODEL_PATTERN.fullmatch(model)))
        _check_name("model_version", model_version, 1 <= len(model_version) <= MAX_VERSION_CHARS)
        if data_version is None:
            newest = self.latest(model, model_version)
            data_version = newest.data_version if newest is not None else "unknown"
        _check_name("data_version", data_version, 1 <= len(data_version) <= MAX_VERSION_CHARS)
        reference = load_reference(ReferenceFile(path=source, data_version=data_version), {}, None)
        entries = self.entries()
        existing = next((e for e in entries if e.key == (model, model_version, data_version)), None)
        if existing is not None and existing.reference_id == reference.reference_id:
            return Added(existing, unchanged=True)
        if existing is not None and not replace:
            raise ReferenceDataError(
                f"{model}/{model_version} data version {data_version} is already registered: "
                f"{_describe(existing)}. Pass --replace to replace it, or give another --data-version"
            )
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
        relative = Path(model) / model_version / digest[:16] / source.name
        (self.root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, self.root / relative)
        entry = RegistryEntry(
            model,
            model_version,
            data_version,
            relative.as_posix(),
            digest,
            reference.n_rows,
            time.time(),
            reference.reference_id,
        )
        self._write([e for e in entries if e.key != entry.key and e.path != entry.path] + [entry])
        return Added(entry, replaced=existing)

    def latest(self, model: str, model_version: str) -> RegistryEntry | None:
        """The newest entry of a model version."""
        matching = [e for e in self.entries() if (e.model, e.model_version) == (model, model_version)]
        return max(matching, key=lambda e: e.added_at) if matching else None

    def reference_files(self) -> dict[tuple[str, str], ReferenceFile]:
        """The newest file of every registered model version."""
        newest: dict[tuple[str, str], RegistryEntry] = {}
        for entry in self.entries():
            key = (entry.model, entry.model_version)
            if key not in newest or entry.added_at >= newest[key].added_at:
                newest[key] = entry
        return {
            key: ReferenceFile(path=self.root / e.path, data_version=e.data_version)
            for key, e in newest.items()
        }

    def _write(self, entries: list[RegistryEntry]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"entries": [asdict(e) for e in entries]}, indent=2, sort_keys=True)
        temporary = self.root / (INDEX + ".tmp")
        temporary.write_text(body + "\n", encoding="utf-8")
        temporary.replace(self.root / INDEX)


def _describe(entry: RegistryEntry) -> str:
    added = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(entry.added_at))
    return f"{entry.reference_id or entry.sha256[:12]} ({entry.rows} rows, {entry.path}, added {added})"


def _check_name(field: str, value: str, valid: bool) -> None:
    if not valid:
        raise ReferenceDataError(f"invalid {field} {value!r}")

