"""Reading a training table and describing its features, shared by the built-in trainers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.config import ProjectConfig

MAX_CLASSES_FOR_INTEGER_TARGET = 20


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
    frame = read_table(path)
    missing_target = frame[config.target].isna()
    if missing_target.any():
        print(f"dropping {int(missing_target.sum())} rows with no {config.target!r} value")
        frame = frame.loc[~missing_target].reset_index(drop=True)
    if len(frame) < 10:
        raise ValueError(f"{path} has only {len(frame)} usable rows; need at least 10")
    target = frame.pop(config.target)
    task = config.task or infer_task(target)
    table = Table(features=frame, target=target, task=task)
    for column in list(frame.columns):
        series = frame[column]
        if pd.api.types.is_bool_dtype(series):
            frame[column] = series.astype(float)
            table.numeric.append(column)
        elif pd.api.types.is_numeric_dtype(series):
            table.numeric.append(column)
        elif pd.api.types.is_datetime64_any_dtype(series):
            table.dropped[column] = "datetime columns are not used as features"
        elif series.nunique(dropna=True) > max(50, len(frame) // 2):
            table.dropped[column] = "text with too many distinct values to use as a category"
        else:
            frame[column] = series.astype("string").astype(object).where(series.notna(), None)
            table.categorical.append(column)
    for column, why in table.dropped.items():
        print(f"not using column {column!r}: {why}")
        frame.pop(column)
    return table


def infer_task(target: pd.Series) -> str:
    if not pd.api.types.is_numeric_dtype(target) or pd.api.types.is_bool_dtype(target):
        return "classification"
    values = target.dropna()
    integral = bool(np.all(np.mod(values, 1) == 0))
    if integral and values.nunique() <= MAX_CLASSES_FOR_INTEGER_TARGET:
        return "classification"
    return "regression"


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
