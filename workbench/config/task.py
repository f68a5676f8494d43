"""A project's task: `[project] task`, else inferred from the target column.

The rule lives here, below everything that needs it: the config check (does
`[train] metric` fit the task?), `project init`, the data schema and the
trainers all ask `explain_task`. pandas is imported only when a column is read.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.errors import WorkbenchError

if TYPE_CHECKING:
    import pandas as pd

TASKS = ("classification", "regression")
# The hold-out metrics the built-in trainers report, by task.
CLASSIFICATION_METRICS = ("accuracy", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("rmse", "mae", "r2")
METRICS_BY_TASK = {"classification": CLASSIFICATION_METRICS, "regression": REGRESSION_METRICS}
# Integer targets with at most this many distinct values are classes...
MAX_CLASSES_FOR_INTEGER_TARGET = 20
# ...and with at most this many, confidently so; in between, the reason says it is a guess.
SURE_CLASSES_FOR_INTEGER_TARGET = 10
# ...provided they have this many rows per value on average; fewer: a count or an amount.
MIN_ROWS_PER_CLASS = 5
OVERRIDE = "set [project] task to override"


def metrics_for(task: str) -> tuple[str, ...]:
    """The primary metrics the built-in trainers report for `task`."""
    return METRICS_BY_TASK[task]


def with_override_hint(reason: str) -> str:
    """An inference reason that says how to override it."""
    if "override" in reason or "set [project] task" in reason:
        return reason
    return f"{reason}; set [project] task to override"


def infer_task(target: pd.Series) -> str:
    """"classification" or "regression", from the target's values (see `explain_task`)."""
    return explain_task(target)[0]


def explain_task(target: pd.Series) -> tuple[str, str]:
    """The task the target's values suggest, and a one-line reason.

    Booleans and text are classes. Numbers with a fractional part are
    regression. Whole numbers (ints, or floats like 0.0 / 1.0) are classes when
    they take two values, or at most 20 distinct values with at least 5 rows per
    value on average; above 10 distinct values that is said to be a guess.
    Otherwise (a count, an amount) they are regression.
    """
    import numpy as np
    import pandas as pd

    values = target.dropna()
    if values.dtype == object and len(values):  # e.g. booleans read with gaps
        values = values.infer_objects()
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_bool_dtype(target):
        return "classification", f"boolean target -> classification; {OVERRIDE}"
    if not pd.api.types.is_numeric_dtype(values):
        distinct = values.nunique()
        return (
            "classification",
            f"text target with {distinct} distinct values -> classification; {OVERRIDE}",
        )
    if values.empty:
        return "regression", f"numeric target with no values -> regression; {OVERRIDE}"
    numbers = values.to_numpy(dtype="float64")
    if not bool(np.all(np.mod(numbers, 1) == 0)):
        return "regression", f"numeric target with fractional values -> regression; {OVERRIDE}"
    distinct = values.nunique()
    kind = "integer" if pd.api.types.is_integer_dtype(values) else "whole-number"
    if distinct > MAX_CLASSES_FOR_INTEGER_TARGET:
        return (
            "regression",
            f"{kind} target with {distinct} distinct values -> regression; {OVERRIDE}",
        )
    if distinct > 2 and len(values) < MIN_ROWS_PER_CLASS * distinct:
        return (
            "regression",
            f"{kind} target with {distinct} distinct values in {len(values)} rows (too few rows"
            f" per value to learn them as classes) -> regression; {OVERRIDE}",
        )
    if distinct > SURE_CLASSES_FOR_INTEGER_TARGET:
        return (
            "classification",
            f"{kind} target with {distinct} distinct values -> classification, a guess: "
            'set [project] task = "regression" if they are counts or amounts',
        )
    return (
        "classification",
        f"{kind} target with {distinct} distinct values -> classification; {OVERRIDE}",
    )


def infer_data_task(train_file: Path, target: str) -> tuple[str, str] | None:
    """(task, reason) from the target column of `train_file`, or None when it
    cannot be read. Cached per file version, since configs are loaded often."""
    try:
        stat = train_file.stat()
    except OSError:
        return None
    return _infer_cached(str(train_file), stat.st_size, stat.st_mtime_ns, target)


@functools.lru_cache(maxsize=32)
def _infer_cached(path: str, size: int, mtime_ns: int, target: str) -> tuple[str, str] | None:
    """In memory, then on disk in the store: a config load then costs no pandas import."""
    key = hashlib.sha256(f"{path}\0{size}\0{mtime_ns}\0{target}".encode()).hexdigest()
    cache: Path | None = None
    try:
        from workbench.core import paths

        cache = paths.home() / "cache" / "task-inference" / f"{key[:40]}.json"
        found = json.loads(cache.read_text(encoding="utf-8"))
        if isinstance(found, list) and len(found) == 2 and found[0] in TASKS:
            return str(found[0]), str(found[1])
    except (OSError, ValueError, WorkbenchError):
        pass
    inferred = _infer_from_file(path, target)
    if inferred is not None and cache is not None:
        with contextlib.suppress(OSError):
            cache.parent.mkdir(parents=True, exist_ok=True)
            # Not files.atomic_write_text: a cache, deliberately not fsynced.
            partial = cache.with_name(f"{cache.stem}.{os.getpid()}.tmp")
            partial.write_text(json.dumps(list(inferred)), encoding="utf-8")
            os.replace(partial, cache)
    return inferred


def _infer_from_file(path: str, target: str) -> tuple[str, str] | None:
    import pandas as pd

    column: Any
    try:
        if path.lower().endswith((".parquet", ".pq")):
            column = pd.read_parquet(path, columns=[target])[target]
        else:
            column = pd.read_csv(path, usecols=[target])[target]
    except Exception:  # noqa: BLE001 - any unreadable file: the trainer says why
        return None
    return explain_task(column)
