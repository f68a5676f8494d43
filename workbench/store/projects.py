"""Registered projects: a name (unique) for a folder (unique) holding a
`workbench.toml`, and the summaries the listings show."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from workbench.store.db import Store
from workbench.store.events import add_event


@dataclass(frozen=True, slots=True)
class Project:
    id: int
    name: str
    path: str
    created_at: float

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Project:
        return cls(
            id=row["id"], name=row["name"], path=row["path"], created_at=row["created_at"]
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ProjectSummary:
    """A project with its number of runs and its latest run and that run's status."""

    id: int
    name: str
    path: str
    created_at: float
    runs: int
    last_status: str | None
    last_run: int | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class BestRun:
    """The succeeded run with the best latest value of a metric."""

    run: int
    value: float
    metric: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def by_name(store: Store, name: str) -> Project | None:
    row = store.row("SELECT * FROM projects WHERE name = ?", (name,))
    return Project.from_row(row) if row else None


def by_path(store: Store, path: str) -> Project | None:
    row = store.row("SELECT * FROM projects WHERE path = ?", (path,))
    return Project.from_row(row) if row else None


def by_id(store: Store, project_id: int) -> Project | None:
    row = store.row("SELECT * FROM projects WHERE id = ?", (project_id,))
    return Project.from_row(row) if row else None


def names(store: Store) -> list[str]:
    return [r["name"] for r in store.rows("SELECT name FROM projects ORDER BY name")]


def add(store: Store, name: str, path: str) -> Project:
    """Register `path` as `name`, logging it in the same transaction. A project
    already registered at `path` (its folder's workbench.toml renamed it) takes
    the new name."""
    now = time.time()
    with store.write() as conn:
        same_path = conn.execute("SELECT id FROM projects WHERE path = ?", (path,)).fetchone()
        if same_path:
            project_id = same_path[0]
            conn.execute("UPDATE projects SET name = ? WHERE id = ?", (name, project_id))
        else:
            project_id = conn.execute(
                "INSERT INTO projects (name, path, created_at) VALUES (?, ?, ?)",
                (name, path, now),
            ).lastrowid
        add_event(
            conn,
            "project.added",
            f"project {name} registered",
            ts=now,
            project_id=project_id,
            data={"path": path},
        )
    found = by_id(store, project_id)
    assert found is not None
    return found


_SUMMARY_SQL = """
SELECT p.id, p.name, p.path, p.created_at,
       (SELECT COUNT(*) FROM runs r WHERE r.project_id = p.id) AS runs,
       (SELECT r.status FROM runs r WHERE r.project_id = p.id ORDER BY r.id DESC LIMIT 1)
           AS last_status,
       (SELECT r.id FROM runs r WHERE r.project_id = p.id ORDER BY r.id DESC LIMIT 1)
           AS last_run
FROM projects p
"""


def summaries(store: Store) -> list[ProjectSummary]:
    """Every project, by name."""
    return [ProjectSummary(**row) for row in store.rows(_SUMMARY_SQL + " ORDER BY p.name")]


def summary(store: Store, name: str) -> ProjectSummary | None:
    row = store.row(_SUMMARY_SQL + " WHERE p.name = ?", (name,))
    return ProjectSummary(**row) if row else None


def best_run(
    store: Store, project_id: int, metric: str, *, lower_is_better: bool
) -> BestRun | None:
    """The project's succeeded run with the best latest value of `metric`."""
    order = "ASC" if lower_is_better else "DESC"
    row = store.row(
        f"""SELECT r.id AS run, m.value AS value, ? AS metric FROM runs r
            JOIN metric_series m ON m.run_id = r.id AND m.key = ?
            WHERE r.project_id = ? AND r.status = 'succeeded' AND m.value IS NOT NULL
            ORDER BY m.value {order} LIMIT 1""",
        (metric, metric, project_id),
    )
    return BestRun(**row) if row else None
