"""`project init`: a ready-to-train project folder, from a bundled dataset or the user's own.

A template names a trainer; the data is either a small real dataset bundled
with scikit-learn (so a new project trains offline straight away) or the
user's file (`--data FILE --target COLUMN`), whose target decides the task and
the primary metric. Everything is checked before anything is created, and a
failure part-way removes what was made.

`workbench.toml` is written from values, each serialised by tomli-w and the
whole text parsed back and compared, so a name or a column can never inject
TOML.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tomllib
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.config.project import (
    CONFIG_NAME,
    DATA_SUFFIXES,
    default_name,
    explain_task,
    metrics_for,
    read_columns,
    valid_name,
    with_override_hint,
)
from workbench.core.errors import ConfigError, UsageError

MIN_ROWS = 10  # what the built-in trainers need
BINARY_SNIFF_BYTES = 64 * 1024

_SCRIPT = '''\
"""Trains a logistic regression epoch by epoch and reports to the workbench.

Run it with `workbench run start {name}`; override params with
`--set epochs=20`. The fitted pipeline is logged with `wb.log_model`, so each
run that succeeds is a model version: gated, promoted, exported and served.
"""

import pandas as pd
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score, f1_score, log_loss
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import workbench as wb

params = wb.params()
config = wb.project_config()
# [data] train, or the reference plus accepted new data (Parquet) when automation retrains.
data_file = wb.train_file()
frame = pd.read_parquet(data_file) if data_file.suffix == ".parquet" else pd.read_csv(data_file)
y = frame.pop(config["data"]["target"])
# [train] test_size and seed; rows held out by a hash of their content, so a
# retrained model and the champion are compared on rows neither trained on.
x_train, x_test, y_train, y_test = wb.holdout_split(frame, y)
scaler = StandardScaler().fit(x_train)
scaled_train, scaled_test = scaler.transform(x_train), scaler.transform(x_test)

model = SGDClassifier(loss="log_loss", alpha=float(params.get("alpha", 0.001)), random_state=0)
classes = sorted(y.unique())
for epoch in range(1, int(params.get("epochs", 15)) + 1):
    model.partial_fit(scaled_train, y_train, classes=classes)
    loss = log_loss(y_test, model.predict_proba(scaled_test), labels=classes)
    accuracy = model.score(scaled_test, y_test)
    wb.log_metrics({{"val_loss": loss, "val_accuracy": accuracy}}, step=epoch)
    print(f"epoch {{epoch}}: val_loss={{loss:.4f}}", flush=True)

predicted = model.predict(scaled_test)
wb.log_metrics({{
    "accuracy": accuracy_score(y_test, predicted),
    "f1": f1_score(y_test, predicted, average="macro"),
}})
# Raw feature columns in, labels out: what `workbench predict` and `serve` will call.
wb.log_model(make_pipeline(scaler, model), x_test, y_test, x_train=x_train)
'''

# The script for the user's own data: any mix of numeric and text columns,
# missing values, and either task (from [project] task).
_DATA_SCRIPT = '''\
"""Trains a linear model epoch by epoch on this project's data and reports to the workbench.

Run it with `workbench run start {name}`; override params with
`--set epochs=20`. Text columns are one-hot encoded, missing values imputed.
The fitted pipeline is logged with `wb.log_model`, so each run that succeeds
is a model version: gated, promoted, exported and served.
"""

import numpy as np
import pandas as pd
from sklearn import metrics
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import workbench as wb

params = wb.params()
config = wb.project_config()
task = config["project"]["task"]
target = config["data"]["target"]
# [data] train, or the reference plus accepted new data (Parquet) when automation retrains.
data_file = wb.train_file()
frame = pd.read_parquet(data_file) if data_file.suffix == ".parquet" else pd.read_csv(data_file)
frame = frame[frame[target].notna()]
y = frame.pop(target)
if task == "classification":
    y = y.astype(str)
numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
text = [c for c in frame.columns if c not in numeric]
frame[text] = frame[text].astype(object).where(frame[text].notna(), None).astype(str)
# [train] test_size and seed; rows held out by a hash of their content, so a
# retrained model and the champion are compared on rows neither trained on.
x_train, x_test, y_train, y_test = wb.holdout_split(frame, y)
prepare = ColumnTransformer(
    [
        ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("text", OneHotEncoder(handle_unknown="ignore"), text),
    ]
).fit(x_train)
prepared_train, prepared_test = prepare.transform(x_train), prepare.transform(x_test)

alpha = float(params.get("alpha", 0.001))
if task == "classification":
    model = SGDClassifier(loss="log_loss", alpha=alpha, random_state=0)
    classes = sorted(y.unique())
else:
    model = SGDRegressor(alpha=alpha, random_state=0)
for epoch in range(1, int(params.get("epochs", 15)) + 1):
    if task == "classification":
        model.partial_fit(prepared_train, y_train, classes=classes)
        proba = model.predict_proba(prepared_test)
        loss = metrics.log_loss(y_test, proba, labels=classes)
    else:
        model.partial_fit(prepared_train, y_train)
        loss = float(np.sqrt(metrics.mean_squared_error(y_test, model.predict(prepared_test))))
    wb.log_metrics({{"val_loss": loss}}, step=epoch)
    print(f"epoch {{epoch}}: val_loss={{loss:.4f}}", flush=True)

predicted = model.predict(prepared_test)
if task == "classification":
    scores = {{
        "accuracy": metrics.accuracy_score(y_test, predicted),
        "f1": metrics.f1_score(y_test, predicted, average="macro"),
        "log_loss": metrics.log_loss(y_test, model.predict_proba(prepared_test), labels=classes),
    }}
    if len(classes) == 2 and y_test.nunique() == 2:
        positive = model.predict_proba(prepared_test)[:, 1]
        scores["roc_auc"] = metrics.roc_auc_score(y_test == classes[1], positive)
else:
    scores = {{
        "rmse": float(np.sqrt(metrics.mean_squared_error(y_test, predicted))),
        "mae": metrics.mean_absolute_error(y_test, predicted),
        "r2": metrics.r2_score(y_test, predicted),
    }}
wb.log_metrics(scores)
# Raw feature columns in, predictions out: what `workbench predict` and `serve` will call.
wb.log_model(make_pipeline(prepare, model), x_test, y_test, x_train=x_train)
'''

TEMPLATES = {
    "lightgbm": dict(
        dataset="load_breast_cancer",
        target="diagnosis",
        trainer="lightgbm",
        metric="roc_auc",
        params={"n_estimators": 100, "learning_rate": 0.05, "num_leaves": 15},
        description="Breast cancer diagnosis from cell measurements (LightGBM)",
    ),
    "sklearn": dict(
        dataset="load_diabetes",
        target="progression",
        trainer="sklearn:sklearn.ensemble.HistGradientBoostingRegressor",
        metric="rmse",
        params={"max_iter": 200, "learning_rate": 0.05},
        description="Diabetes progression after one year (scikit-learn)",
    ),
    "script": dict(
        dataset="load_wine",
        target="cultivar",
        trainer="script",
        metric="accuracy",
        params={"epochs": 15, "alpha": 0.001},
        description="Wine cultivar from chemical analysis (your own training script)",
    ),
}
_SKLEARN_FOR_TASK = {
    "classification": "sklearn:sklearn.ensemble.HistGradientBoostingClassifier",
    "regression": "sklearn:sklearn.ensemble.HistGradientBoostingRegressor",
}


@dataclass
class Inferred:
    """What `project init --data` read from the user's data, and why it chose what it did."""

    task: str
    task_reason: str
    metric: str
    metric_reason: str
    rows: int
    columns: int
    classes: int | None = None

    def describe(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Plan:
    """A checked project to create: nothing exists yet when a Plan is made."""

    folder: Path
    name: str
    template: str
    config_text: str
    data_name: str  # the training file, relative to the folder
    source: Path | None = None  # the user's data file (None: a bundled dataset)
    link: bool = False
    inferred: Inferred | None = None
    script: str | None = None
    created: list[Path] = field(default_factory=list)  # what create() made, for undo


def plan_project(
    path: Path,
    template: str,
    name: str | None = None,
    *,
    data: Path | None = None,
    target: str | None = None,
    link: bool = False,
) -> Plan:
    """Check every input of `project init` and say what would be made; creates nothing."""
    if template not in TEMPLATES:
        raise UsageError(f"unknown template {template!r}; expected one of {', '.join(TEMPLATES)}")
    folder = _check_folder(path)
    if name is None:
        name = default_name(folder.name)
    elif not valid_name(name):
        raise UsageError(
            f"--name: expected 1-64 letters, digits, '.', '_' or '-', starting with a letter "
            f"or digit (got {name!r})"
        )
    if (data is None) != (target is None):
        raise UsageError("--data and --target go together: the file and its target column")
    spec = dict(TEMPLATES[template])
    if data is None:
        return Plan(
            folder=folder,
            name=name,
            template=template,
            config_text=_config_text(name, spec, template, None, None),
            data_name="data/train.csv",
            script=_SCRIPT.format(name=name) if template == "script" else None,
        )
    assert target is not None
    source, suffix = _check_data_file(data)
    if not link:
        _check_room(folder, source)
    data_name = "data/train" + suffix
    inferred = _infer(source, target)
    spec["target"] = target
    spec["metric"] = inferred.metric
    spec["description"] = f"{target} from {_printable(source.name)} ({template})"
    if template == "sklearn":
        spec["trainer"] = _SKLEARN_FOR_TASK[inferred.task]
    origin = ("a link to " if link else "a copy of ") + str(source)
    return Plan(
        folder=folder,
        name=name,
        template=template,
        config_text=_config_text(name, spec, template, inferred, (data_name, origin)),
        data_name=data_name,
        source=source,
        link=link,
        inferred=inferred,
        script=_DATA_SCRIPT.format(name=name) if template == "script" else None,
    )


def create(plan: Plan) -> Path:
    """Make the planned folder; on any failure remove what was made and re-raise."""
    try:
        _make_dirs(plan)
        train = plan.folder / plan.data_name
        if plan.source is None:
            spec = TEMPLATES[plan.template]
            _write_dataset(train, spec["dataset"], spec["target"])
        elif plan.link:
            train.symlink_to(plan.source)
        else:
            shutil.copyfile(plan.source, train)
        if plan.script is not None:
            (plan.folder / "train.py").write_text(plan.script, encoding="utf-8")
        (plan.folder / CONFIG_NAME).write_text(plan.config_text, encoding="utf-8")
    except BaseException as exc:
        undo(plan)
        if isinstance(exc, OSError):
            raise UsageError(f"cannot create the project in {plan.folder}: {exc}") from exc
        raise
    return plan.folder


def undo(plan: Plan) -> None:
    """Remove what `create` made: the folders it created, or, in a folder that
    was there (empty) before, the files it wrote."""
    for path in reversed(plan.created):
        if path.is_symlink() or path.is_file():
            path.unlink(missing_ok=True)
        elif path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
    plan.created.clear()


def init_project(
    path: Path,
    template: str,
    name: str | None = None,
    *,
    data: Path | None = None,
    target: str | None = None,
    link: bool = False,
) -> Path:
    """Create a ready-to-train project folder (checked first; nothing is left on failure)."""
    return create(plan_project(path, template, name, data=data, target=target, link=link))


def _check_folder(path: Path) -> Path:
    folder = Path(os.path.abspath(path.expanduser()))
    if folder.is_symlink() and not folder.exists():
        raise UsageError(f"{folder} is a broken symbolic link")
    if folder.exists():
        if not folder.is_dir():
            raise UsageError(f"{folder} already exists and is not a folder")
        if any(folder.iterdir()):
            raise UsageError(f"{folder} already exists and is not an empty folder")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise UsageError(f"{folder}: no permission to write there")
        return folder.resolve()
    parent = folder.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{folder}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{folder}: no permission to create folders in {parent}")
    return folder


def _make_dirs(plan: Plan) -> None:
    """Create the folder (recording the topmost folder made) and data/incoming."""
    top = plan.folder
    while not top.parent.exists():
        top = top.parent
    if not plan.folder.exists():
        plan.folder.mkdir(parents=True)
        plan.created.append(top)
    for sub in ("data", "data/incoming"):
        (plan.folder / sub).mkdir()
        plan.created.append(plan.folder / sub)
    for relative in (plan.data_name, "train.py", CONFIG_NAME):
        plan.created.append(plan.folder / relative)  # files: removed if made


def _check_room(folder: Path, source: Path) -> None:
    """A copy must fit on the disk, with room to spare for the runs."""
    existing = folder
    while not existing.exists():
        existing = existing.parent
    size, free = source.stat().st_size, shutil.disk_usage(existing).free
    if size + 16 * 2**20 > free:
        raise UsageError(
            f"--data: copying {source} needs {size / 2**20:.0f} MiB and {existing} has"
            f" {free / 2**20:.0f} MiB free; use --link to train on the file where it is"
        )


def _check_data_file(data: Path) -> tuple[Path, str]:
    source = Path(os.path.abspath(data.expanduser()))
    if not source.exists():
        raise UsageError(f"--data: {source}: no such file")
    source = source.resolve()
    if not source.is_file():
        raise UsageError(f"--data: {source} is not a file")
    lowered = source.name.lower()
    suffix = next((s for s in DATA_SUFFIXES if lowered.endswith(s)), None)
    if suffix is None:
        raise UsageError(
            f"--data: {source}: expected a CSV or Parquet file ending in {', '.join(DATA_SUFFIXES)}"
        )
    try:
        size = source.stat().st_size
        with open(source, "rb") as fh:
            head = fh.read(BINARY_SNIFF_BYTES)
    except OSError as exc:
        raise UsageError(f"--data: cannot read {source}: {exc.strerror or exc}") from exc
    if size == 0:
        raise UsageError(f"--data: {source} is empty")
    if suffix == ".csv.gz":
        try:
            with gzip.open(source, "rb") as fh:
                head = fh.read(BINARY_SNIFF_BYTES)
        except (OSError, EOFError, zlib.error) as exc:
            raise UsageError(f"--data: cannot read {source} as gzip: {exc}") from exc
    if suffix in (".csv", ".csv.gz") and b"\x00" in head:
        raise UsageError(f"--data: {source} holds binary data, not CSV text")
    return source, suffix


def _infer(source: Path, target: str) -> Inferred:
    """Read the file once, as the trainers will, and infer the task and metric."""
    try:  # the header as the config check reads it, so the project it makes loads
        header = read_columns(source, source)
    except ConfigError as exc:
        raise UsageError(f"--data: {exc.problem}") from exc
    _check_target(source, target, header)
    try:
        frame = _read_table(source)
    except Exception as exc:  # noqa: BLE001 - any parser's error: say why, one line
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise UsageError(f"--data: cannot read {source} as a table: {reason}") from exc
    columns = [str(c) for c in frame.columns]
    _check_target(source, target, columns)
    if len(frame.columns) < 2:
        raise UsageError(f"--data: {source} has no column besides the target {target!r}")
    column = frame[target]
    if column.ndim != 1:
        raise UsageError(f"--target: {target!r} names more than one column in {source}")
    values = column.dropna()
    if len(values) < MIN_ROWS:
        raise UsageError(
            f"--data: {source} has {len(values)} rows with a {target!r} value; "
            f"need at least {MIN_ROWS}"
        )
    distinct = int(values.nunique())
    if distinct < 2:
        raise UsageError(
            f"--target: {target!r} has a single value in {source}; there is nothing to learn"
        )
    task, task_reason = explain_task(column)
    metric, metric_reason = _choose_metric(task, distinct)
    return Inferred(
        task=task,
        task_reason=task_reason,
        metric=metric,
        metric_reason=metric_reason,
        rows=len(frame),
        columns=len(columns),
        classes=distinct if task == "classification" else None,
    )


def _read_table(source: Path) -> Any:
    """The table as the trainers read it (pandas, compression from the suffix). A
    row with more fields than the header is refused: pandas would silently make
    the extra leading fields an index and shift every column."""
    import warnings

    import pandas as pd

    if source.name.lower().endswith((".parquet", ".pq")):
        return pd.read_parquet(source)
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        try:
            return pd.read_csv(source, index_col=False)
        except pd.errors.ParserWarning:
            raise ValueError("some rows have more fields than the header") from None


def _check_target(source: Path, target: str, columns: list[str]) -> None:
    if target not in columns:
        shown = ", ".join(_short(repr(c)) for c in columns[:40])
        more = f" and {len(columns) - 40} more" if len(columns) > 40 else ""
        raise UsageError(f"--target: no column {target!r} in {source} (its columns: {shown}{more})")


def _choose_metric(task: str, distinct: int) -> tuple[str, str]:
    if task == "regression":
        return "rmse", "the error in the target's own units"
    if distinct == 2:
        return "roc_auc", "two classes: ranks by predicted probability at any threshold"
    return "f1", f"{distinct} classes: macro F1 counts each class equally, however rare"


# --- workbench.toml ---------------------------------------------------------------


def _config_text(
    name: str,
    spec: dict[str, Any],
    template: str,
    inferred: Inferred | None,
    data: tuple[str, str] | None,
) -> str:
    """The commented workbench.toml; every value serialised by tomli-w and the
    text parsed back to check it says exactly what was meant."""
    lines = ["# Made by `workbench project init`; every key is described in the README."]
    expected: dict[str, dict[str, Any]] = {}

    def section(title: str) -> None:
        lines.append(f"\n[{title}]")
        expected[title] = {}

    def put(key: str, value: Any, comment: str = "") -> None:
        expected[next(reversed(expected))][key] = value
        text = f"{key} = {_value(value)}"
        lines.append(f"{text}  # {_printable(comment)}" if comment else text)

    def note(text: str) -> None:
        lines.append(f"# {_printable(text)}")

    section("project")
    put("name", name)
    if inferred is None:
        note('task = "classification"  # or "regression"; inferred from the target when absent')
    else:
        note(f"Inferred from {spec['target']!r}: {with_override_hint(inferred.task_reason)}.")
        put("task", inferred.task, '"classification" or "regression"')
    put("description", spec["description"])

    section("data")
    train, origin = data or ("data/train.csv", "")
    put("train", train, origin)
    put("target", spec["target"])
    put("watch", ["data/incoming"], "new data files here are validated (and retrain)")

    section("train")
    put("trainer", spec["trainer"])
    if template == "script":
        put("script", "train.py")
    if inferred is not None:
        note(f"The promotion gate compares this; {inferred.metric_reason}.")
        note(f"Metrics that fit {inferred.task}: {', '.join(metrics_for(inferred.task))}.")
    put("metric", spec["metric"])
    put("test_size", 0.2, "the share of rows held out for scoring")
    put("seed", 42)
    put("params", spec["params"])

    section("automation")
    put("on_new_data", "validate-and-retrain", 'or "validate" / "off"')
    put("promote", "if-better", 'or "manual" / "always"')
    put("export", ["bundle"])

    text = "\n".join(lines) + "\n"
    if tomllib.loads(text) != expected:  # a value that did not survive: never write it
        raise UsageError("cannot write workbench.toml for these values")
    return text


def _value(value: Any) -> str:
    """A TOML value; tables inline, keys quoted when they are not bare."""
    import tomli_w

    if isinstance(value, dict):
        items = ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return tomli_w.dumps({"v": value}).split("=", 1)[1].strip()


def _key(key: str) -> str:
    import tomli_w

    return tomli_w.dumps({key: 0}).rsplit("=", 1)[0].strip()


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _printable(text: str) -> str:
    """Text safe inside a TOML comment: no newlines or control characters."""
    return "".join(c if c.isprintable() else "?" for c in str(text))


def _write_dataset(target_file: Path, loader: str, target: str) -> None:
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, loader)(as_frame=True)
    frame = bunch.frame.rename(columns={"target": target})
    if hasattr(bunch, "target_names") and frame[target].dtype.kind in "iu":
        names = list(bunch.target_names)
        frame[target] = frame[target].map(lambda i: str(names[i]))
    frame.round(5).to_csv(target_file, index=False)
