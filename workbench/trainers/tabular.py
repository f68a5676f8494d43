"""Reading a training table and describing its features, shared by the built-in trainers.

What the trainers do with each column (printed in the run's log and kept in the
feature schema's `dropped`, with the reason):

- a column equal to the target, or (for classification) a relabelled copy of it,
  is excluded: it would leak the label;
- a column with every value missing, or with one value only, is excluded;
- dates (datetime columns, or text that is all ISO-like dates such as
  `2024-05-31` or `2024-05-31 12:00`) are excluded: add year / month columns
  yourself to use them;
- ID-like columns are excluded: text with a different value on every row, and
  integers that are all different and either named like an id (`id`, `*_id`,
  `index`, `Unnamed: 0`, ...) or a run of consecutive numbers (a row number)
  in 20 rows or more;
- text with too many distinct values to be a category (more than 50 and more
  than half the rows) is excluded;
- booleans become 0/1 numbers; other text is a categorical feature.

The task, when `[project] task` is not set, comes from the target (`explain_task`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

# The task rule is the config's (a project's task defaults to the inferred one).
from workbench.config.task import (  # noqa: F401 - re-exported for the trainers' callers
    MAX_CLASSES_FOR_INTEGER_TARGET,
    MIN_ROWS_PER_CLASS,
    OVERRIDE,
    SURE_CLASSES_FOR_INTEGER_TARGET,
    explain_task,
    infer_task,
)
from workbench.core.errors import UsageError

if TYPE_CHECKING:
    from workbench.config.project import ProjectConfig

MIN_ROWS = 10
# Integers that are all different, in a run of consecutive values: a row number.
MIN_ROWS_FOR_ROW_NUMBER = 20
_ID_NAME = re.compile(
    r"^(id|idx|index|key|uuid|guid|row|row_?id|row_?num(ber)?|unnamed: ?\d+)$"
    r"|[_ -]id$|^id[_ -]|[a-z]Id$",
)
_ISO_DATE = re.compile(
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$"
)


class TrainingDataError(UsageError):
    """The training data cannot train a model; the message says what to change."""

    title = "Cannot train on this data"


@dataclass
class Table:
    features: pd.DataFrame
    target: pd.Series
    task: str
    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)  # column -> why


def read_table(path: Path) -> pd.DataFrame:
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return pd.read_parquet(path)
    return pd.read_csv(path)  # compression inferred from the suffix (.gz)


def load_training_table(config: ProjectConfig, path: Path | None = None) -> Table:
    """The training table: `path`, else the project's `[data] train`."""
    path = path or config.train_file
    return prepare_table(read_table(path), config.target, config.task, source=path.name)


def prepare_table(
    frame: pd.DataFrame, target_name: str, task: str | None = None, *, source: str = "the data"
) -> Table:
    """Split `frame` into the target and the features the trainers use, with the
    columns left out and why; raises TrainingDataError on data that cannot train."""
    if target_name not in frame.columns:
        shown = ", ".join(map(str, list(frame.columns)[:10]))
        raise TrainingDataError(
            f"{source} has no target column {target_name!r}; its columns: {shown}"
        )
    frame = frame.copy()
    target = frame.pop(target_name)
    if isinstance(target, pd.DataFrame):
        raise TrainingDataError(f"{source} has more than one column named {target_name!r}")
    target = _clean_target(target, target_name, source)
    missing_target = target.isna()
    if missing_target.all():
        raise TrainingDataError(f"{source}: the target {target_name!r} has no values")
    if missing_target.any():
        print(f"dropping {int(missing_target.sum())} rows with no {target_name!r} value")
        frame = frame.loc[~missing_target].reset_index(drop=True)
        target = target.loc[~missing_target].reset_index(drop=True)
    if target.dtype == object:  # e.g. booleans that had gaps: plain bool without them
        target = target.infer_objects()
    if len(frame) < MIN_ROWS:
        raise TrainingDataError(
            f"{source} has only {len(frame)} usable rows; need at least {MIN_ROWS}"
        )
    if task is None:
        task, why = explain_task(target)
        print(f"task: {why}")
    _check_target(target, task, target_name)
    if task == "classification" and target.dtype == object:
        # Labels of more than one type (e.g. a Parquet column of numbers and text) as text.
        if len({type(v) for v in target}) > 1:
            target = target.astype(str)
    table = Table(features=frame, target=target, task=task)
    for column in list(frame.columns):
        why = _why_not_a_feature(frame[column], target, task, len(frame))
        if why:
            table.dropped[str(column)] = why
            continue
        series = frame[column]
        if pd.api.types.is_bool_dtype(series):
            frame[column] = series.astype(float)
            table.numeric.append(column)
        elif pd.api.types.is_numeric_dtype(series):
            if not isinstance(series.dtype, np.dtype):  # nullable Int64 / Float64: NaN, not NA
                frame[column] = series.astype("float64")
            table.numeric.append(column)
        else:
            frame[column] = series.astype("string").astype(object).where(series.notna(), None)
            table.categorical.append(column)
    for column, why in table.dropped.items():
        print(f"not using column {column!r}: {why}")
        frame.pop(column)
    if not table.numeric and not table.categorical:
        raise TrainingDataError(
            f"{source}: no column is usable as a feature "
            f"({'; '.join(f'{c}: {w}' for c, w in table.dropped.items()) or 'only the target'})"
        )
    return table


def _clean_target(target: pd.Series, name: str, source: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(target) or _iso_dates(target.dropna()):
        raise TrainingDataError(
            f"{source}: the target {name!r} holds dates; the built-in trainers predict "
            "classes or numbers"
        )
    if pd.api.types.is_bool_dtype(target) and not isinstance(target.dtype, np.dtype):
        # Nullable booleans: plain bool once the missing rows are gone.
        return target.astype(object).where(target.notna(), None)
    if pd.api.types.is_numeric_dtype(target) and not isinstance(target.dtype, np.dtype):
        # Nullable Int64 / Float64: plain numpy numbers (ints when none is missing).
        if pd.api.types.is_integer_dtype(target) and not target.isna().any():
            return target.astype("int64")
        return target.astype("float64")
    if pd.api.types.is_float_dtype(target) and target.notna().any():
        if not np.isfinite(target.dropna().to_numpy()).all():
            raise TrainingDataError(f"{source}: the target {name!r} has infinite values")
    return target


def _check_target(target: pd.Series, task: str, name: str) -> None:
    values = target.dropna()
    distinct = values.nunique()
    if task == "regression" and not (
        pd.api.types.is_numeric_dtype(target) and not pd.api.types.is_bool_dtype(target)
    ):
        raise TrainingDataError(
            f"the task is regression but the target {name!r} is not numeric "
            f"(e.g. {values.iloc[0]!r}); set [project] task = \"classification\""
        )
    if distinct < 2:
        only = values.iloc[0] if len(values) else None
        need = "at least two classes" if task == "classification" else "values that vary"
        raise TrainingDataError(
            f"the target {name!r} has one value only ({_plain(only)!r}); {task} needs {need}"
        )


def _why_not_a_feature(series: pd.Series, target: pd.Series, task: str, rows: int) -> str | None:
    """Why a column is left out of the features, or None to use it."""
    values = series.dropna()
    if values.empty:
        return "every value is missing"
    distinct = values.nunique()
    if distinct == 1:
        return f"one value only ({_plain(values.iloc[0])!r})"
    if _same_values(series, target):
        return "a copy of the target (it would leak the label)"
    if task == "classification" and _relabels(series, target):
        return (
            "a relabelled copy of the target: each value means one class (it would leak the label)"
        )
    if pd.api.types.is_datetime64_any_dtype(series) or _iso_dates(values):
        return "dates are not used as features (add year / month columns to use them)"
    if pd.api.types.is_bool_dtype(series):
        return None
    if pd.api.types.is_numeric_dtype(series):
        if _integer_id(series, values, distinct, rows):
            return "ID-like: integers that are all different"
        return None
    if distinct == len(values) and len(values) == rows:
        return "ID-like: a different value on every row"
    if distinct > max(50, rows // 2):
        return "text with too many distinct values to use as a category"
    return None


def _same_values(series: pd.Series, target: pd.Series) -> bool:
    """Equal row by row, as numbers when both read as numbers, else as text."""
    if series.isna().any():
        return False
    a, b = pd.to_numeric(series, errors="coerce"), pd.to_numeric(target, errors="coerce")
    if not (a.isna().any() or b.isna().any()):
        return bool(np.array_equal(a.to_numpy(dtype=float), b.to_numpy(dtype=float)))
    return bool((series.astype(str).to_numpy() == target.astype(str).to_numpy()).all())


def _relabels(series: pd.Series, target: pd.Series) -> bool:
    """Every value of `series` goes with one class, and every class with one value."""
    if series.isna().any() or pd.api.types.is_float_dtype(series):
        return False
    pairs = pd.DataFrame({"x": series.astype(str).to_numpy(), "y": target.astype(str).to_numpy()})
    unique_pairs = len(pairs.drop_duplicates())
    return unique_pairs == pairs["x"].nunique() == pairs["y"].nunique() > 1


def _iso_dates(values: pd.Series) -> bool:
    if not (pd.api.types.is_string_dtype(values) or values.dtype == object):
        return False
    sample = values.head(200).astype(str).str.strip()
    return bool(sample.str.fullmatch(_ISO_DATE).all())


def _integer_id(series: pd.Series, values: pd.Series, distinct: int, rows: int) -> bool:
    if not pd.api.types.is_integer_dtype(series) or distinct != rows:
        return False
    if _ID_NAME.search(str(series.name).strip()) or _ID_NAME.search(str(series.name).lower()):
        return True
    span = int(values.max()) - int(values.min())
    return rows >= MIN_ROWS_FOR_ROW_NUMBER and span == rows - 1


def label_array(classes: list[Any]) -> np.ndarray:
    """The class labels as an array of their own dtype (ints, floats, bools);
    text, or labels of mixed types, as objects."""
    kinds = {type(_plain(c)) for c in classes}
    if len(kinds) == 1 and kinds <= {int, float, bool}:
        return np.asarray([_plain(c) for c in classes])
    return np.asarray(classes, dtype=object)


def feature_schema(table: Table, classes: list[Any] | None) -> dict[str, Any]:
    """Names, kinds, dtypes and categories of the features, and the target's labels."""
    features = []
    for column in table.features.columns:
        entry: dict[str, Any] = {"name": column, "dtype": str(table.features[column].dtype)}
        if column in table.categorical:
            entry["kind"] = "categorical"
            entry["categories"] = sorted(table.features[column].dropna().unique().tolist())
        else:
            entry["kind"] = "numeric"
        features.append(entry)
    target: dict[str, Any] = {"name": table.target.name, "task": table.task}
    if classes is not None:
        target["classes"] = [_plain(c) for c in classes]
    return {"features": features, "target": target, "dropped": table.dropped}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def holdout_split(
    features: pd.DataFrame, target: pd.Series, test_size: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """(x_train, x_test, y_train, y_test), the hold-out rows chosen by a hash of
    each row's content and the seed, not by position: a row lands on the same
    side in every run that sees it. A model retrained on the reference plus new
    data is then scored on rows that no model trained on a subset of that data
    has seen, so the promotion gate can compare it fairly with the champion on
    the challenger's hold-out."""
    frame = features.assign(__target__=np.asarray(target))
    # Numbers as float64, so that 1 (an int column) and 1.0 (the same column with
    # a missing value somewhere) hash alike.
    canonical = frame.apply(
        lambda c: c.astype("float64") if pd.api.types.is_numeric_dtype(c) else c.astype(str)
    )
    key = f"workbench{abs(seed) % 10_000_000:07d}"
    hashes = pd.util.hash_pandas_object(canonical, index=False, hash_key=key).to_numpy()
    test = (hashes % np.uint64(10_000)) < np.uint64(round(test_size * 10_000))
    if test.all() or not test.any():
        raise ValueError(
            f"cannot hold out {test_size:.0%} of {len(frame)} rows; add rows or change test_size"
        )
    return features[~test], features[test], target[~test], target[test]
