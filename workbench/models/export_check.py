"""What the MLflow and ONNX exports are checked on before they are written: the
version's hold-out rows, and the same rows with values missing, compared with
the native model's predictions."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.models.registry import ModelVersion


def holdout_features(version: ModelVersion) -> pd.DataFrame:
    """The version's hold-out rows without the target."""
    features = [f["name"] for f in version.schema["features"]]  # a script's model has none
    if version.holdout_path is None or not version.holdout_path.is_file():
        raise WorkbenchError(
            f"{version.ref} has no hold-out rows to check an export against; retrain it with a "
            "built-in trainer"
        )
    frame = pd.read_parquet(version.holdout_path)
    if frame.empty:
        raise WorkbenchError(f"{version.ref}: its hold-out table is empty")
    return frame[features]


def with_gaps(frame: pd.DataFrame, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """`frame` followed by its rows again, each with one of `columns` (default:
    all) missing in turn, so a check also covers how missing values are passed."""
    columns = list(frame.columns if columns is None else columns)
    if not columns:
        return frame
    gaps = frame.copy()
    row = np.arange(len(frame))
    for i, column in enumerate(columns):
        gaps[column] = gaps[column].mask(row % len(columns) == i)
    return pd.concat([frame, gaps], ignore_index=True)


def max_abs_diff(ours: object, theirs: object) -> float:
    """The largest absolute difference; NaN on both sides counts as equal, NaN on
    one side as infinitely far."""
    b = np.asarray(theirs, dtype=np.float64)
    b = b.reshape(len(b), -1)
    a = np.asarray(ours, dtype=np.float64).reshape(b.shape)
    both = np.isnan(a) & np.isnan(b)
    diff = np.nan_to_num(np.abs(a - b), nan=np.inf)
    return float(np.max(np.where(both, 0.0, diff), initial=0.0))
