"""Compact window columns (collector.columns) against the list-of-objects columns they replace.

The oracle is the former ``ColumnBuffer``: a Python list per column, padded
with ``None`` where a row lacks the name, read with ``build_table`` and
``infer_kind``. Every mixed row (missing names, ints, bools, strings among
numbers, NaN, infinity, ints beyond 2**53, ``None``) must give the same table,
the same type errors, the same kinds, and read back exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from driftline.schema import Prediction, decode, encode
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.columns import Codes, Column, Columns, Texts
from collector.references import automatic_reference, content_id
from collector.tables import Value, build_table, infer_kind
from collector.windows import PENDING, Window
from detectors.base import FeatureKind, FeatureTable
from detectors.proxy_metrics import positive_probability, probability_matrix

SETTINGS = settings(max_examples=300, derandomize=True, deadline=None)
NAMES = ["a", "b", "c", "prediction"]

values = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.booleans(),
    st.sampled_from(["x", "y", "1", "", "True", "\ud800"]),
)
numbers = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5))
row = st.dictionaries(st.sampled_from(NAMES), values, max_size=4)
typed_row = st.dictionaries(st.sampled_from(NAMES), numbers, max_size=4)
full_row = st.fixed_dictionaries({"a": numbers, "b": st.sampled_from(["x", "y", None]), "c": values})
kinds = st.dictionaries(
    st.sampled_from([*NAMES, "absent"]), st.sampled_from(["numerical", "categorical"]), max_size=5
)


class ListColumns:
    """The former ColumnBuffer: per-name lists, a name absent from a row is None there."""

    def __init__(self) -> None:
        self.columns: dict[str, list[Value]] = {}
        self.n_rows = 0

    def append(self, row: Mapping[str, Value]) -> None:
        for name, value in row.items():
            self.columns.setdefault(name, [None] * self.n_rows).append(value)
        self.n_rows += 1
        for column in self.columns.values():
            if len(column) < self.n_rows:
                column.append(None)


def exact(value: object) -> tuple[str, str]:
    """A value with its type, NaN equal to NaN and 1, 1.0 and True apart."""
    return type(value).__name__, repr(value)


def exact_rows(rows: Sequence[Mapping[str, Value] | None]) -> list[object]:
    return [None if r is None else [(k, exact(v)) for k, v in r.items()] for r in rows]


def assert_same_table(got: FeatureTable, want: FeatureTable) -> None:
    assert got.kinds == want.kinds and got.n_rows == want.n_rows
    assert got.type_errors == want.type_errors
    assert list(got.columns) == list(want.columns)
    for name, column in want.columns.items():
        assert got.columns[name].dtype == column.dtype and got.columns[name].shape == column.shape
        if column.dtype == np.float64:
            assert np.array_equal(got.columns[name], column, equal_nan=True), name
        else:
            assert [exact(v) for v in got.columns[name]] == [exact(v) for v in column], name


def filled(rows: list[dict[str, Value]], chunk: int) -> Columns:
    """Rows added one by one (chunk 0) or in batches of ``chunk``."""
    columns = Columns()
    for start in range(0, len(rows), chunk or 1):
        if chunk:
            columns.extend(rows[start:start + chunk])  # type: ignore[arg-type]
        else:
            columns.append(rows[start])
    return columns


def check(rows: list[dict[str, Value]], wanted: dict[str, FeatureKind], chunk: int = 0) -> None:
    columns, oracle = filled(rows, chunk), ListColumns()
    for r in rows:
        oracle.append(r)
    assert columns.n_rows == oracle.n_rows == len(rows)
    assert list(columns.columns) == list(oracle.columns)
    for name, values in oracle.columns.items():
        assert len(columns.columns[name]) == len(values)
        assert [exact(v) for v in columns.columns[name]] == [exact(v) for v in values]
    assert exact_rows(list(columns.rows())) == exact_rows(rows)
    assert_same_table(columns.table(wanted), build_table(oracle.columns, wanted, oracle.n_rows))
    overrides: dict[str, FeatureKind] = {"a": "categorical"}
    assert columns.infer_kinds(overrides) == {
        name: overrides.get(name) or infer_kind(values) for name, values in oracle.columns.items()
    }
    inferred = columns.infer_kinds({})
    assert_same_table(columns.table(inferred), build_table(oracle.columns, inferred, oracle.n_rows))
    assert content_id(columns.columns) == content_id(oracle.columns)


chunks = st.sampled_from([0, 1, 3, 64])


@settings(SETTINGS, max_examples=600)
@given(st.lists(row, max_size=40) | st.lists(typed_row, max_size=40), kinds, chunks)
def test_mixed_rows_give_the_tables_of_lists(
    rows: list[dict[str, Value]], wanted: dict[str, FeatureKind], chunk: int
) -> None:
    """Any values, and rows of numbers only (columns that stay float64)."""
    check(rows, wanted, chunk)


@SETTINGS
@given(st.lists(st.one_of(full_row, full_row, st.none()), max_size=60), kinds, chunks)
def test_batches_of_rows_with_every_name_in_order_or_none_give_the_tables_of_lists(
    rows: list[dict[str, Value] | None], wanted: dict[str, FeatureKind], chunk: int
) -> None:
    columns, oracle = filled(rows, chunk), ListColumns()  # type: ignore[arg-type]
    for r in rows:
        oracle.append(r or {})
    assert exact_rows(list(columns.rows())) == exact_rows(rows)
    assert_same_table(columns.table(wanted), build_table(oracle.columns, wanted, oracle.n_rows))
    assert columns.infer_kinds({}) == {name: infer_kind(v) for name, v in oracle.columns.items()}


@SETTINGS
@given(st.lists(st.one_of(values, numbers), max_size=80), st.integers(1, 20))
def test_a_column_extended_in_batches_holds_what_appending_holds(batch: list[Value], size: int) -> None:
    appended, extended = Column(), Column()
    for value in batch:
        appended.append(value)
    for start in range(0, len(batch), size):
        extended.extend(batch[start:start + size])
    assert [exact(v) for v in extended] == [exact(v) for v in appended] == [exact(v) for v in batch]
    assert _form(extended) == _form(appended)  # the same compact form, not only the same values
    assert extended.kind() == appended.kind() == (infer_kind(batch) if batch else "categorical")
    numerical = build_table({"v": batch}, {"v": "numerical"}, len(batch))
    got, errors = extended.numerical()
    assert np.array_equal(got, numerical.columns["v"], equal_nan=True)
    assert errors == numerical.type_errors["v"]
    categorical = build_table({"v": batch}, {"v": "categorical"}, len(batch)).columns["v"]
    assert [exact(v) for v in extended.categorical()] == [exact(v) for v in categorical]


def _form(column: Column) -> tuple[object, ...]:
    """Which form holds a column's values, and the float tags of a number column."""
    forms = (column._numbers is not None, column._codes is not None, column._values is not None)
    tags = None if column._tags is None else bytes(column._tags)
    return (*forms, tags, column._missing if not any(forms) else None)


def test_a_column_of_floats_is_a_float64_array_and_one_string_turns_it_into_a_list() -> None:
    column = Column()
    for value in (0.5, None, 3, -0.0, math.inf):
        column.append(value)
    assert column._numbers is not None and column._values is None
    assert [exact(v) for v in column] == [exact(v) for v in (0.5, None, 3, -0.0, math.inf)]
    assert column.kind() == "numerical"
    column.append("7")
    column.append(1.5)
    assert column._numbers is None and column._values is not None
    assert [exact(v) for v in column] == [exact(v) for v in (0.5, None, 3, -0.0, math.inf, "7", 1.5)]
    array, errors = column.numerical()
    assert errors == 1
    assert np.array_equal(array, [0.5, np.nan, 3.0, -0.0, np.inf, np.nan, 1.5], equal_nan=True)


def test_an_int_beyond_float64_precision_keeps_its_value() -> None:
    column = Column()
    big = 2**53 + 1
    for value in (1.0, big, 2):
        column.append(value)
    assert column._values == [1.0, big, 2]


def test_bools_are_codes_not_numbers_and_a_number_among_them_turns_them_into_a_list() -> None:
    column = Column(missing=2)
    for value in (True, "True", False, None, True):
        column.append(value)
    assert column._codes is not None
    assert [exact(v) for v in column] == [exact(v) for v in (None, None, True, "True", False, None, True)]
    assert list(column.categorical()) == [None, None, "True", "True", "False", None, "True"]
    column.append(1)
    assert column._codes is None
    assert [exact(v) for v in column][-3:] == [exact(None), exact(True), exact(1)]


def test_a_column_of_only_missing_values_is_categorical_and_all_nan_as_numbers() -> None:
    columns = Columns()
    columns.append({"a": None})
    columns.append({})
    assert columns.infer_kinds({}) == {"a": "categorical"}
    table = columns.table({"a": "numerical", "b": "numerical"})
    assert np.isnan(table.columns["a"]).all() and np.isnan(table.columns["b"]).all()
    assert table.type_errors == {"a": 0, "b": 0}


def test_rows_keep_their_own_key_order_absent_names_and_none_rows() -> None:
    columns = Columns()
    given_rows: list[dict[str, Value] | None] = [{"b": 1.0, "a": "x"}, None, {}, {"a": None}, {"c": 2}]
    for r in given_rows:
        columns.append(r)
    assert exact_rows(list(columns.rows())) == exact_rows(given_rows)
    assert list(columns.columns) == ["b", "a", "c"]


def test_codes_widen_beyond_65536_distinct_values() -> None:
    codes: Codes[int] = Codes()
    for i in range(70_000):
        codes.append(i)
    assert codes.codes.typecode == "I"
    assert codes.values() == list(range(70_000))


def test_a_key_appended_many_times_reads_back_as_appended_one_by_one() -> None:
    many: Codes[int] = Codes()
    one_by_one: Codes[int] = Codes()
    for key, count in [(7, 3), (8, 0), (7, 2), *((i, 1) for i in range(65_536)), (70_000, 4), (7, 1)]:
        many.append_many(key, count)
        for _ in range(count):
            one_by_one.append(key)
    assert many.codes.typecode == one_by_one.codes.typecode == "I"  # widened at the 65,537th key
    assert many.values() == one_by_one.values()
    assert many.labels == one_by_one.labels  # a key appended 0 times gets no code


def test_texts_read_back_every_string_lone_surrogates_included() -> None:
    texts = Texts()
    strings = ["e-1", "", "é✓", "\ud800x", "e-1"]
    texts.extend(strings[:2])
    texts.extend([])
    texts.extend(strings[2:])
    assert texts.values() == strings and len(texts) == 5


def prediction(i: int) -> Prediction:
    """Events as the wire gives them: ints and floats, missing and null features, optional fields."""
    features: dict[str, object] = {"x": i * 0.5, "n": i, "city": ["a", "b", "c"][i % 3]}
    if i % 4 == 0:
        features = {"city": None, "x": i * 0.5, "extra": True}
    return Prediction(
        event_id=f"e-{i}",
        model="m",
        model_version="1",
        features=features,  # type: ignore[arg-type]
        prediction=["yes", "no"][i % 2] if i % 5 else 1,
        timestamp=1000.0 + i if i % 3 else None,
        data_version="d2" if i > 6 else "unknown",
        probabilities=None if i % 6 == 0 else {} if i % 7 == 0 else {"yes": 0.25, "no": 0.75},
        latency_ms=3 if i % 2 else 2.5,
        segments={"region": "eu"} if i % 2 else None,
        error="timeout" if i == 3 else None,
        embeddings={"text": (0.5, 1.0)} if i == 2 else None,
    )


def test_a_window_gives_back_its_events_exactly_and_round_trips_through_its_plain_form() -> None:
    assert 150 % PENDING and 2 * PENDING < 150
    events = [decode(encode(prediction(i))) for i in range(150)]  # whole batches of PENDING and a part
    window = Window(1000.0)
    for count, event in enumerate(events, 1):
        assert isinstance(event, Prediction)
        window.add(event, 1000.0)
        assert window.n_events == count
        if count == 100:  # a read between batches stores the pending events first
            assert window.features.n_rows == 100
    wire = [encode(p) for p in events]
    without_vectors = [encode(p) for p in (decode(w) for w in wire) if isinstance(p, Prediction)]
    data = window.to_dict()
    assert data["events"] != wire  # event 2's vector is in the sample, not the event
    assert data["events"][:2] == without_vectors[:2] and data["events"][3:] == without_vectors[3:]
    assert window.event_ids() == [f"e-{i}" for i in range(150)]
    assert window.prediction_values() == [p.prediction for p in events if isinstance(p, Prediction)]
    assert window.probability_mappings()[:8] == [None, *[{"yes": 0.25, "no": 0.75}] * 5, None, {}]
    again = Window.from_dict(data)
    assert again.to_dict() == data
    assert list(again.embeddings.arrays()) == ["text"]


def test_an_automatic_reference_from_the_columns_is_the_one_from_lists() -> None:
    window = Window(0.0)
    features, outputs = ListColumns(), ListColumns()
    for i in range(150):  # whole batches of PENDING and a part
        event = prediction(i)
        window.add(event, 0.0)
        features.append(event.features)
        probabilities = {f"proba_{c}": p for c, p in (event.probabilities or {}).items()}
        outputs.append({"prediction": event.prediction, **probabilities})
    reference = automatic_reference(window, {}, None, "d")
    assert reference.reference_id == f"auto-{content_id({**features.columns, **outputs.columns})[:16]}"
    kinds = {name: infer_kind(values) for name, values in features.columns.items()}
    assert reference.features.kinds == kinds
    assert_same_table(reference.features, build_table(features.columns, kinds, 150))
    assert list(reference.outputs.kinds) == ["prediction", "proba_yes", "proba_no"]
    assert reference.event_ids == tuple(f"e-{i}" for i in range(150))


_PROBABILITY_ROWS: list[Mapping[str, float] | None] = [
    None,
    {},
    {"yes": 0.25, "no": 0.75},
    {"no": 0.5, "yes": 0.5},
    {"yes": 0.875},
    {"no": 0.125},
    {"yes": 1},
    {"maybe": 0.25, "no": 0.75},
]


@given(st.lists(st.sampled_from(range(len(_PROBABILITY_ROWS))), min_size=1, max_size=80), st.booleans())
@SETTINGS
def test_a_windows_probabilities_read_from_columns_equal_those_of_its_mappings(
    picks: list[int], binary: bool
) -> None:
    """The proxy metrics' matrix and each class's positive probability, read from the columns,
    equal the functions over the events' mappings (events without probabilities, naming one
    class, naming the classes in either order, an int probability; two classes and three)."""
    rows = [_PROBABILITY_ROWS[i] for i in picks if not (binary and i == len(_PROBABILITY_ROWS) - 1)]
    window = Window(0.0)
    for index, probabilities in enumerate(rows):
        window.add(Prediction(f"e{index}", "m", "v", {"x": 1.0}, "yes", probabilities=probabilities), 0.0)
    mappings = window.probability_mappings()
    assert mappings == rows
    classes = sorted({name for mapping in mappings if mapping for name in mapping})
    assert window.gives_probabilities() == any(mappings)
    got_classes, matrix = window.probability_matrix()
    assert got_classes == classes
    np.testing.assert_array_equal(matrix, probability_matrix(mappings, classes))
    for positive in ("yes", "no", "maybe", "never"):
        expected = positive_probability(mappings, positive)
        np.testing.assert_array_equal(window.positive_probability(positive), expected)
