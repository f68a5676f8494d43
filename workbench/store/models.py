"""The model registry's tables: model versions, the aliases pointing at them
(champion, challenger, any name), and the promotion gate's decisions.

A version keeps what is needed to use and judge the model without its run: the
content hashes of the model, its feature schema and its hold-out data, the
framework and its version, and the run's final metrics.
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from workbench.core import paths
from workbench.core.errors import WorkbenchError
from workbench.store.db import Store
from workbench.store.events import add_event


@dataclass(frozen=True, slots=True)
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

    @property
    def schema(self) -> dict[str, Any]:
        """The feature schema saved by the trainer (features, target, framework)."""
        if self.schema_sha256 is None:
            raise WorkbenchError(
                f"{self.ref} has no feature schema: it was saved by a script, not a "
                "built-in trainer, so the workbench cannot load or export it"
            )
        return json.loads(_artifact_text(self.schema_sha256))

    def with_aliases(self, aliases: list[str]) -> ModelVersion:
        return replace(self, aliases=sorted(aliases))

    def document(self) -> dict[str, Any]:
        """The version as `model list --json` and `model show --json` print it."""
        return {
            "project": self.project,
            "version": self.version,
            "ref": self.ref,
            "run_id": self.run_id,
            "aliases": list(self.aliases),
            "framework": self.framework,
            "framework_version": self.framework_version,
            "task": self.task,
            "metric": self.metric,
            "metrics": self.metrics,
            "model": {"name": self.model_name, "sha256": self.model_sha256},
            "schema_sha256": self.schema_sha256,
            "holdout_sha256": self.holdout_sha256,
            "created_at": _iso(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class Promotion:
    """One decision of the promotion gate, with the versions by number."""

    id: int
    alias: str
    challenger: int
    champion: int | None
    metric: str | None
    challenger_score: float | None
    champion_score: float | None
    margin: float | None
    rescored: int
    promoted: int
    reason: str
    created_at: float
    method: str | None
    interval_low: float | None
    interval_high: float | None
    evaluation_rows: int | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@functools.lru_cache(maxsize=256)
def _artifact_text(sha256: str) -> str:
    # Artifacts are content-addressed: the text of a hash never changes.
    return paths.artifact_file(sha256).read_text()


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


_SELECT = """
SELECT v.*, p.name AS project, p.path AS project_path,
       (SELECT group_concat(a.alias, ',') FROM model_aliases a WHERE a.version_id = v.id)
           AS alias_list
FROM model_versions v JOIN projects p ON p.id = v.project_id
"""


def _one(store: Store, where: str, args: tuple[Any, ...]) -> ModelVersion | None:
    row = store.row(_SELECT + where, args)
    return ModelVersion.from_row(row) if row else None


def by_id(store: Store, version_id: int) -> ModelVersion | None:
    return _one(store, " WHERE v.id = ?", (version_id,))


def for_run(store: Store, run_id: int) -> ModelVersion | None:
    """The version registered from run `run_id`, if any."""
    return _one(store, " WHERE v.run_id = ?", (run_id,))


def by_number(store: Store, project_id: int, number: int) -> ModelVersion | None:
    return _one(store, " WHERE v.project_id = ? AND v.version = ?", (project_id, number))


def newest(store: Store, project_id: int) -> ModelVersion | None:
    return _one(store, " WHERE v.project_id = ? ORDER BY v.version DESC LIMIT 1", (project_id,))


def for_project(store: Store, project_id: int) -> list[ModelVersion]:
    """A project's versions, newest first."""
    rows = store.rows(_SELECT + " WHERE v.project_id = ? ORDER BY v.version DESC", (project_id,))
    return [ModelVersion.from_row(r) for r in rows]


def alias_target(store: Store, project_id: int, alias: str) -> ModelVersion | None:
    return _one(
        store,
        " JOIN model_aliases x ON x.version_id = v.id WHERE x.project_id = ? AND x.alias = ?",
        (project_id, alias),
    )


def numbers(store: Store, project_id: int) -> list[int]:
    """The project's version numbers, in order."""
    return [
        r["version"]
        for r in store.rows(
            "SELECT version FROM model_versions WHERE project_id = ? ORDER BY version",
            (project_id,),
        )
    ]


def alias_names(store: Store, project_id: int) -> list[str]:
    return [
        r["alias"]
        for r in store.rows(
            "SELECT alias FROM model_aliases WHERE project_id = ? ORDER BY alias", (project_id,)
        )
    ]


def add_version(
    store: Store,
    *,
    project_id: int,
    run_id: int,
    framework: str,
    framework_version: str | None,
    model_name: str,
    model_sha256: str,
    schema_sha256: str | None,
    holdout_sha256: str | None,
    task: str | None,
    metric: str | None,
    metrics: dict[str, float | None],
) -> ModelVersion:
    """Register the project's next version number for `run_id`, with its
    `model.registered` event, in one transaction."""
    now = time.time()
    with store.write() as conn:
        number = conn.execute(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE project_id = ?",
            (project_id,),
        ).fetchone()[0]
        version_id = conn.execute(
            "INSERT INTO model_versions (project_id, version, run_id, framework,"
            " framework_version, model_name, model_sha256, schema_sha256, holdout_sha256, task,"
            " metric, metrics, created_at, uuid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                project_id,
                number,
                run_id,
                framework,
                framework_version,
                model_name,
                model_sha256,
                schema_sha256,
                holdout_sha256,
                task,
                metric,
                json.dumps(metrics),
                now,
                uuid.uuid4().hex,
            ),
        ).lastrowid
        add_event(
            conn,
            "model.registered",
            f"model version {number} registered from run {run_id}",
            ts=now,
            project_id=project_id,
            run_id=run_id,
            data={"version": number},
        )
    found = by_id(store, int(version_id or 0))
    assert found is not None
    return found


def set_alias(store: Store, version: ModelVersion, alias: str) -> ModelVersion:
    """Point `alias` at `version` (moving it from any other), with its
    `model.alias` event; returns the version with the alias."""
    now = time.time()
    with store.write() as conn:
        conn.execute(
            "INSERT OR REPLACE INTO model_aliases (project_id, alias, version_id, updated_at)"
            " VALUES (?, ?, ?, ?)",
            (version.project_id, alias, version.id, now),
        )
        add_event(
            conn,
            "model.alias",
            f"{alias} -> model version {version.version}",
            ts=now,
            project_id=version.project_id,
            run_id=version.run_id,
            data={"alias": alias, "version": version.version},
        )
    if alias in version.aliases:
        return version
    return version.with_aliases([*version.aliases, alias])


def remove_alias(store: Store, project_id: int, alias: str, version_id: int | None = None) -> bool:
    """Remove `alias` (only from `version_id` when given); whether it was there."""
    sql = "DELETE FROM model_aliases WHERE project_id = ? AND alias = ?"
    args: tuple[Any, ...] = (project_id, alias)
    if version_id is not None:
        sql, args = sql + " AND version_id = ?", (*args, version_id)
    with store.write() as conn:
        return conn.execute(sql, args).rowcount > 0


def add_promotion(
    store: Store,
    challenger: ModelVersion,
    champion: ModelVersion | None,
    decision: dict[str, Any],
    *,
    event_kind: str,
    event_message: str,
    event_data: dict[str, Any],
) -> int:
    """Record a promotion decision (`decision`: alias, metric, challenger_score,
    champion_score, margin, rescored, promoted, reason, method, interval_low,
    interval_high, evaluation_rows) with its event, in one transaction."""
    now = time.time()
    with store.write() as conn:
        promotion_id = conn.execute(
            "INSERT INTO promotions (project_id, alias, challenger_id, champion_id, metric,"
            " challenger_score, champion_score, margin, rescored, promoted, reason, created_at,"
            " method, interval_low, interval_high, evaluation_rows)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                challenger.project_id,
                decision["alias"],
                challenger.id,
                champion.id if champion else None,
                decision["metric"],
                decision["challenger_score"],
                decision["champion_score"],
                decision["margin"],
                int(decision["rescored"]),
                int(decision["promoted"]),
                decision["reason"],
                now,
                decision["method"],
                decision["interval_low"],
                decision["interval_high"],
                decision["evaluation_rows"],
            ),
        ).lastrowid
        add_event(
            conn,
            event_kind,
            event_message,
            ts=now,
            project_id=challenger.project_id,
            run_id=challenger.run_id,
            data=event_data,
        )
    return int(promotion_id or 0)


def promotions(store: Store, project_id: int, limit: int = 50) -> list[Promotion]:
    """The project's latest promotion decisions, newest first."""
    rows = store.rows(
        """SELECT pr.id, pr.alias, c.version AS challenger, ch.version AS champion, pr.metric,
                  pr.challenger_score, pr.champion_score, pr.margin, pr.rescored, pr.promoted,
                  pr.reason, pr.created_at, pr.method, pr.interval_low, pr.interval_high,
                  pr.evaluation_rows
           FROM promotions pr JOIN model_versions c ON c.id = pr.challenger_id
           LEFT JOIN model_versions ch ON ch.id = pr.champion_id
           WHERE pr.project_id = ? ORDER BY pr.id DESC LIMIT ?""",
        (project_id, limit),
    )
    return [Promotion(**r) for r in rows]
