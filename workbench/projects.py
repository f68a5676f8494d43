"""Registering, listing and describing projects."""

from __future__ import annotations

import importlib
import importlib.util
import time
from pathlib import Path
from typing import Any

from workbench.config.project import ProjectConfig, infer_data_task, load_config
from workbench.core.errors import ConfigError, NotFoundError, UsageError
from workbench.store import Store
from workbench.templates import Plan, create, plan_project, undo


def add_project(store: Store, folder: Path) -> dict[str, Any]:
    """Register the project in `folder` (validated first); idempotent for the same folder."""
    folder = folder.expanduser().resolve()
    config = load_config(folder)
    if config.sklearn_estimator:
        check_estimator(config)
    existing = store.row("SELECT * FROM projects WHERE name = ?", (config.name,))
    if existing:
        if existing["path"] == str(folder):
            return existing
        raise UsageError(
            f"a project named {config.name!r} is already registered at {existing['path']}; "
            f"set a different [project] name in {config.file}"
        )
    same_path = store.row("SELECT * FROM projects WHERE path = ?", (str(folder),))
    now = time.time()
    with store.write() as conn:
        if same_path:  # the folder was renamed in its workbench.toml
            conn.execute(
                "UPDATE projects SET name = ? WHERE id = ?", (config.name, same_path["id"])
            )
            project_id = same_path["id"]
        else:
            project_id = conn.execute(
                "INSERT INTO projects (name, path, created_at) VALUES (?, ?, ?)",
                (config.name, str(folder), now),
            ).lastrowid
        store.add_event(
            "project.added",
            f"project {config.name} registered",
            ts=now,
            project_id=project_id,
            data={"path": str(folder)},
        )
    return store.row("SELECT * FROM projects WHERE id = ?", (project_id,))  # type: ignore[return-value]


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
    taken = store.row("SELECT path FROM projects WHERE name = ?", (plan.name,))
    if taken:
        raise UsageError(
            f"a project named {plan.name!r} is already registered at {taken['path']}; "
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


def get_project(store: Store, name: str) -> dict[str, Any]:
    row = store.row("SELECT * FROM projects WHERE name = ?", (name,))
    if row is None:
        known = [r["name"] for r in store.rows("SELECT name FROM projects ORDER BY name")]
        hint = f" (known: {', '.join(known)})" if known else " (none registered yet)"
        raise NotFoundError(f"no project named {name!r}{hint}")
    return row


def project_config(store: Store, name: str) -> tuple[dict[str, Any], ProjectConfig]:
    project = get_project(store, name)
    folder = Path(project["path"])
    if not folder.exists():
        raise NotFoundError(
            f"project {name!r} points at {folder}, which no longer exists; "
            "move it back or register the new place with `workbench project add`"
        )
    return project, load_config(folder)


_SUMMARY_SQL = """
SELECT p.id, p.name, p.path, p.created_at,
       (SELECT COUNT(*) FROM runs r WHERE r.project_id = p.id) AS runs,
       (SELECT r.status FROM runs r WHERE r.project_id = p.id ORDER BY r.id DESC LIMIT 1)
           AS last_status,
       (SELECT r.id FROM runs r WHERE r.project_id = p.id ORDER BY r.id DESC LIMIT 1)
           AS last_run
FROM projects p
"""


def list_projects(store: Store) -> list[dict[str, Any]]:
    return [_describe(row) for row in store.rows(_SUMMARY_SQL + " ORDER BY p.name")]


def show_project(store: Store, name: str) -> dict[str, Any]:
    get_project(store, name)
    summary = _describe(store.row(_SUMMARY_SQL + " WHERE p.name = ?", (name,)))  # type: ignore[arg-type]
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

    order = "ASC" if lower_is_better(config.metric) else "DESC"
    return store.row(
        f"""SELECT r.id AS run, m.value AS value, ? AS metric FROM runs r
            JOIN metric_series m ON m.run_id = r.id AND m.key = ?
            WHERE r.project_id = ? AND r.status = 'succeeded' AND m.value IS NOT NULL
            ORDER BY m.value {order} LIMIT 1""",
        (config.metric, config.metric, project_id),
    )


def _describe(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["missing"] = not Path(row["path"]).exists()
    return out
