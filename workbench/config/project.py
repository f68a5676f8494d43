"""`workbench.toml`: parsed with tomllib and validated key by key.

Every problem raises `ConfigError` naming the file, the key and what was
expected, so the CLI can print it and exit 2 without a traceback.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import functools
import gzip
import hashlib
import json
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.automation.datafiles import DATA_SUFFIXES
from workbench.core.errors import ConfigError, UsageError, WorkbenchError
from workbench.sweeps.space import SweepConfig, check_sweep

CONFIG_NAME = "workbench.toml"
TASKS = ("classification", "regression")
BUILTIN_TRAINERS = ("lightgbm", "script")
CLASSIFICATION_METRICS = ("accuracy", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("rmse", "mae", "r2")
METRICS_BY_TASK = {"classification": CLASSIFICATION_METRICS, "regression": REGRESSION_METRICS}
MAX_SEED = 2**32 - 1  # numpy's and scikit-learn's random_state limit
MAX_FOLDS = 100
MAX_MARGIN = 1e9
MAX_THRESHOLD = 1e9
ON_NEW_DATA = ("validate-and-retrain", "validate", "off")
PROMOTE = ("if-better", "manual", "always")
RETRAIN_ON = ("new-data", "drift")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_DOTTED = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+$")

# section -> key -> expected type (for unknown-key detection and type checks)
_SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "project": {"name": str, "task": str, "description": str},
    "data": {"train": str, "target": str, "watch": list},
    "train": {
        "trainer": str,
        "script": str,
        "params": dict,
        "metric": str,
        "test_size": (float, int),
        "seed": int,
        "cv": int,
    },
    "automation": {
        "on_new_data": str,
        "promote": str,
        "margin": (float, int),
        "gate": str,
        "retrain_on": str,
        "export": list,
    },
    "drift": {"share": (float, int), "method": str, "threshold": (float, int), "columns": dict},
    "sweep": {
        "space": dict,
        "sampler": str,
        "pruner": str,
        "seed": int,
        "trials": int,
        "parallel": int,
    },
}
DRIFT_METHODS = ("ks", "chisquare", "z", "wasserstein", "jensenshannon", "psi")


@dataclass(frozen=True)
class ProjectConfig:
    """A validated `workbench.toml`."""

    file: Path
    name: str
    target: str
    train_file: Path
    trainer: str
    task: str | None = None
    description: str = ""
    watch: tuple[Path, ...] = ()
    script: Path | None = None
    params: dict[str, Any] = field(default_factory=dict)
    metric: str | None = None
    test_size: float = 0.2
    seed: int = 42
    cv: int | None = None  # K-fold cross-validation on the training split
    sweep: SweepConfig | None = None  # [sweep]: the search space of `workbench sweep`
    on_new_data: str = "validate"
    promote: str = "if-better"
    margin: float = 0.0  # how much the primary metric must improve for a promotion
    retrain_on: str = "new-data"  # or "drift": retrain only on drift or degradation
    export: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.file.parent

    def primary_metric(self, task: str | None) -> str:
        """`[train] metric`, else a default for the task."""
        if self.metric:
            return self.metric
        return "rmse" if (task or self.task) == "regression" else "accuracy"

    @property
    def sklearn_estimator(self) -> str | None:
        """Dotted path of the estimator for `trainer = "sklearn:..."`."""
        return self.trainer.split(":", 1)[1] if self.trainer.startswith("sklearn:") else None


def load_config(folder: Path) -> ProjectConfig:
    """Read and validate `folder/workbench.toml`."""
    file = (folder / CONFIG_NAME).resolve()
    if not folder.exists():
        raise UsageError(f"{folder}: no such folder")
    if not file.is_file():
        raise UsageError(f"{folder} has no {CONFIG_NAME}; create one with `workbench project init`")
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, None, f"not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(file, None, "not UTF-8 text") from exc
    return _validate(file, raw)


def _validate(file: Path, raw: dict[str, Any]) -> ProjectConfig:
    _check_shape(file, raw)
    _check_finite(file, raw)
    project, data, train = raw.get("project", {}), raw.get("data", {}), raw.get("train", {})
    auto = raw.get("automation", {})
    root = file.parent

    name = project["name"] if "name" in project else default_name(root.name)
    if not valid_name(name):
        raise ConfigError(
            file, "project.name", f"expected letters, digits, '.', '_' or '-' (got {name!r})"
        )
    task = project.get("task")
    _check_choice(file, "project.task", task, TASKS)

    for key in ("train", "target"):
        if key not in data:
            raise ConfigError(file, f"data.{key}", "missing; expected a string")
    train_file = (root / data["train"]).resolve()
    if not train_file.name.lower().endswith(DATA_SUFFIXES):
        raise ConfigError(
            file, "data.train", f"expected a file ending in {', '.join(DATA_SUFFIXES)}"
        )
    if not train_file.is_file():
        raise ConfigError(file, "data.train", f"file not found: {train_file}")
    columns = read_columns(train_file, file)
    if data["target"] not in columns:
        raise ConfigError(
            file,
            "data.target",
            f"column {data['target']!r} is not in {data['train']} "
            f"(columns: {', '.join(repr(c) for c in columns)})",
        )
    watch = data.get("watch", [])
    if not all(isinstance(w, str) for w in watch):
        raise ConfigError(file, "data.watch", "expected a list of folder paths (strings)")
    try:
        watch_paths = tuple((root / w).resolve() for w in watch)
    except RuntimeError as exc:  # pathlib's "Symlink loop from ..."
        raise ConfigError(file, "data.watch", f"a symbolic link loop ({exc})") from None

    trainer = train.get("trainer")
    if trainer is None:
        raise ConfigError(file, "train.trainer", "missing; expected " + _trainer_choices())
    estimator = trainer.split(":", 1)[1] if trainer.startswith("sklearn:") else None
    if trainer not in BUILTIN_TRAINERS and not (estimator and _DOTTED.match(estimator)):
        _check_plugin_trainer(file, trainer)
    script = None
    if trainer == "script":
        if "script" not in train:
            raise ConfigError(file, "train.script", 'missing; required when trainer = "script"')
        script = (root / train["script"]).resolve()
        if not script.is_file():
            raise ConfigError(file, "train.script", f"file not found: {script}")
    metric = train.get("metric")
    if metric is not None and trainer != "script":
        _check_metric(file, metric, task, train_file, data["target"])
    test_size = float(train.get("test_size", 0.2))
    if not 0 < test_size < 1:
        raise ConfigError(
            file, "train.test_size", f"expected a fraction between 0 and 1, got {test_size}"
        )
    seed = train.get("seed", 42)
    if not 0 <= seed <= MAX_SEED:
        raise ConfigError(file, "train.seed", f"expected a whole number 0..{MAX_SEED}, got {seed}")

    cv = train.get("cv")
    if cv is not None and not 2 <= cv <= MAX_FOLDS:
        raise ConfigError(
            file, "train.cv", f"expected a number of folds >= 2 and <= {MAX_FOLDS}, got {cv}"
        )
    if cv is not None and trainer == "script":
        raise ConfigError(file, "train.cv", "only the built-in trainers cross-validate")
    sweep = check_sweep(file, raw.get("sweep", {}))
    _check_drift(file, raw.get("drift", {}))
    _check_choice(file, "automation.on_new_data", auto.get("on_new_data"), ON_NEW_DATA)
    _check_choice(file, "automation.promote", auto.get("promote"), PROMOTE)
    _check_choice(file, "automation.retrain_on", auto.get("retrain_on"), RETRAIN_ON)
    _check_choice(file, "automation.gate", auto.get("gate"), ("bootstrap", "point"))
    margin = float(auto.get("margin", 0.0))
    if not 0 <= margin <= MAX_MARGIN:
        raise ConfigError(
            file, "automation.margin", f"expected a number from 0 to {MAX_MARGIN:g}, got {margin}"
        )
    if auto.get("export"):
        from workbench.models.export import FORMATS

        for fmt in auto["export"]:
            if fmt not in FORMATS:  # built in; else load the plugins to look
                from workbench.plugins import export_formats

                _check_choice(file, "automation.export", fmt, tuple(export_formats(root)))

    return ProjectConfig(
        file=file,
        name=name,
        task=task,
        description=project.get("description", ""),
        target=data["target"],
        train_file=train_file,
        watch=watch_paths,
        trainer=trainer,
        script=script,
        params=dict(train.get("params", {})),
        metric=metric,
        test_size=test_size,
        seed=seed,
        cv=cv,
        sweep=sweep,
        on_new_data=auto.get("on_new_data", "validate"),
        promote=auto.get("promote", "if-better"),
        margin=margin,
        retrain_on=auto.get("retrain_on", "new-data"),
        export=tuple(auto.get("export", [])),
        raw=raw,
    )


def valid_name(name: str) -> bool:
    """Whether `name` can name a project: 1-64 letters, digits, '.', '_' or '-'."""
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def default_name(folder_name: str) -> str:
    """A valid project name made from a folder's name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", folder_name).strip("-._")[:64] or "project"


def _check_drift(file: Path, drift: dict[str, Any]) -> None:
    share = drift.get("share")
    if share is not None and not 0 < share <= 1:
        raise ConfigError(file, "drift.share", f"expected a fraction in (0, 1], got {share}")
    _check_threshold(file, "drift.threshold", drift.get("threshold"))
    _check_drift_method(file, "drift.method", drift.get("method"))
    for column, rules in drift.get("columns", {}).items():
        if not isinstance(rules, dict) or set(rules) - {"method", "threshold"}:
            raise ConfigError(
                file,
                f"drift.columns.{column}",
                'expected { method = "...", threshold = 0.1 } (either or both)',
            )
        method = rules.get("method")
        if method is not None and not isinstance(method, str):
            raise ConfigError(
                file, f"drift.columns.{column}.method", f"expected a string, got {method!r}"
            )
        _check_threshold(file, f"drift.columns.{column}.threshold", rules.get("threshold"))
        _check_drift_method(file, f"drift.columns.{column}.method", method)


def _check_threshold(file: Path, key: str, value: object) -> None:
    """A drift threshold: a p-value or a distance, so a finite number > 0."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(file, key, f"expected a number, got {value!r}")
    if not 0 < value <= MAX_THRESHOLD:
        raise ConfigError(
            file,
            key,
            f"expected a number greater than 0 and at most {MAX_THRESHOLD:g}, got {value}",
        )


def _check_finite(file: Path, value: Any, key: str = "") -> None:
    """No setting anywhere may be nan or +/-inf: every comparison with nan is false,
    so a nan margin or threshold would silently pass or fail every check."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(file, key or None, f"expected a finite number, got {value}")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_finite(file, v, f"{key}.{k}" if key else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_finite(file, v, f"{key}[{i}]")


def metrics_for(task: str) -> tuple[str, ...]:
    """The primary metrics the built-in trainers report for `task`."""
    try:
        from workbench.trainers.metrics import metrics_for_task
    except ImportError:
        return METRICS_BY_TASK[task]
    return tuple(metrics_for_task(task))


def with_override_hint(reason: str) -> str:
    """An inference reason that says how to override it."""
    if "override" in reason or "set [project] task" in reason:
        return reason
    return f"{reason}; set [project] task to override"


def _check_metric(file: Path, metric: str, task: str | None, train_file: Path, target: str) -> None:
    """The primary metric must be one the trainer reports for the project's task:
    `[project] task`, else the task inferred from the target column."""
    if metric not in CLASSIFICATION_METRICS + REGRESSION_METRICS:
        _check_choice(file, "train.metric", metric, CLASSIFICATION_METRICS + REGRESSION_METRICS)
    how = "[project] task"
    if task is None:
        inferred = infer_data_task(train_file, target)
        if inferred is None:  # unreadable data: the trainer reports it with the reason
            return
        task, reason = inferred
        how = f"the task inferred from {target!r}: {with_override_hint(reason)}"
    fitting = metrics_for(task)
    if metric not in fitting:
        raise ConfigError(
            file,
            "train.metric",
            f"{metric!r} does not fit a {task} task ({how}); "
            f"metrics that fit: {', '.join(fitting)}",
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
            partial = cache.with_name(f"{cache.stem}.{os.getpid()}.tmp")
            partial.write_text(json.dumps(list(inferred)), encoding="utf-8")
            os.replace(partial, cache)
    return inferred


def _infer_from_file(path: str, target: str) -> tuple[str, str] | None:
    import pandas as pd

    try:
        if path.lower().endswith((".parquet", ".pq")):
            column = pd.read_parquet(path, columns=[target])[target]
        else:
            column = pd.read_csv(path, usecols=[target])[target]
    except Exception:  # noqa: BLE001 - any unreadable file: the trainer says why
        return None
    return explain_task(column)


def explain_task(target: Any) -> tuple[str, str]:
    """(task, reason) for a target column, by the trainers' rule."""
    from workbench.trainers import tabular

    explain = getattr(tabular, "explain_task", None)
    if explain is not None:
        task, reason = explain(target)
        return str(task), str(reason)
    task = tabular.infer_task(target)
    values = target.dropna()
    distinct = int(values.nunique())
    limit = getattr(tabular, "MAX_CLASSES_FOR_INTEGER_TARGET", 20)
    if target.dtype.kind not in "biuf":
        reason = f"values are not numbers ({distinct} distinct)"
    elif target.dtype.kind == "b":
        reason = "values are true/false"
    elif task == "classification":
        reason = f"whole numbers with {distinct} distinct values (at most {limit})"
    elif bool((values % 1 == 0).all()):
        reason = f"whole numbers with {distinct} distinct values (more than {limit})"
    else:
        reason = "numbers with fractions"
    return task, reason


def _check_drift_method(file: Path, key: str, method: object) -> None:
    """A built-in method, or a plugin's drift test (plugins load only for such a name)."""
    if method is None or method in DRIFT_METHODS:
        return
    from workbench.plugins import drift_tests

    _check_choice(file, key, method, (*DRIFT_METHODS, *drift_tests(file.parent, [str(method)])))


def _check_plugin_trainer(file: Path, trainer: str) -> None:
    """`trainer` names a plugin's trainer; plugins load only for a name not built in."""
    from workbench.plugins import trainer_names, unknown_trainer_hint

    if (
        trainer == "sklearn"
        or trainer.startswith("sklearn:")
        or trainer not in trainer_names(file.parent)
    ):
        raise ConfigError(
            file,
            "train.trainer",
            f"unknown trainer {trainer!r}; expected "
            + _trainer_choices()
            + unknown_trainer_hint(file.parent),
        )


def _check_shape(file: Path, raw: dict[str, Any]) -> None:
    for section, body in raw.items():
        if section not in _SCHEMA:
            raise ConfigError(
                file, section, f"unknown section; expected one of {', '.join(_SCHEMA)}"
            )
        if not isinstance(body, dict):
            raise ConfigError(file, section, "expected a table, e.g. [" + section + "]")
        for key, value in body.items():
            expected = _SCHEMA[section].get(key)
            if expected is None:
                known = ", ".join(_SCHEMA[section])
                raise ConfigError(file, f"{section}.{key}", f"unknown key; expected one of {known}")
            if isinstance(value, bool) or not isinstance(value, expected):
                raise ConfigError(
                    file,
                    f"{section}.{key}",
                    f"expected {_type_name(expected)}, got {type(value).__name__} {value!r}",
                )


def _check_choice(file: Path, key: str, value: object, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        raise ConfigError(file, key, f"expected one of {', '.join(choices)}; got {value!r}")


def _type_name(expected: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", list: "a list", dict: "a table"}
    kinds = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(names[k] for k in kinds)


def _trainer_choices() -> str:
    return '"lightgbm", "script" or "sklearn:<dotted estimator path>"'


def read_columns(data_file: Path, config_file: Path) -> list[str]:
    """Column names of a CSV (optionally gzip) or Parquet file, read cheaply."""
    try:
        if data_file.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return list(pq.read_schema(data_file).names)
        opener = gzip.open if data_file.suffix.lower() == ".gz" else open
        # The first record, not the first line: a quoted name may hold a newline.
        with opener(data_file, "rt", encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError, ValueError, EOFError, csv.Error) as exc:
        raise ConfigError(
            config_file, "data.train", f"cannot read the header of {data_file}: {exc}"
        ) from exc
    if not header:
        raise ConfigError(config_file, "data.train", f"{data_file} is empty")
    return header  # exactly as pandas will name the columns


def parse_overrides(pairs: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """`--set key=value` pairs; values are read as TOML literals, else kept as strings."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--set expects key=value, got {pair!r}")
        try:
            value = tomllib.loads(f"v = {text.strip()}")["v"]
        except (tomllib.TOMLDecodeError, ValueError):  # ValueError: an int of > 4300 digits
            value = text.strip()
        # TOML dates and times do not survive JSON: keep what the user typed.
        out[key] = text.strip() if _has_datetime(value) else value
    return out


def _has_datetime(value: Any) -> bool:
    if isinstance(value, datetime.date | datetime.time):
        return True
    if isinstance(value, list):
        return any(_has_datetime(v) for v in value)
    if isinstance(value, dict):
        return any(_has_datetime(v) for v in value.values())
    return False
