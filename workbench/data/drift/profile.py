"""Reference profiles for drift: a column's kind as Evidently infers it, and the
summary of a reference (`reference_profile`) that `drift_report` compares a
current batch with, JSON-able and stored once per reference version."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from workbench.core.errors import UsageError

PROFILE_VERSION = 1
# Evidently's boundary between the "small" and "large" reference regimes.
SMALL_REFERENCE = 1000
QUANTILES = 1001
HISTOGRAM_BINS = 20
# Numeric columns with this many distinct values or fewer also keep exact value
# counts; Evidently bins such columns by value, not by range, for PSI and JS.
DISCRETE_VALUES = 20
TOP_CATEGORIES = 1000
# Evidently infers an integer column with at most 10 distinct values as categorical.
INTEGER_CARDINALITY = 10


# --------------------------------------------------------------------------- kinds


def is_numeric_dtype(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(
        series.dtype
    )


def is_time_dtype(series: pd.Series) -> bool:
    return pd.api.types.is_datetime64_any_dtype(series.dtype) or pd.api.types.is_timedelta64_dtype(
        series.dtype
    )


def _kind(series: pd.Series, n_unique: int) -> str:
    if n_unique == 2:
        return "binary"
    if is_time_dtype(series):
        return "numeric"
    if pd.api.types.is_float_dtype(series.dtype):
        return "numeric"
    if is_numeric_dtype(series):
        return "categorical" if n_unique <= INTEGER_CARDINALITY else "numeric"
    return "categorical"


def column_kind(series: pd.Series) -> str:
    """Return "numeric", "categorical" or "binary" (exactly 2 distinct non-null values).

    As Evidently infers types: floats (and timestamps) are numeric; integers are
    numeric above 10 distinct values, else categorical; everything else is categorical.
    """
    return _kind(series, int(series.nunique(dropna=True)))


# --------------------------------------------------------------------------- values


def finite_values(series: pd.Series) -> np.ndarray:
    """The column as float64 without nulls or infinities (timestamps as epoch seconds),
    always a new array: the caller may sort it in place (`sorted_finite`)."""
    if is_time_dtype(series):
        kept = series.dropna().to_numpy()
        if pd.api.types.is_timedelta64_dtype(series.dtype):
            return kept.astype("timedelta64[ns]").astype(np.int64) / 1e9
        return pd.DatetimeIndex(kept).as_unit("ns").asi8 / 1e9
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    return values[np.isfinite(values)]


def sorted_finite(series: pd.Series) -> np.ndarray:
    """`finite_values`, sorted in place: a million-row column is not copied again."""
    values = finite_values(series)
    values.sort()
    return values


def _json_value(value: Any) -> Any:
    """A category as a JSON scalar (numpy scalars unwrapped, anything else as text)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    return str(value)


def category_counts(series: pd.Series, counted: pd.Series | None = None) -> dict[Any, int]:
    """Non-null value -> count, keyed by JSON scalars (several raw values may merge).
    `counted`: the series' `value_counts(dropna=True, sort=False)`, when the caller
    has it (`workbench.data.counts`)."""
    if is_numeric_dtype(series):
        return _counts_of_sorted(sorted_finite(series))
    if counted is None:
        counted = series.value_counts(dropna=True, sort=False)
    merged: dict[Any, int] = {}
    for value, count in zip(counted.index.tolist(), counted.to_numpy().tolist(), strict=True):
        if count:  # a categorical dtype lists unused categories with 0
            key = _json_value(value)
            merged[key] = merged.get(key, 0) + int(count)
    return merged


def _counts_of_sorted(ordered: np.ndarray) -> dict[Any, int]:
    uniques, counts = np.unique(ordered, return_counts=True)
    return {_json_value(v): c for v, c in zip(uniques.tolist(), counts.tolist(), strict=True)}


def _ordered(counts: dict[Any, int]) -> list[tuple[Any, int]]:
    # Most frequent first; ties by text so that a profile is reproducible.
    return sorted(counts.items(), key=lambda item: (-item[1], type(item[0]).__name__, str(item[0])))


def quantiles_of_sorted(ordered: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """np.quantile's default (linear) interpolation, on an already sorted array."""
    position = probs * (ordered.size - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, ordered.size - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def slice_means_of_sorted(ordered: np.ndarray, slices: int) -> np.ndarray:
    """Mean of the empirical quantile function over each of `slices` equal slices of
    (0, 1): the mean of the values in that slice of the sorted array, where a value
    that straddles two slices counts in each for its share."""
    bounds = np.linspace(0.0, ordered.size, slices + 1)
    whole = np.floor(bounds).astype(np.int64)
    running = np.concatenate([[0.0], np.cumsum(ordered)])
    # Integral of the step function up to each bound: whole values plus a fraction.
    upto = running[whole] + (bounds - whole) * ordered[np.minimum(whole, ordered.size - 1)]
    return np.diff(upto) / (ordered.size / slices)


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts in [below min, the len(edges) - 1 bins, above max]; bins are closed on
    the left, the last one on both sides, as np.histogram's."""
    index = np.searchsorted(edges, values, side="right")
    index[values == edges[-1]] = len(edges) - 1
    return np.bincount(index, minlength=len(edges) + 1)


def distinct_sorted(ordered: np.ndarray) -> int:
    return int(ordered.size and 1 + np.count_nonzero(ordered[1:] != ordered[:-1]))


# --------------------------------------------------------------------------- profile


def _numeric_profile(ordered: np.ndarray, n_unique: int) -> dict[str, Any]:
    """Profile of a numeric column from its sorted finite values."""
    n = int(ordered.size)
    entry: dict[str, Any] = {"kind": "numeric", "n": n, "n_unique": n_unique}
    if n == 0:
        return entry
    edges = np.unique(quantiles_of_sorted(ordered, np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)))
    if edges.size == 1:  # a constant column: one closed bin [c, c]
        edges = np.repeat(edges, 2)
    entry.update(
        mean=float(np.mean(ordered)),
        std=float(np.std(ordered)),  # ddof=0, as Evidently's Wasserstein norm
        min=float(ordered[0]),
        max=float(ordered[-1]),
        quantiles=quantiles_of_sorted(ordered, np.linspace(0.0, 1.0, QUANTILES)).tolist(),
        histogram={"edges": edges.tolist(), "counts": bin_counts(ordered, edges)[1:-1].tolist()},
    )
    if n_unique <= DISCRETE_VALUES:
        uniques, counts = np.unique(ordered, return_counts=True)
        entry["values"] = {"values": uniques.tolist(), "counts": counts.tolist()}
    if n <= SMALL_REFERENCE:
        entry["sample"] = ordered.tolist()  # the KS test needs the raw reference
    else:  # too many values to keep: Wasserstein reads these slice means instead
        entry["quantile_means"] = slice_means_of_sorted(ordered, QUANTILES - 1).tolist()
    return entry


def _categorical_profile(counts: dict[Any, int], kind: str) -> dict[str, Any]:
    ordered = _ordered(counts)
    kept, rest = ordered[:TOP_CATEGORIES], ordered[TOP_CATEGORIES:]
    return {
        "kind": kind,
        "n": sum(counts.values()),
        "n_unique": len(counts),
        "categories": {"values": [v for v, _ in kept], "counts": [c for _, c in kept]},
        "other": {"categories": len(rest), "count": sum(c for _, c in rest)},
    }


def _column_profile(series: pd.Series) -> dict[str, Any]:
    nulls = int(series.isna().sum())
    if is_numeric_dtype(series) or is_time_dtype(series):
        ordered = sorted_finite(series)
        n_unique = distinct_sorted(ordered)
        kind = _kind(series, n_unique)
        if kind == "numeric":
            entry = _numeric_profile(ordered, n_unique)
        else:
            entry = _categorical_profile(_counts_of_sorted(ordered), kind)
        entry["non_finite"] = len(series) - nulls - int(ordered.size)
    else:
        counts = category_counts(series)
        entry = _categorical_profile(counts, _kind(series, len(counts)))
    entry["dtype"] = str(series.dtype)
    entry["nulls"] = nulls
    return entry


def reference_profile(frame: pd.DataFrame, columns: list[str] | None = None) -> dict:
    """Summarise the reference once, for `drift_report`; the result is json.dumps-able
    and the same for the same data.

    Per column: kind, n (non-null count), n_unique, nulls and dtype. Numeric: mean,
    std, min, max, 1001 evenly spaced quantiles, the means of the 1000 slices between
    them (`quantile_means`, for Wasserstein) when it has more than 1000 values, else
    its sorted raw values (for the KS test), a 20-bin equal-frequency histogram
    (edges, counts), and exact value counts when it has at most 20 distinct values.
    Categorical and binary: the 1000 most frequent categories with counts, the rest
    lumped as "other".

    `columns` defaults to every column except timestamps (which always move forward);
    name a timestamp column to include it, as numeric epoch seconds.
    """
    if columns is None:
        columns = [c for c in frame.columns if not is_time_dtype(frame[c])]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UsageError(f"reference has no column(s) {missing}")
    return {
        "version": PROFILE_VERSION,
        "rows": len(frame),
        "columns": {str(c): _column_profile(frame[c]) for c in columns},
    }
