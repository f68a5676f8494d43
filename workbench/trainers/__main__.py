"""Entry point of a built-in trainer process, started by the run's supervisor."""

from __future__ import annotations

import json
import os
import sys
import time

from workbench.core import paths
from workbench.core.errors import WorkbenchError
from workbench.core.metric_rules import user_params
from workbench.trainers import failure


def train() -> None:
    """Train the project's built-in trainer in the supervised run; a failure leaves
    its one-line reason for the run's record (see `workbench.trainers.failure`)."""
    try:
        _train()
    except Exception as exc:
        run_id = os.environ.get("WORKBENCH_RUN_ID", "")
        if run_id.isdigit():
            failure.record(int(run_id), failure.one_line(exc))
        raise


def _train() -> None:
    import workbench as wb
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
    if config.cv:
        _cross_validate(config, table, params, x_train, y_train)

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
    schema_file.write_text(json.dumps(schema, indent=2, default=str))
    # The hold-out rows, so that another model can be scored on the same data.
    holdout_file = outputs / "holdout.parquet"
    x_test.assign(**{config.target: y_test}).to_parquet(holdout_file, index=False)
    wb.log_artifact(model_file, kind="model")
    wb.log_artifact(schema_file, kind="schema")
    wb.log_artifact(holdout_file, kind="evaluation")
    print(f"saved {model_file.name} in {time.time() - started:.1f}s", flush=True)


def _cross_validate(config, table, params, x_train, y_train) -> None:
    """`cv_fold_<metric>` (step = fold) as folds end, then their mean and std."""
    import workbench as wb
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


if __name__ == "__main__":
    try:
        train()
    except WorkbenchError as exc:
        print(f"workbench: {exc.message}", file=sys.stderr)
        sys.exit(2)
