"""Duplicate rows found by hashing are exactly the rows `DataFrame.duplicated()`
finds: NaN, None and pd.NA alike, 0.0 and -0.0 alike, 1 and 1.0 and True alike in
a mixed column, hash collisions resolved by an exact comparison."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.data import validate as validate_module
from workbench.data.validate import duplicated_rows, validate_frame

ROWS = st.integers(min_value=0, max_value=12)

FLOATS = st.sampled_from([0.0, -0.0, 1.5, np.nan, float("-nan"), np.inf, -np.inf])
STRINGS = st.sampled_from(["a", "b", "", "é", "a\x00", None, np.nan])
MIXED = st.sampled_from([1, 1.0, True, "1", None, np.nan, 0, False, b"1", (1, 2)])
INTS = st.sampled_from([0, 1, -1, 2**62])
DATES = st.sampled_from([pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-02"), pd.NaT])
NULLABLE = st.sampled_from([1, 2, None])


def _column(kind: str, values: list) -> pd.Series:
    if kind == "float64":
        return pd.Series(values, dtype="float64")
    if kind == "float32":
        return pd.Series(values, dtype="float32")
    if kind == "int":
        return pd.Series(values, dtype="int64")
    if kind == "bool":
        return pd.Series([bool(v) for v in values], dtype=bool)
    if kind == "category":
        return pd.Series(values, dtype="category")
    if kind == "Int64":
        return pd.Series(values, dtype="Int64")
    if kind in ("str", "string"):  # pandas' string dtypes (NaN and pd.NA missing values)
        return pd.Series(values, dtype=kind)
    if kind == "datetime":
        return pd.Series(values, dtype="datetime64[ns]")
    return pd.Series(values, dtype=object)


KINDS = {
    "float64": FLOATS,
    "float32": FLOATS,
    "int": INTS,
    "bool": INTS,
    "object": STRINGS,
    "str": STRINGS,
    "string": STRINGS,
    "mixed": MIXED,
    "category": STRINGS,
    "Int64": NULLABLE,
    "datetime": DATES,
}


@st.composite
def frames(draw) -> pd.DataFrame:
    rows = draw(ROWS)
    kinds = draw(st.lists(st.sampled_from(sorted(KINDS)), min_size=1, max_size=4))
    columns = {
        f"c{i}": _column(kind, draw(st.lists(KINDS[kind], min_size=rows, max_size=rows)))
        for i, kind in enumerate(kinds)
    }
    frame = pd.DataFrame(columns)
    if rows and draw(st.booleans()):  # repeat some rows, as a real batch would
        frame = pd.concat([frame, frame.sample(n=rows, replace=True, random_state=rows)])
    return frame


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames())
def test_hashing_finds_exactly_the_rows_duplicated_finds(frame):
    expected = frame.duplicated().to_numpy(dtype=bool)
    found = duplicated_rows(frame)
    assert found.dtype == bool and found.shape == expected.shape
    assert found.tolist() == expected.tolist()


@settings(max_examples=100, deadline=None)
@given(frames())
def test_collisions_cost_time_not_correctness(frame):
    # Every row hashes the same: the exact comparison alone decides.
    expected = frame.duplicated().to_numpy(dtype=bool)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            validate_module, "_row_hashes", lambda f: np.zeros(len(f), dtype=np.uint64)
        )
        assert duplicated_rows(frame).tolist() == expected.tolist()


@pytest.mark.parametrize(
    "values,duplicates",
    [
        ([0.0, -0.0], 1),
        ([np.nan, float("-nan"), np.nan], 2),
        (["x", None, np.nan, pd.NA, "x"], 3),
        ([1, 1.0, True, "1"], 2),
        ([dt.date(2024, 1, 1), dt.date(2024, 1, 1), None], 1),
        ([pd.NaT, None, np.nan], 2),
    ],
)
def test_equal_cells_as_duplicated_sees_them(values, duplicates):
    frame = pd.DataFrame({"a": pd.Series(values, dtype=object), "b": [7] * len(values)})
    assert int(frame.duplicated().sum()) == duplicates  # pandas' own semantics
    assert int(duplicated_rows(frame).sum()) == duplicates


def test_different_dtypes_of_the_same_number_are_not_confused():
    # An int column and a float column of the same numbers: row (1, 1.0) vs (1.0, 1)
    # differ cell by cell only in position, and must not be counted as duplicates.
    frame = pd.DataFrame({"i": [1, 2, 1], "f": [2.0, 1.0, 2.0]})
    assert duplicated_rows(frame).tolist() == [False, False, True]
    swapped = pd.DataFrame({"i": [1, 2], "f": [2.0, 1.0]})
    assert duplicated_rows(swapped).tolist() == [False, False]


def test_edge_shapes_match_duplicated():
    for frame in (pd.DataFrame(), pd.DataFrame(index=range(3)), pd.DataFrame({"a": []})):
        assert duplicated_rows(frame).tolist() == frame.duplicated().tolist()
    same_names = pd.DataFrame([[1, 2], [1, 3], [1, 2]], columns=["a", "a"])
    assert duplicated_rows(same_names).tolist() == [False, False, True]


def test_the_validation_report_counts_duplicates_by_hashing():
    frame = pd.DataFrame({"x": [1.0, -0.0, 0.0, np.nan, np.nan], "s": ["a", "b", "b", None, None]})
    check = next(c for c in validate_frame(frame, {}) if c.check == "duplicates")
    assert check.details == {"duplicates": 2} and not check.passed
    assert check.message == "2 duplicate rows"
