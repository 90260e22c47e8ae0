"""Compact, append-only columns of event values, for windows and automatic references in collection.

A :class:`Column` keeps numbers as float64 (``array('d')``) and strings and
bools as small-int codes into the distinct values seen, instead of a Python
object per value: 8 or 2 bytes an event, not about 30. A value that fits no
typed form (a string in a column of numbers, a number in one of strings, an
int beyond 2**53, any other type) turns the column into a plain list for the
rest of its life, so every value still reads back as it was appended.

:class:`Columns` stores rows (name -> value mappings, or ``None``) column by
column and remembers each row's keys in their order, so :meth:`Columns.rows`
gives back exactly the mappings appended. Both build the same
:class:`~detectors.base.FeatureTable` as :func:`~collector.tables.build_table`
over the values as lists.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Hashable, Iterator, Mapping, Sequence
from itertools import accumulate
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt

from collector.tables import Value, as_category, categorical_array, infer_kind, numerical_array
from detectors.base import FeatureKind, FeatureTable

MAX_EXACT_INT = 2**53
"""Larger ints are not all exact as float64: a column meeting one keeps its values as a list."""

_FLOAT, _MISSING, _INT = 0, 1, 2
"""Tags of a number column's rows, kept only once a row is not a float."""

K = TypeVar("K", bound=Hashable)


class Codes(Generic[K]):
    """One small-int code per row for values that repeat (row shapes, event contexts, categories)."""

    __slots__ = ("_index", "codes", "labels")

    def __init__(self) -> None:
        self.labels: list[K] = []
        self._index: dict[K, int] = {}
        self.codes = array("H")

    @classmethod
    def repeated(cls, key: K, rows: int) -> Codes[K]:
        """``rows`` rows of ``key``."""
        codes: Codes[K] = cls()
        codes.append_many(key, rows)
        return codes

    def append(self, key: K) -> None:
        code = self._index.get(key)
        if code is None:
            code = self.code(key)  # before the append: a new code may widen the array
        self.codes.append(code)

    def append_many(self, key: K, count: int) -> None:
        """Append ``key`` ``count`` times (looked up once: a row shape is a long tuple to hash)."""
        if count:
            code = self.code(key)
            self.codes.fromlist([code] * count)

    def extend(self, keys: Sequence[K]) -> None:
        """Append many keys: one C pass when all are known already."""
        codes = list(map(self._index.get, keys))
        if None in codes:
            for key in keys:
                self.append(key)
        else:
            self.codes.fromlist(codes)  # type: ignore[arg-type]

    def code(self, key: K) -> int:
        """The code of ``key``, a new one if it has none yet."""
        code = self._index.get(key)
        if code is None:
            code = self._index[key] = len(self.labels)
            self.labels.append(key)
            if code == 0x10000:
                self.codes = array("I", self.codes)
        return code

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, row: int) -> K:
        return self.labels[self.codes[row]]

    def values(self) -> list[K]:
        labels = self.labels
        return [labels[code] for code in self.codes]


class Column(Sequence[Value]):
    """An append-only sequence of values in the most compact form its values so far allow.

    Empty (only ``None`` so far), numbers (floats, ints up to 2**53 and
    ``None``), codes (strings, bools and ``None``), or a list (anything).
    """

    __slots__ = ("_codes", "_missing", "_numbers", "_tags", "_values")

    def __init__(self, missing: int = 0) -> None:
        self._numbers: array[float] | None = None
        self._tags: bytearray | None = None
        """Per row: float, missing or int; ``None`` while every row is a float."""
        self._codes: Codes[Value] | None = None
        self._values: list[Value] | None = None
        self._missing = missing
        """The rows of an empty column (all ``None``)."""

    def append(self, value: Value) -> None:
        numbers = self._numbers
        if numbers is not None and self._tags is None and type(value) is float:
            numbers.append(value)
        elif self._codes is not None and type(value) is str:
            self._codes.append(value)
        else:
            self._append_other(value)

    def extend(self, values: Sequence[Value]) -> None:
        """Append many values, as :meth:`append` one by one would; in bulk for the usual columns."""
        types = set(map(type, values))
        numbers = self._numbers
        if numbers is not None and (types == _FLOATS or (types == _INTS and _exact_ints(values))):
            tag = _INT if types == _INTS else _FLOAT
            if self._tags is None and tag != _FLOAT:
                self._tags = bytearray(len(numbers))
            if self._tags is not None:
                self._tags += bytes([tag]) * len(values)
            numbers += array("d", values)  # type: ignore[arg-type]  # array.extend iterates in Python terms
        elif self._codes is not None and types <= _CODE_TYPES:
            self._codes.extend(values)
        elif self._values is not None:
            self._values.extend(values)
        elif numbers is None and self._codes is None:
            self._extend_empty(values)
        else:
            for value in values:
                self.append(value)

    def _extend_empty(self, values: Sequence[Value]) -> None:
        """Append to a column without a form yet: the rows up to the first present value are
        missing, that value decides the form (as :meth:`append` would), the rest go in bulk."""
        first = next((row for row, value in enumerate(values) if value is not None), len(values))
        self._missing += first
        if first < len(values):
            self._take_form(values[first])
            self.extend(values[first + 1 :])

    def _append_other(self, value: Value) -> None:
        if self._values is not None:
            self._values.append(value)
        elif self._numbers is not None:
            self._append_number(value)
        elif self._codes is not None:
            self._append_code(value)
        elif value is None:
            self._missing += 1
        else:
            self._take_form(value)

    def _take_form(self, value: Value) -> None:
        """The first present value decides the column's form; the rows before it are missing."""
        rows = self._missing
        if _is_number(value):
            self._numbers = array("d", [math.nan]) * rows
            self._tags = bytearray([_MISSING]) * rows if rows else None
            self._append_number(value)
        elif _is_code(value):
            self._codes = Codes.repeated(None, rows)
            self._codes.append(value)
        else:
            self._values = [None] * rows
            self._values.append(value)

    def _append_number(self, value: Value) -> None:
        assert self._numbers is not None
        if type(value) is float:
            tag, number = _FLOAT, value
        elif value is None:
            tag, number = _MISSING, math.nan
        elif _is_number(value):
            tag, number = _INT, float(value)
        else:
            self._to_list().append(value)
            return
        if self._tags is None and tag != _FLOAT:
            self._tags = bytearray(len(self._numbers))
        if self._tags is not None:
            self._tags.append(tag)
        self._numbers.append(number)

    def _append_code(self, value: Value) -> None:
        assert self._codes is not None
        if _is_code(value):
            self._codes.append(value)
        else:
            self._to_list().append(value)

    def _to_list(self) -> list[Value]:
        """Fall back to a list of the values, for the rest of the column's life."""
        self._values = self.values()
        self._numbers = self._tags = self._codes = None
        return self._values

    def __len__(self) -> int:
        if self._values is not None:
            return len(self._values)
        if self._numbers is not None:
            return len(self._numbers)
        if self._codes is not None:
            return len(self._codes)
        return self._missing

    def __getitem__(self, row: int) -> Value:  # type: ignore[override]
        if self._values is not None:
            return self._values[row]
        if self._numbers is not None:
            tag = _FLOAT if self._tags is None else self._tags[row]
            number = self._numbers[row]
            return number if tag == _FLOAT else None if tag == _MISSING else int(number)
        if self._codes is not None:
            return self._codes[row]
        if not -self._missing <= row < self._missing:
            raise IndexError(row)
        return None

    def __iter__(self) -> Iterator[Value]:
        return iter(self.values())

    def values(self) -> list[Value]:
        """The values as a new list, as appended."""
        if self._values is not None:
            return list(self._values)
        if self._numbers is not None:
            if self._tags is None:
                return list(self._numbers.tolist())
            return [
                number if tag == _FLOAT else None if tag == _MISSING else int(number)
                for number, tag in zip(self._numbers, self._tags, strict=True)
            ]
        if self._codes is not None:
            return self._codes.values()
        return [None] * self._missing

    def kind(self) -> FeatureKind:
        """:func:`~collector.tables.infer_kind` of the values."""
        if self._numbers is not None:
            return "numerical"  # at least one number, else the column would still be empty
        if self._values is not None:
            return infer_kind(self._values)
        return "categorical"

    def numerical(self) -> tuple[np.ndarray, int]:
        """The values as float64 (missing and wrong types NaN) and the count of wrong types."""
        if self._numbers is not None:  # ints and missing values already stored as float64
            return np.array(self._numbers, dtype=np.float64), 0
        return numerical_array(self.values())

    def categorical(self) -> np.ndarray:
        """The values as category strings (object array, ``None`` missing)."""
        if self._codes is not None:
            categories = np.empty(len(self._codes.labels), dtype=object)
            categories[:] = [as_category(label) for label in self._codes.labels]
            return categories[np.array(self._codes.codes, dtype=np.intp)]
        if self._numbers is not None and self._tags is not None and _FLOAT not in self._tags:
            return _whole_number_categories(self._numbers)
        return categorical_array(self.values())


def _whole_number_categories(numbers: array[float]) -> np.ndarray:
    """:func:`~collector.tables.as_category` of a number column's rows when none is a float (ints
    and missing rows, which are NaN): each distinct number's text made once (a classifier's
    predictions, 0 and 1)."""
    distinct, rows = np.unique(np.array(numbers, dtype=np.float64), return_inverse=True)
    texts = np.empty(len(distinct), dtype=object)
    texts[:] = [None if math.isnan(number) else str(int(number)) for number in distinct.tolist()]
    return texts[rows.reshape(-1)]


def _is_number(value: object) -> bool:
    return type(value) is float or (type(value) is int and -MAX_EXACT_INT <= value <= MAX_EXACT_INT)


def _exact_ints(values: Sequence[Value]) -> bool:
    return -MAX_EXACT_INT <= min(values) <= max(values) <= MAX_EXACT_INT  # type: ignore[type-var, operator]


_CODE_TYPES = {str, bool, type(None)}
_FLOATS = frozenset({float})
_INTS = frozenset({int})


def _is_code(value: object) -> bool:
    return type(value) is str or type(value) is bool or value is None


class ColumnSet:
    """Named columns of equal length, read as a feature table."""

    def __init__(self, columns: dict[str, Column], n_rows: int) -> None:
        self.columns = columns
        self.n_rows = n_rows

    def table(self, kinds: Mapping[str, FeatureKind]) -> FeatureTable:
        """What :func:`~collector.tables.build_table` gives over the columns' values."""
        arrays: dict[str, np.ndarray] = {}
        type_errors: dict[str, int] = {}
        for name, kind in kinds.items():
            column = self.columns.get(name)
            if column is None:  # as build_table: a name no row has is missing throughout
                column = Column(missing=self.n_rows)
            if kind == "numerical":
                arrays[name], type_errors[name] = column.numerical()
            else:
                arrays[name], type_errors[name] = column.categorical(), 0
        return FeatureTable(dict(kinds), arrays, self.n_rows, type_errors)

    def infer_kinds(self, overrides: Mapping[str, FeatureKind]) -> dict[str, FeatureKind]:
        return {name: overrides.get(name) or column.kind() for name, column in self.columns.items()}


class Columns(ColumnSet):
    """Rows of name -> value mappings (or ``None``), column by column; a name absent from a row is
    missing there, and each row's keys are kept in order so it reads back as appended."""

    def __init__(self) -> None:
        super().__init__({}, 0)
        self._shapes: Codes[tuple[Any, ...] | None] = Codes()
        self._full_shape: tuple[Any, ...] = ()
        """The names of all columns in order: rows of exactly these fill every column directly."""
        self._full_columns: list[Column] = []

    def append(self, row: Mapping[str, Value] | None) -> None:
        self._shapes.append(None if row is None else tuple(row))
        self._append_partial(row)
        self.n_rows += 1

    def extend(self, rows: list[Mapping[str, Value] | None]) -> None:
        """Append many rows, as :meth:`append` one by one would; column by column when they all
        have every column's name in order (the usual batch), or are all ``None``."""
        shapes = [None if row is None else tuple(row) for row in rows]
        one_shape = bool(rows) and shapes.count(shapes[0]) == len(shapes)
        if one_shape and not self.columns and shapes[0] is not None:
            self._add_columns(shapes[0])  # a window's first rows: its columns in their order, then in bulk
        if not one_shape or shapes[0] not in (None, self._full_shape):
            for row in rows:
                self.append(row)
            return
        self._shapes.append_many(shapes[0], len(rows))
        if shapes[0] is None:
            for column in self._full_columns:
                column.extend([None] * len(rows))
        else:  # every row's values in the columns' order: transposed in C
            by_column = zip(*[row.values() for row in rows], strict=True)  # type: ignore[union-attr]
            for column, values in zip(self._full_columns, by_column, strict=True):
                column.extend(values)
        self.n_rows += len(rows)

    def _append_partial(self, row: Mapping[str, Value] | None) -> None:
        """A row that lacks some columns or brings new ones."""
        if row:
            new = [name for name in row if name not in self.columns]
            if new:
                self._add_columns(new)
            for name, value in row.items():
                self.columns[name].append(value)
        for column in self._full_columns:
            if len(column) == self.n_rows:
                column.append(None)

    def _add_columns(self, names: Sequence[str]) -> None:
        """New columns, missing in the rows so far, after the others (the full shape rebuilt once)."""
        for name in names:
            self.columns[name] = Column(missing=self.n_rows)
        self._full_shape = tuple(self.columns)
        self._full_columns = list(self.columns.values())

    def row_shapes(self) -> tuple[list[tuple[Any, ...] | None], npt.NDArray[np.intp]]:
        """The distinct row shapes (a row's names in order, ``None`` for a ``None`` row) and
        each row's index among them."""
        return list(self._shapes.labels), np.array(self._shapes.codes, dtype=np.intp)

    def rows(self) -> Iterator[dict[str, Value] | None]:
        """The rows as appended."""
        values = {name: column.values() for name, column in self.columns.items()}
        for index, shape in enumerate(self._shapes.values()):
            yield None if shape is None else {name: values[name][index] for name in shape}


class Texts:
    """Append-only strings that rarely repeat (event ids) as one UTF-8 buffer and end offsets:
    the bytes of each string and 8 more, not a Python object each."""

    __slots__ = ("_data", "_ends")

    def __init__(self) -> None:
        self._data = bytearray()
        self._ends = array("Q")

    def extend(self, texts: list[str]) -> None:
        encoded = [text.encode("utf-8", "surrogatepass") for text in texts]  # JSON allows lone surrogates
        self._ends.fromlist(list(accumulate(map(len, encoded), initial=len(self._data)))[1:])
        self._data += b"".join(encoded)

    def __len__(self) -> int:
        return len(self._ends)

    def values(self) -> list[str]:
        data, start, texts = self._data, 0, []
        for end in self._ends:
            texts.append(data[start:end].decode("utf-8", "surrogatepass"))
            start = end
        return texts
