"""Registering, listing and describing projects.

The functions here return plain dicts, the JSON documents `project list` and
`project show` print; `workbench.store.projects` has the typed records."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any

from workbench.config.project import ProjectConfig, infer_data_task, load_config
from workbench.core.errors import ConfigError, NotFoundError, UsageError
from workbench.projects.templates import Plan, create, plan_project, undo
from workbench.store import Store
from workbench.store import projects as records
from workbench.store.projects import Project


def add_project(store: Store, folder: Path) -> dict[str, Any]:
    """Register the project in `folder` (validated first); idempotent for the same folder."""
    folder = folder.expanduser().resolve()
    config = load_config(folder)
    if config.sklearn_estimator:
        check_estimator(config)
    existing = records.by_name(store, config.name)
    if existing:
        if existing.path == str(folder):
            return existing.as_dict()
        raise UsageError(
            f"a project named {config.name!r} is already registered at {existing.path}; "
            f"set a different [project] name in {config.file}"
        )
    return records.add(store, config.name, str(folder)).as_dict()


def create_project(
    store: Store,
    path: Path,
    template: str,
    name: str | None = None,
    *,
    data: Path | None = None,
    target: str | None = None,
    link: bool = False,
) -> tuple[dict[str, Any], Plan]:
    """`project init`: check everything, make the folder, register it; on any
    failure nothing is left behind (neither files nor a store row)."""
    plan = plan_project(path, template, name, data=data, target=target, link=link)
    taken = records.by_name(store, plan.name)
    if taken:
        raise UsageError(
            f"a project named {plan.name!r} is already registered at {taken.path}; "
            "choose another with --name"
        )
    create(plan)
    try:
        row = add_project(store, plan.folder)
    except BaseException:
        undo(plan)
        raise
    return row, plan


def check_estimator(config: ProjectConfig) -> None:
    """`trainer = "sklearn:<path>"` names an importable scikit-learn estimator class
    that fits the task (when the task is set). Imports the module, as training would."""
    dotted = config.sklearn_estimator or ""
    module_name, _, class_name = dotted.rpartition(".")

    def refuse(problem: str) -> ConfigError:
        return ConfigError(config.file, "train.trainer", f"sklearn:{dotted}: {problem}")

    top = module_name.split(".")[0]
    try:
        found = importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise refuse(f"no module named {top!r} is installed")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - whatever the import raised, said in one line
        raise refuse(f"cannot import {module_name}: {exc}") from exc
    cls = getattr(module, class_name, None)
    if cls is None:
        raise refuse(f"{module_name} has no {class_name!r}")
    if not (isinstance(cls, type) and hasattr(cls, "fit") and hasattr(cls, "get_params")):
        raise refuse("not a scikit-learn estimator class (one with fit and get_params)")
    from sklearn.base import ClassifierMixin, RegressorMixin

    kind = (
        "classification"
        if issubclass(cls, ClassifierMixin)
        else "regression"
        if issubclass(cls, RegressorMixin)
        else None
    )
    task = config.task
    if task is None:
        inferred = infer_data_task(config.train_file, config.target)
        task = inferred[0] if inferred else None
    if kind and task and kind != task:
        raise refuse(
            f"a {'classifier' if kind == 'classification' else 'regressor'} cannot learn a "
            f"{task} task; choose a {'regressor' if task == 'regression' else 'classifier'}"
        )


def find_project(store: Store, name: str) -> Project:
    """The project registered as `name`, else NotFoundError naming the known ones."""
    project = records.by_name(store, name)
    if project is None:
        known = records.names(store)
        hint = f" (known: {', '.join(known)})" if known else " (none registered yet)"
        raise NotFoundError(f"no project named {name!r}{hint}")
    return project


def get_project(store: Store, name: str) -> dict[str, Any]:
    """`find_project` as a dict (id, name, path, created_at)."""
    return find_project(store, name).as_dict()


def project_config(store: Store, name: str) -> tuple[dict[str, Any], ProjectConfig]:
    project = get_project(store, name)
    folder = Path(project["path"])
    if not folder.exists():
        raise NotFoundError(
            f"project {name!r} points at {folder}, which no longer exists; "
            "move it back or register the new place with `workbench project add`"
        )
    return project, load_config(folder)


def list_projects(store: Store) -> list[dict[str, Any]]:
    """Every project with its run count, latest run and whether its folder is missing."""
    return [_describe(summary) for summary in records.summaries(store)]


def show_project(store: Store, name: str) -> dict[str, Any]:
    find_project(store, name)
    found = records.summary(store, name)
    if found is None:  # removed in between
        raise NotFoundError(f"no project named {name!r}")
    summary = _describe(found)
    try:
        _, config = project_config(store, name)
    except (NotFoundError, UsageError) as exc:
        summary["config_error"] = exc.message
        return summary
    task, task_reason = config.task, "[project] task"
    if task is None:
        inferred = infer_data_task(config.train_file, config.target)
        if inferred is not None:
            task, task_reason = inferred
    summary.update(
        task=task,
        task_reason=task_reason,
        description=config.description,
        trainer=config.trainer,
        target=config.target,
        train=str(config.train_file),
        metric=config.metric,
        params=config.params,
        watch=[str(w) for w in config.watch],
        best=best_run(store, summary["id"], config),
    )
    return summary


def best_run(store: Store, project_id: int, config: ProjectConfig) -> dict[str, Any] | None:
    """The succeeded run with the best value of the primary metric."""
    if not config.metric:
        return None
    from workbench.core.metric_rules import lower_is_better

    best = records.best_run(
        store, project_id, config.metric, lower_is_better=lower_is_better(config.metric)
    )
    return best.as_dict() if best else None


def _describe(summary: records.ProjectSummary) -> dict[str, Any]:
    out = summary.as_dict()
    out["missing"] = not Path(summary.path).exists()
    return out
