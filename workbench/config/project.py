"""`workbench.toml`: one declaration per table, read by the generic checker.

Every problem raises `ConfigError` naming the file, the key and what was
expected, so the CLI can print it and exit 2 without a traceback.

Config sits below every package it configures, so it checks the file's own
structure and values and the names it knows (the built-in trainers, export
formats and drift tests). Names that only plugins add are checked through
`PluginNames`, given to `load_config` or installed once by the program that
loads plugins (`use_plugin_names`); where none is, such a name is accepted and
the layer that uses it says when it is unknown.
"""

from __future__ import annotations

import csv
import datetime
import gzip
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.config.monitor import MONITOR
from workbench.config.names import PluginNames, installed, use_plugin_names  # noqa: F401
from workbench.config.reading import read_toml
from workbench.config.spec import Key, Table, check_file
from workbench.config.sweep import SWEEP, SweepConfig, check_sweep
from workbench.config.executor import RUNS, SLURM, SlurmConfig, check_runs, check_slurm
from workbench.config.task import (  # noqa: F401 - re-exported: the project's task
    CLASSIFICATION_METRICS,
    METRICS_BY_TASK,
    REGRESSION_METRICS,
    TASKS,
    explain_task,
    infer_data_task,
    metrics_for,
    with_override_hint,
)
from workbench.config.task import _infer_cached  # noqa: F401 - the tests' helpers clear it
# DATA_SUFFIXES: the data files `[data] train` accepts; the watcher takes files by the same names.
from workbench.core.datafiles import DATA_SUFFIXES
from workbench.core.errors import ConfigError, UsageError

CONFIG_NAME = "workbench.toml"
BUILTIN_TRAINERS = ("lightgbm", "script")
# The built-in exporters of `workbench.models.export` (a test keeps the two equal).
BUILTIN_EXPORTS = ("bundle", "mlflow", "onnx")
# The built-in drift tests of `workbench.data.drift` (a test keeps the two equal).
DRIFT_METHODS = ("ks", "chisquare", "z", "wasserstein", "jensenshannon", "psi")
MAX_SEED = 2**32 - 1  # numpy's and scikit-learn's random_state limit
MAX_FOLDS = 100
MAX_MARGIN = 1e9
MAX_THRESHOLD = 1e9
ON_NEW_DATA = ("validate-and-retrain", "validate", "off")
PROMOTE = ("if-better", "manual", "always")
RETRAIN_ON = ("new-data", "drift", "monitor")
GATES = ("bootstrap", "point")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_DOTTED = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+$")
_TRAINER_CHOICES = '"lightgbm", "script" or "sklearn:<dotted estimator path>"'

PROJECT = Table(
    "project",
    (
        Key(
            "name",
            str,
            "the project's name (default: made from the folder's name)",
            pattern=_NAME.pattern,
            pattern_text="letters, digits, '.', '_' or '-' (1 to 64, not starting with '.', "
            "'_' or '-')",
        ),
        Key("task", str, "classification or regression (default: inferred)", choices=TASKS),
        Key("description", str, "one line about the project", default=""),
    ),
    "What the project is.",
)
DATA = Table(
    "data",
    (
        Key(
            "train",
            str,
            "the training data, relative to the project: " + ", ".join(DATA_SUFFIXES),
            required="a string",
        ),
        Key("target", str, "the column to predict", required="a string"),
        Key(
            "watch",
            list,
            "folders whose new data files start the pipeline",
            default=[],
            items=str,
            items_text="folder paths (strings)",
        ),
    ),
    "The data the project learns from.",
)
TRAIN = Table(
    "train",
    (
        Key("trainer", str, "the trainer: " + _TRAINER_CHOICES, required=_TRAINER_CHOICES),
        Key("script", str, 'the training script, when trainer = "script"'),
        Key("params", dict, "the trainer's parameters", default={}),
        Key("metric", str, "the primary metric (default: accuracy, or rmse for regression)"),
        Key(
            "test_size",
            (float, int),
            "the share of rows held out to score a run",
            default=0.2,
            low=0,
            high=1,
            low_open=True,
            high_open=True,
            range_text="a fraction between 0 and 1",
        ),
        Key(
            "seed",
            int,
            "the random seed of the split and the trainer",
            default=42,
            low=0,
            high=MAX_SEED,
            range_text=f"a whole number 0..{MAX_SEED}",
        ),
        Key(
            "cv",
            int,
            "K-fold cross-validation on the training split (built-in trainers)",
            low=2,
            high=MAX_FOLDS,
            range_text=f"a number of folds >= 2 and <= {MAX_FOLDS}",
        ),
    ),
    "How runs train.",
)
AUTOMATION = Table(
    "automation",
    (
        Key(
            "on_new_data",
            str,
            "what new data in a watched folder starts",
            default="validate",
            choices=ON_NEW_DATA,
        ),
        Key("promote", str, "when a new model becomes champion", default="if-better", choices=PROMOTE),
        Key(
            "margin",
            (float, int),
            "how much the primary metric must improve for a promotion",
            default=0.0,
            low=0,
            high=MAX_MARGIN,
            range_text=f"a number from 0 to {MAX_MARGIN:g}",
        ),
        Key("gate", str, "how a challenger is compared with the champion", choices=GATES),
        Key(
            "retrain_on",
            str,
            "retrain on all new data, only on drift or degradation, or when `monitor` sees it in"
            " served traffic",
            default="new-data",
            choices=RETRAIN_ON,
        ),
        Key(
            "export",
            list,
            "formats a promoted model is exported to",
            default=[],
            items=str,
            items_text="format names (strings)",
        ),
    ),
    "What the pipeline does on its own.",
)
_THRESHOLD = Key(
    "threshold",
    (float, int),
    "a p-value or a distance: drift above (distance) or below (p-value) it",
    low=0,
    high=MAX_THRESHOLD,
    low_open=True,
    range_text=f"a number greater than 0 and at most {MAX_THRESHOLD:g}",
)
_METHOD = Key("method", str, "the drift test: " + ", ".join(DRIFT_METHODS) + " or a plugin's")
DRIFT = Table(
    "drift",
    (
        Key(
            "share",
            (float, int),
            "the share of drifting columns at which the data set drifts",
            low=0,
            high=1,
            low_open=True,
            range_text="a fraction in (0, 1]",
        ),
        _METHOD,
        _THRESHOLD,
        Key(
            "columns",
            dict,
            "per-column method and threshold",
            each=Table("column", (_METHOD, _THRESHOLD), "One column's drift test."),
            each_text='{ method = "...", threshold = 0.1 } (either or both)',
        ),
    ),
    "How `data drift` decides.",
)
PROJECT_FILE = Table(
    CONFIG_NAME,
    tuple(
        Key(table.name, dict, table.help, table=table)
        for table in (PROJECT, DATA, TRAIN, AUTOMATION, DRIFT, SWEEP, MONITOR, RUNS, SLURM)
    ),
    "A project's settings.",
    word="section",
)


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
    executor: str = "local"  # [runs] executor: where the runs execute
    slurm: SlurmConfig = field(default_factory=SlurmConfig)  # [slurm]

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


def load_config(folder: Path, plugin_names: PluginNames | None = None) -> ProjectConfig:
    """Read and validate `folder/workbench.toml`; plugin names are checked with
    `plugin_names`, else with the installed ones (`use_plugin_names`), if any."""
    file = (folder / CONFIG_NAME).resolve()
    if not folder.exists():
        raise UsageError(f"{folder}: no such folder")
    if not file.is_file():
        raise UsageError(f"{folder} has no {CONFIG_NAME}; create one with `workbench project init`")
    return _validate(file, read_toml(file), plugin_names or installed())


def _validate(file: Path, raw: dict[str, Any], names: PluginNames | None) -> ProjectConfig:
    check_file(file, PROJECT_FILE, raw)
    project, data, train = raw.get("project", {}), raw.get("data", {}), raw.get("train", {})
    auto = raw.get("automation", {})
    root = file.parent
    name = project.get("name", default_name(root.name))
    task = project.get("task")

    train_file = _train_file(file, root, data)
    watch = tuple(_resolve(file, "data.watch", root, w) for w in data.get("watch", []))

    trainer = train["trainer"]
    _check_trainer(file, trainer, names)
    script = None
    if trainer == "script":
        if "script" not in train:
            raise ConfigError(file, "train.script", 'missing; required when trainer = "script"')
        script = _resolve(file, "train.script", root, train["script"])
        if not script.is_file():
            raise ConfigError(file, "train.script", f"file not found: {script}")
    metric = train.get("metric")
    if metric is not None and trainer != "script":
        _check_metric(file, metric, task, train_file, data["target"])
    if "cv" in train and trainer == "script":
        raise ConfigError(file, "train.cv", "only the built-in trainers cross-validate")
    sweep = check_sweep(file, raw.get("sweep", {}))
    _check_drift_methods(file, raw.get("drift", {}), names)
    export = tuple(auto.get("export", []))
    _check_exports(file, export, names)

    defaults = {**TRAIN.defaults(), **AUTOMATION.defaults()}
    return ProjectConfig(
        file=file,
        name=name,
        task=task,
        description=project.get("description", PROJECT.defaults()["description"]),
        target=data["target"],
        train_file=train_file,
        watch=watch,
        trainer=trainer,
        script=script,
        params=dict(train.get("params", {})),
        metric=metric,
        test_size=float(train.get("test_size", defaults["test_size"])),
        seed=train.get("seed", defaults["seed"]),
        cv=train.get("cv"),
        sweep=sweep,
        on_new_data=auto.get("on_new_data", defaults["on_new_data"]),
        promote=auto.get("promote", defaults["promote"]),
        margin=float(auto.get("margin", defaults["margin"])),
        retrain_on=auto.get("retrain_on", defaults["retrain_on"]),
        export=export,
        raw=raw,
        executor=check_runs(file, raw.get("runs", {})),
        slurm=check_slurm(file, raw.get("slurm", {})),
    )


def _resolve(file: Path, key: str, root: Path, relative: str) -> Path:
    """`relative` to the project folder, made absolute; a path the OS cannot take
    (a NUL character, a symbolic link loop) is refused naming the key."""
    try:
        return (root / relative).resolve()
    except RuntimeError as exc:  # pathlib's "Symlink loop from ..."
        raise ConfigError(file, key, f"a symbolic link loop ({exc})") from None
    except (ValueError, OSError) as exc:  # ValueError: "embedded null byte"
        raise ConfigError(file, key, f"not a usable path ({exc}): {relative!r}") from None


def _train_file(file: Path, root: Path, data: dict[str, Any]) -> Path:
    """`[data] train`: a data file that exists and has the target column."""
    train_file = _resolve(file, "data.train", root, data["train"])
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
    return train_file


def valid_name(name: str) -> bool:
    """Whether `name` can name a project: 1-64 letters, digits, '.', '_' or '-'."""
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def default_name(folder_name: str) -> str:
    """A valid project name made from a folder's name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", folder_name).strip("-._")[:64] or "project"


def _check_trainer(file: Path, trainer: str, names: PluginNames | None) -> None:
    """A built-in trainer, `sklearn:<dotted path>`, or a plugin's trainer (plugins
    are asked only for a name that is not built in)."""
    estimator = trainer.split(":", 1)[1] if trainer.startswith("sklearn:") else None
    if trainer in BUILTIN_TRAINERS or (estimator and _DOTTED.match(estimator)):
        return
    plugin = trainer != "sklearn" and estimator is None
    if plugin and (names is None or trainer in names.trainers(file.parent)):
        return  # without plugin names, the trainer's lookup says if it is unknown
    hint = names.trainer_hint(file.parent) if names is not None else ""
    raise ConfigError(
        file, "train.trainer", f"unknown trainer {trainer!r}; expected {_TRAINER_CHOICES}{hint}"
    )


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


def _check_drift_methods(file: Path, drift: dict[str, Any], names: PluginNames | None) -> None:
    """Built-in drift tests, or a plugin's (plugins are asked only for other names)."""
    methods = {"drift.method": drift.get("method")}
    for column, rules in drift.get("columns", {}).items():
        methods[f"drift.columns.{column}.method"] = rules.get("method")
    for key, method in methods.items():
        if method is None or method in DRIFT_METHODS or names is None:
            continue
        _check_choice(
            file, key, method, (*DRIFT_METHODS, *names.drift_methods(file.parent, [method]))
        )


def _check_exports(file: Path, export: tuple[str, ...], names: PluginNames | None) -> None:
    """Built-in export formats, or a plugin's (plugins are asked only for other names)."""
    for fmt in export:
        if fmt not in BUILTIN_EXPORTS and names is not None:
            _check_choice(file, "automation.export", fmt, tuple(names.export_formats(file.parent)))


def _check_choice(file: Path, key: str, value: object, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        raise ConfigError(file, key, f"expected one of {', '.join(choices)}; got {value!r}")


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
