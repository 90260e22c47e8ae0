"""``--windows-out``: the window rows written as JSON lines, CSV or Parquet, chosen by extension."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.parquet as pq

from collector.errors import DriftlineError
from collector.window_history import COLUMN_TYPES, COLUMNS, TEXT, Row

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}
_ARROW_TYPES = {"string": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}


def table_format(path: Path) -> str:
    """The format named by the file's extension, or a clear error listing the known ones."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(FORMATS))
        raise DriftlineError(f"{path}: unknown table format {path.suffix!r}; use one of {known}")
    return fmt


class WindowTableWriter:
    """Writes rows as they come (JSON lines, CSV) or all at :meth:`close` (Parquet)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.format = table_format(path)
        self.rows_written = 0
        self._buffer: list[Row] = []
        self._file: IO[str] | None = None
        self._csv: csv.DictWriter[str] | None = None
        if self.format != "parquet":
            try:
                self._file = path.open("w", encoding="utf-8", newline="")
            except OSError as exc:
                raise DriftlineError(f"{path}: cannot write the windows table: {exc.strerror}") from exc
        if self.format == "csv":
            assert self._file is not None
            self._csv = csv.DictWriter(self._file, fieldnames=COLUMNS)
            self._csv.writeheader()

    def __call__(self, rows: list[Row]) -> None:
        self.rows_written += len(rows)
        if self._csv is not None:
            self._csv.writerows(rows)
        elif self._file is not None:
            for row in rows:
                self._file.write(json.dumps(row, allow_nan=False) + "\n")
        else:
            self._buffer.extend(rows)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        elif self.format == "parquet":
            schema = pa.schema([(name, _ARROW_TYPES[kind]) for name, kind in COLUMN_TYPES.items()])
            table = pa.Table.from_pylist(self._buffer, schema=schema)
            pq.write_table(table, self.path)
            self._buffer = []


def read_window_table(path: Path) -> list[Row]:
    """Read a table written by :class:`WindowTableWriter` back as rows with typed values."""
    fmt = table_format(path)
    if fmt == "parquet":
        rows: list[Row] = pq.read_table(path).to_pylist()
        return rows
    if fmt == "jsonl":
        with path.open(encoding="utf-8") as lines:
            return [json.loads(line) for line in lines if line.strip()]
    with path.open(encoding="utf-8", newline="") as text:
        return [_typed(row) for row in csv.DictReader(text)]


def _typed(row: dict[str, str]) -> Row:
    out: Row = {}
    for name, kind in COLUMN_TYPES.items():
        value = row[name]
        if kind == "string":
            out[name] = value if value != "" or name in TEXT else None
        elif value == "":
            out[name] = None
        elif kind == "int":
            out[name] = int(value)
        elif kind == "float":
            out[name] = float(value)
        else:
            out[name] = value == "True"
    return out
