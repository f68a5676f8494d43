"""The model registry: a version per succeeded run that saved a model, and
aliases (champion, challenger, or any name) pointing at versions.

A version keeps what is needed to use and judge the model without its run:
the content hashes of the model, its feature schema and its hold-out data,
the framework and its version, and the run's final metrics.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from workbench.core import paths
from workbench.core.errors import NotFoundError, UsageError, WorkbenchError
from workbench.store import Store

CHAMPION = "champion"
CHALLENGER = "challenger"
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")

_SELECT = """
SELECT v.*, p.name AS project, p.path AS project_path,
       (SELECT group_concat(a.alias, ',') FROM model_aliases a WHERE a.version_id = v.id)
           AS alias_list
FROM model_versions v JOIN projects p ON p.id = v.project_id
"""


@dataclass
class ModelVersion:
    id: int
    project_id: int
    project: str
    version: int
    run_id: int
    framework: str
    framework_version: str | None
    model_name: str
    model_sha256: str
    schema_sha256: str | None
    holdout_sha256: str | None
    task: str | None
    metric: str | None
    metrics: dict[str, float | None]
    created_at: float
    aliases: list[str] = field(default_factory=list)
    project_path: str | None = None  # where a project plugin trainer's `load` is found

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ModelVersion:
        return cls(
            id=row["id"],
            project_id=row["project_id"],
            project=row["project"],
            version=row["version"],
            run_id=row["run_id"],
            framework=row["framework"],
            framework_version=row["framework_version"],
            model_name=row["model_name"],
            model_sha256=row["model_sha256"],
            schema_sha256=row["schema_sha256"],
            holdout_sha256=row["holdout_sha256"],
            task=row["task"],
            metric=row["metric"],
            metrics=json.loads(row["metrics"]),
            created_at=row["created_at"],
            aliases=sorted(row["alias_list"].split(",")) if row["alias_list"] else [],
            project_path=row.get("project_path"),
        )

    @property
    def ref(self) -> str:
        return f"{self.project}@{self.version}"

    @property
    def model_path(self) -> Path:
        return paths.artifact_file(self.model_sha256)

    @property
    def holdout_path(self) -> Path | None:
        return paths.artifact_file(self.holdout_sha256) if self.holdout_sha256 else None

    @cached_property
    def schema(self) -> dict[str, Any]:
        """The feature schema saved by the trainer (features, target, framework)."""
        if self.schema_sha256 is None:
            raise WorkbenchError(
                f"{self.ref} has no feature schema: it was saved by a script, not a "
                "built-in trainer, so the workbench cannot load or export it"
            )
        return json.loads(paths.artifact_file(self.schema_sha256).read_text())

    def load(self) -> Any:
        """The model, ready to `predict(frame)`."""
        from workbench.models.loading import TrainedModel

        folder = Path(self.project_path) if self.project_path else None
        return TrainedModel(self.schema, self.model_path, project_dir=folder)

    def document(self) -> dict[str, Any]:
        from workbench.runs.queries import iso

        return {
            "project": self.project,
            "version": self.version,
            "ref": self.ref,
            "run_id": self.run_id,
            "aliases": self.aliases,
            "framework": self.framework,
            "framework_version": self.framework_version,
            "task": self.task,
            "metric": self.metric,
            "metrics": self.metrics,
            "model": {"name": self.model_name, "sha256": self.model_sha256},
            "schema_sha256": self.schema_sha256,
            "holdout_sha256": self.holdout_sha256,
            "created_at": iso(self.created_at),
        }


def register_run(
    store: Store, run_id: int, config: Any = None, *, trainer_succeeded: bool = False
) -> ModelVersion | None:
    """Register the model saved by a succeeded run; None when it saved none.
    The first version of a project becomes its champion unless the project
    promotes by hand; every later one becomes the challenger."""
    from workbench.runs.queries import _final_metrics

    existing = store.row("SELECT id FROM model_versions WHERE run_id = ?", (run_id,))
    if existing:
        return get_version_by_id(store, existing["id"])
    artifacts = {
        a["name"]: a
        for a in store.rows("SELECT name, sha256, kind FROM artifacts WHERE run_id = ?", (run_id,))
    }
    schema_artifact = artifacts.get("feature_schema.json")
    schema: dict[str, Any] = {}
    if schema_artifact:
        schema = json.loads(paths.artifact_file(schema_artifact["sha256"]).read_text())
        model = artifacts.get(schema.get("model_file", ""))
    else:
        model = next((a for a in artifacts.values() if a["kind"] == "model"), None)
    if model is None:
        return None
    run = store.row("SELECT project_id, status FROM runs WHERE id = ?", (run_id,))
    if run is None or not (trainer_succeeded or run["status"] == "succeeded"):
        return None
    metrics = _final_metrics(store, [run_id]).get(run_id, {})
    task = schema.get("target", {}).get("task")
    metric = config.primary_metric(task) if config is not None else None
    holdout = artifacts.get("holdout.parquet")
    now = time.time()
    with store.write() as conn:
        number = conn.execute(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE project_id = ?",
            (run["project_id"],),
        ).fetchone()[0]
        cursor = conn.execute(
            "INSERT INTO model_versions (project_id, version, run_id, framework,"
            " framework_version, model_name, model_sha256, schema_sha256, holdout_sha256, task,"
            " metric, metrics, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run["project_id"],
                number,
                run_id,
                schema.get("framework", "custom"),
                schema.get("framework_version"),
                model["name"],
                model["sha256"],
                schema_artifact["sha256"] if schema_artifact else None,
                holdout["sha256"] if holdout else None,
                task,
                metric,
                json.dumps(metrics),
                now,
            ),
        )
        version_id = cursor.lastrowid
        store.add_event(
            "model.registered",
            f"model version {number} registered from run {run_id}",
            ts=now,
            project_id=run["project_id"],
            run_id=run_id,
            data={"version": number},
        )
    version = get_version_by_id(store, version_id)
    champion = alias_target(store, version.project_id, CHAMPION)
    if champion is None and (config is None or config.promote != "manual"):
        from workbench.models.gate import promote

        promote(store, version, CHAMPION, config=config)
    else:
        set_alias(store, version, CHALLENGER)
    return get_version_by_id(store, version_id)


def get_version_by_id(store: Store, version_id: int) -> ModelVersion:
    row = store.row(_SELECT + " WHERE v.id = ?", (version_id,))
    if row is None:
        raise NotFoundError(f"no model version with id {version_id}")
    return ModelVersion.from_row(row)


def list_versions(store: Store, project: str) -> list[ModelVersion]:
    """A project's versions, newest first."""
    from workbench.projects import get_project

    project_id = get_project(store, project)["id"]
    rows = store.rows(_SELECT + " WHERE v.project_id = ? ORDER BY v.version DESC", (project_id,))
    return [ModelVersion.from_row(r) for r in rows]


def alias_target(store: Store, project_id: int, alias: str) -> ModelVersion | None:
    row = store.row(
        _SELECT + " JOIN model_aliases x ON x.version_id = v.id"
        " WHERE x.project_id = ? AND x.alias = ?",
        (project_id, alias),
    )
    return ModelVersion.from_row(row) if row else None


def resolve(store: Store, ref: str) -> ModelVersion:
    """`PROJECT`, `PROJECT@VERSION` (also `@v3`) or `PROJECT@ALIAS`. A bare
    project means its champion, else its newest version."""
    from workbench.projects import get_project

    name, _, which = ref.partition("@")
    if not name:
        raise UsageError(f"expected PROJECT, PROJECT@VERSION or PROJECT@ALIAS, got {ref!r}")
    project_id = get_project(store, name)["id"]
    if not which:
        version = alias_target(store, project_id, CHAMPION)
        if version is None:
            row = store.row(
                _SELECT + " WHERE v.project_id = ? ORDER BY v.version DESC LIMIT 1", (project_id,)
            )
            version = ModelVersion.from_row(row) if row else None
        if version is None:
            raise NotFoundError(
                f"project {name!r} has no model versions yet; a succeeded training run "
                "registers one"
            )
        return version
    number = which[1:] if which[:1] in "vV" and which[1:].isdigit() else which
    if number.isdigit() and len(number) <= 18:  # longer: beyond SQLite's integers
        row = store.row(
            _SELECT + " WHERE v.project_id = ? AND v.version = ?", (project_id, int(number))
        )
        if row is None:
            raise NotFoundError(f"{name} has no model version {number}{_known(store, project_id)}")
        return ModelVersion.from_row(row)
    version = alias_target(store, project_id, which)
    if version is None:
        raise NotFoundError(f"{name} has no model with alias {which!r}{_known(store, project_id)}")
    return version


def _known(store: Store, project_id: int) -> str:
    versions = [
        str(r["version"])
        for r in store.rows(
            "SELECT version FROM model_versions WHERE project_id = ? ORDER BY version",
            (project_id,),
        )
    ]
    aliases = [
        r["alias"]
        for r in store.rows(
            "SELECT alias FROM model_aliases WHERE project_id = ? ORDER BY alias", (project_id,)
        )
    ]
    if not versions:
        return " (it has no model versions yet)"
    return f" (versions: {', '.join(versions)}; aliases: {', '.join(aliases) or 'none'})"


def check_alias(alias: str) -> str:
    if not _ALIAS.match(alias):
        raise UsageError(
            f"bad alias {alias!r}: expected a letter, then letters, digits, '_' or '-' (at most 32)"
        )
    return alias


def set_alias(store: Store, version: ModelVersion, alias: str) -> None:
    check_alias(alias)
    now = time.time()
    with store.write() as conn:
        conn.execute(
            "INSERT OR REPLACE INTO model_aliases (project_id, alias, version_id, updated_at)"
            " VALUES (?, ?, ?, ?)",
            (version.project_id, alias, version.id, now),
        )
        store.add_event(
            "model.alias",
            f"{alias} -> model version {version.version}",
            ts=now,
            project_id=version.project_id,
            run_id=version.run_id,
            data={"alias": alias, "version": version.version},
        )
    if alias not in version.aliases:
        version.aliases = sorted([*version.aliases, alias])


def remove_alias(store: Store, project: str, alias: str) -> None:
    from workbench.projects import get_project

    project_id = get_project(store, project)["id"]
    with store.write() as conn:
        gone = conn.execute(
            "DELETE FROM model_aliases WHERE project_id = ? AND alias = ?", (project_id, alias)
        ).rowcount
    if not gone:
        raise NotFoundError(f"{project} has no alias {alias!r}")


def promotions(store: Store, project: str, limit: int = 50) -> list[dict[str, Any]]:
    """The latest promotion decisions, newest first."""
    from workbench.projects import get_project

    project_id = get_project(store, project)["id"]
    return store.rows(
        """SELECT pr.id, pr.alias, c.version AS challenger, ch.version AS champion, pr.metric,
                  pr.challenger_score, pr.champion_score, pr.margin, pr.rescored, pr.promoted,
                  pr.reason, pr.created_at, pr.method, pr.interval_low, pr.interval_high,
                  pr.evaluation_rows
           FROM promotions pr JOIN model_versions c ON c.id = pr.challenger_id
           LEFT JOIN model_versions ch ON ch.id = pr.champion_id
           WHERE pr.project_id = ? ORDER BY pr.id DESC LIMIT ?""",
        (project_id, limit),
    )
