"""A built-in trainer's run, from the training table to the saved model: what the
process the supervisor starts (`python -m workbench.trainers`) does.

The run is handed in as a `RunLog`, the part of the tracking API a trainer uses
(the `workbench.tracking` module is one), so the trainers never import the layers
above them; `workbench.trainers.__main__` binds the real one.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Protocol

from workbench.core import env, paths
from workbench.core.files import atomic_write_text
from workbench.core.metric_rules import user_params
from workbench.trainers import failure, threads


class ActiveRun(Protocol):
    id: int


class RunLog(Protocol):
    """What a trainer process needs from the run it writes to."""

    def active_run(self) -> ActiveRun: ...

    def project_dir(self) -> Path: ...

    def params(self) -> dict[str, Any]: ...

    def train_file(self) -> Path: ...

    def log_params(self, values: Any, /) -> None: ...

    def log_metric(self, key: str, value: float, step: int | None = None) -> None: ...

    def log_metrics(self, values: Any, step: int | None = None) -> None: ...

    def log_artifact(self, path: Any, name: str | None = None, kind: str | None = None) -> str: ...


def train(run: RunLog) -> None:
    """Train the project's built-in trainer in the supervised run; a failure leaves
    its one-line reason for the run's record (see `workbench.trainers.failure`)."""
    try:
        _train(run)
    except Exception as exc:
        run_id = os.environ.get(env.RUN_ID, "")
        if run_id.isdigit():
            failure.record(int(run_id), failure.one_line(exc))
        raise


def _train(wb: RunLog) -> None:
    from workbench.config.project import load_config
    from workbench.trainers.metrics import classification_metrics, regression_metrics
    from workbench.trainers.params import check_params
    from workbench.trainers.tabular import (
        TrainingDataError,
        _plain,
        feature_schema,
        holdout_split,
        load_training_table,
    )

    config = load_config(wb.project_dir())
    params = wb.params()
    train_file = wb.train_file()
    # Keys starting with "_" are the workbench's own (e.g. the pipeline that
    # started the run), not the estimator's.
    params = user_params(params)
    check_params(config.trainer, params)
    started = time.time()
    table = load_training_table(config, train_file)
    print(
        f"{train_file.name}: {len(table.features)} rows, "
        f"{len(table.numeric)} numeric and {len(table.categorical)} categorical features, "
        f"task {table.task}",
        flush=True,
    )
    trainer = _make_trainer(config, table, params)
    try:
        x_train, x_test, y_train, y_test = holdout_split(
            table.features, table.target, config.test_size, config.seed
        )
    except ValueError as exc:  # too few rows to hold any out
        raise TrainingDataError(str(exc)) from None
    if table.task == "classification" and y_train.nunique() < 2:
        raise TrainingDataError(
            f"the training rows hold one class only ({_plain(y_train.iloc[0])!r}) once"
            f" {len(x_test)} rows are held out; add rows of the other classes"
        )
    wb.log_params({"_task": table.task, "_rows_train": len(x_train), "_rows_test": len(x_test)})
    fit_threads = threads.fit_threads(len(table.features), params)
    if fit_threads is not None:
        print(f"fitting on {fit_threads} thread (a small table; n_jobs chooses)", flush=True)
    with threads.limited(fit_threads):
        if config.cv:
            _cross_validate(wb, config, table, params, x_train, y_train)
        # Curves are logged as they grow when the trainer can report them, else at the end.
        live = hasattr(trainer, "on_iteration")
        if live:
            trainer.on_iteration = lambda step, scores: wb.log_metrics(scores, step=step)
        curves = trainer.fit(x_train, y_train, x_test, y_test)
    for key, values in {} if live else curves.items():
        for step, value in enumerate(values, start=1):
            wb.log_metric(key, value, step=step)
    pred, proba = trainer.predict(x_test)
    if table.task == "classification":
        scores = classification_metrics(y_test, pred, proba, trainer.classes)
    else:
        scores = regression_metrics(y_test, pred)
    wb.log_metrics(scores)
    print("hold-out: " + ", ".join(f"{k}={v:.4f}" for k, v in scores.items()), flush=True)

    outputs = paths.run_dir(wb.active_run().id) / "outputs"
    outputs.mkdir(parents=True, exist_ok=True)
    model_file = trainer.save(outputs)
    schema_file = outputs / "feature_schema.json"
    schema = feature_schema(table, trainer.classes)
    schema["framework"] = trainer.framework
    schema["framework_version"] = trainer.framework_version()
    schema["trainer"] = config.trainer.partition(":")[0]
    schema["model_file"] = model_file.name
    atomic_write_text(schema_file, json.dumps(schema, indent=2, default=str))
    # The hold-out rows, so that another model can be scored on the same data.
    holdout_file = outputs / "holdout.parquet"
    x_test.assign(**{config.target: y_test}).to_parquet(holdout_file, index=False)
    wb.log_artifact(model_file, kind="model")
    wb.log_artifact(schema_file, kind="schema")
    wb.log_artifact(holdout_file, kind="evaluation")
    print(f"saved {model_file.name} in {time.time() - started:.1f}s", flush=True)


def _cross_validate(wb: RunLog, config, table, params, x_train, y_train) -> None:
    """`cv_fold_<metric>` (step = fold) as folds end, then their mean and std."""
    from workbench.trainers.cv import cross_validate, summarize

    def on_fold(fold: int, scores: dict[str, float]) -> None:
        wb.log_metrics({f"cv_fold_{k}": v for k, v in scores.items()}, step=fold)

    scores = cross_validate(
        lambda: _make_trainer(config, table, params),
        table.task,
        x_train,
        y_train,
        config.cv,
        config.seed,
        on_fold,
    )
    summary = summarize(scores)
    wb.log_metrics(summary)
    print(
        f"cross-validation ({config.cv} folds): "
        + ", ".join(
            f"{k}={summary[f'cv_{k}_mean']:.4f} ± {summary[f'cv_{k}_std']:.4f}" for k in scores
        ),
        flush=True,
    )


def _make_trainer(config, table, params):
    """The trainer registered under the configured name: built in, or from a plugin
    (installed, or a file in the project's plugins/ folder)."""
    from workbench.plugins import trainer_class

    name, _, estimator = config.trainer.partition(":")
    cls = trainer_class(name, config.root)
    if estimator:  # sklearn:<dotted estimator path>
        return cls(table, params, config.seed, estimator)
    return cls(table, params, config.seed)
