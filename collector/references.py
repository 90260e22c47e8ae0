"""References: the data a model version's windows are compared with.

A reference is either registered (a CSV or Parquet file named in the
configuration for a model version) or automatic (the first N predictions of
the version, with an id ``auto-`` and the first 16 hex digits of its
:func:`content_id`). In a reference file, the columns ``prediction``,
``label`` and ``proba_<class>`` are the model's outputs and ground truth;
every other column is a feature.

A registered reference's id is ``ref-`` and the first 16 hex digits of
:func:`content_id` of its columns as loaded, so the same data gives the same
id whether it came as CSV or Parquet, and any changed value a new one.

A Parquet reference may hold embeddings: a list column ``embedding_<name>``
of equal-length vectors. Its vectors enter the id (as float64) and a seeded
sample of at most 1,000 of them, as float32, is the name's reference.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import cast

import numpy as np
import numpy.typing as npt
import pandas as pd
from driftline.schema import MAX_EMBEDDING_DIMS

from collector.columns import ColumnSet
from collector.config import ReferenceFile
from collector.embedding_buffer import MAX_ROWS, Vectors
from collector.errors import ReferenceDataError
from collector.tables import Value, build_table, infer_kind
from collector.windows import Window
from detectors.base import FeatureKind, FeatureTable

OUTPUT_COLUMNS = ("prediction",)
LABEL_COLUMN = "label"
EMBEDDING_PREFIX = "embedding_"


@dataclass(frozen=True)
class Reference:
    """Reference features and outputs of one model version, with where they came from."""

    reference_id: str
    data_version: str
    automatic: bool
    features: FeatureTable
    outputs: FeatureTable
    labels: tuple[Value, ...] | None = None
    embeddings: Mapping[str, Vectors] = field(default_factory=dict)
    """A float32 sample of each embedding's vectors (automatic references; at most 1,000 rows a name)."""
    event_ids: tuple[str, ...] | None = None
    """The ids of an automatic reference's predictions, one per row in row order, so labels joined
    later can be attached to its rows (None for a registered file, whose labels come with it)."""

    @property
    def n_rows(self) -> int:
        return self.features.n_rows


def output_kinds(
    outputs: ColumnSet | Mapping[str, Sequence[Value]], task: str | None
) -> dict[str, FeatureKind]:
    """Kinds of the output columns: class probabilities are numbers; the prediction follows the task."""
    columns: Mapping[str, Sequence[Value]] = outputs.columns if isinstance(outputs, ColumnSet) else outputs
    kinds: dict[str, FeatureKind] = {}
    for name, values in columns.items():
        if name.startswith("proba_") or task == "regression":
            kinds[name] = "numerical"
        elif task is not None or any(n.startswith("proba_") for n in columns):
            kinds[name] = "categorical"
        else:
            kinds[name] = infer_kind(values)
    return kinds


def automatic_reference(
    window: Window, overrides: Mapping[str, FeatureKind], task: str | None, data_version: str
) -> Reference:
    """The first predictions of a version, taken as its reference."""
    kinds = window.features.infer_kinds(overrides)
    features = window.features.table(kinds)
    outputs = window.outputs
    columns = {**window.features.columns, **outputs.columns}
    return Reference(
        reference_id=f"auto-{content_id(columns)[:16]}",
        data_version=data_version,
        automatic=True,
        features=features,
        outputs=outputs.table(output_kinds(outputs, task)),
        embeddings=window.embeddings.arrays(),
        event_ids=tuple(window.event_ids()),
    )


def load_reference(
    reference: ReferenceFile, overrides: Mapping[str, FeatureKind], task: str | None
) -> Reference:
    """Read a registered reference file (CSV or Parquet)."""
    frame = _read_frame(reference.path)
    if frame.empty:
        raise ReferenceDataError(f"{reference.path}: the reference has no rows")
    vectors = {
        str(name): _vectors(reference.path, str(name), frame[name].tolist())
        for name in frame.columns
        if str(name).startswith(EMBEDDING_PREFIX)
    }
    frame = frame.drop(columns=list(vectors))
    columns = {name: [_plain(v) for v in frame[name].tolist()] for name in frame.columns}
    columns_with_labels: dict[str, list[Value]] = dict(columns)
    for name, matrix in vectors.items():  # in the id as float64 bytes, hashed as text
        columns_with_labels[name] = [row.tobytes().hex() for row in matrix]
    labels = tuple(columns.pop(LABEL_COLUMN)) if LABEL_COLUMN in columns else None
    outputs = {name: values for name, values in columns.items() if _is_output(name)}
    features = {name: values for name, values in columns.items() if not _is_output(name)}
    if not features:
        raise ReferenceDataError(f"{reference.path}: no feature columns")
    kinds = {name: overrides.get(name) or infer_kind(values) for name, values in features.items()}
    return Reference(
        reference_id=f"ref-{content_id(columns_with_labels)[:16]}",
        data_version=reference.data_version,
        automatic=False,
        features=build_table(features, kinds, len(frame)),
        outputs=build_table(outputs, output_kinds(outputs, task), len(frame)),
        labels=labels,
        embeddings={
            name.removeprefix(EMBEDDING_PREFIX): _sample(matrix).astype(np.float32)
            for name, matrix in vectors.items()
        },
    )


def _vectors(path: Path, column: str, values: list[object]) -> npt.NDArray[np.float64]:
    """An ``embedding_<name>`` column as a matrix: a vector in every row, all of one length, finite."""
    rows = []
    for index, value in enumerate(values):
        if isinstance(value, str | bytes) or not hasattr(value, "__len__"):
            raise ReferenceDataError(
                f"{path}: {column} row {index}: not a list of numbers (embeddings need a Parquet list column)"
            )
        try:
            rows.append(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise ReferenceDataError(f"{path}: {column} row {index}: not a list of numbers: {exc}") from None
    shapes = {row.shape for row in rows}
    shape = shapes.pop() if len(shapes) == 1 else ()
    if len(shape) != 1 or not 1 <= shape[0] <= MAX_EMBEDDING_DIMS:
        raise ReferenceDataError(
            f"{path}: {column}: every row must be a vector of one length, 1-{MAX_EMBEDDING_DIMS} numbers"
        )
    matrix = np.vstack(rows)
    if not np.isfinite(matrix).all():
        raise ReferenceDataError(f"{path}: {column}: NaN or infinity in a vector")
    return matrix


def _sample(matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """At most ``MAX_ROWS`` rows, a seeded sample kept in file order."""
    if len(matrix) <= MAX_ROWS:
        return matrix
    return matrix[np.sort(np.random.default_rng(0).choice(len(matrix), size=MAX_ROWS, replace=False))]


def _is_output(name: str) -> bool:
    return name in OUTPUT_COLUMNS or name.startswith("proba_")


def _read_frame(path: Path) -> pd.DataFrame:
    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            return pd.read_parquet(path)
        if path.suffix.lower() == ".csv":  # exact decimal to float64, as the file was written
            return pd.read_csv(path, float_precision="round_trip")
    except (OSError, ValueError) as exc:
        raise ReferenceDataError(f"{path}: cannot read the reference: {exc}") from exc
    raise ReferenceDataError(f"{path}: a reference must be .csv or .parquet")


def _plain(value: object) -> Value:
    """Pandas/NumPy scalars to plain Python values, NaN to missing."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def content_id(columns: Mapping[str, Sequence[Value]]) -> str:
    """SHA-256 (hex) of a table's values, whatever file format they were read from.

    Columns are taken in name order; numbers (not booleans) are compared as
    float64, so ``1`` and ``1.0`` are the same value while ``"1"`` is not;
    a missing value is ``None``. The one hashing scheme for reference ids.
    The bytes hashed per column: its JSON name and ``\x00``, each value's
    :func:`_canonical` form followed by ``\x1f``, then ``\x1e``. A column's
    values are laid out at once and hashed in one update (one update and one
    ``float.hex`` per value cost a third of a second under the profiler for an
    automatic reference of 5,000 rows and 20 features).
    """
    digest = hashlib.sha256()
    for name in sorted(columns):
        digest.update(json.dumps(name).encode() + b"\x00")
        digest.update(_column_bytes(columns[name]))
        digest.update(b"\x1e")
    return digest.hexdigest()


_NUMBERS = frozenset({float, int})
_EXPONENTS = np.array([f"p{e - 1023:+d}\x1f".encode() for e in range(2048)], dtype="S7")
_EXPONENTS = _EXPONENTS.view(np.uint8).reshape(2048, 7)
"""The ``p<exponent>`` ending of ``float.hex`` by biased exponent, and the value's separator, as
bytes padded with NUL."""


def _column_bytes(values: Sequence[Value]) -> bytes:
    """Each value's :func:`_canonical` form followed by ``\x1f``."""
    types = set(map(type, values))
    if values and types <= _NUMBERS:
        return _float_hexes(np.array(values, dtype=np.float64))
    if types == {str}:  # a categorical column without missing values
        texts = map(encode_basestring_ascii, cast("Sequence[str]", values))
        return ("s" + "\x1fs".join(texts) + "\x1f").encode()
    return "".join([_canonical(value) + "\x1f" for value in values]).encode()


def _float_hexes(x: npt.NDArray[np.float64]) -> bytes:
    """``f`` and ``float.hex`` of each number, each followed by ``\x1f``, by array operations.

    A normal number's ``float.hex`` is its sign, ``0x1.``, the 13 hex digits of its
    mantissa (the last 13 of its 64 bits in hex) and ``p`` with its exponent; zeros,
    subnormals, infinities and NaN take ``float.hex`` itself. Each form is laid out in a
    row of 26 bytes, NUL where a positive number has no sign and after a short exponent;
    the NULs (no form holds one) are then dropped.
    """
    bits = x.view(np.uint64)
    exponent = ((bits >> np.uint64(52)) & np.uint64(0x7FF)).astype(np.intp)
    digits = np.frombuffer(bits.astype(">u8").tobytes().hex().encode(), dtype=np.uint8).reshape(len(x), 16)
    laid_out = np.zeros((len(x), 26), dtype=np.uint8)
    laid_out[:, 0] = ord("f")
    laid_out[:, 1] = np.where(np.signbit(x), ord("-"), 0)
    laid_out[:, 2:6] = np.frombuffer(b"0x1.", dtype=np.uint8)
    laid_out[:, 6:19] = digits[:, 3:]
    laid_out[:, 19:] = _EXPONENTS[exponent]
    for index in np.flatnonzero((exponent == 0) | (exponent == 0x7FF)).tolist():
        text = np.frombuffer(b"f" + float.hex(float(x[index])).encode() + b"\x1f", dtype=np.uint8)
        laid_out[index] = 0
        laid_out[index, : len(text)] = text
    return laid_out[laid_out != 0].tobytes()


def _canonical(value: Value) -> str:
    if value is None:
        return "n"
    if isinstance(value, bool):
        return "b1" if value else "b0"
    if isinstance(value, int | float):
        return "f" + float(value).hex()
    return "s" + encode_basestring_ascii(value)  # what json.dumps(value) gives a str
