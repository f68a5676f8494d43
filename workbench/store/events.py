"""The activity log: one row per thing that happened (a run queued or ended,
data rejected, a model promoted, a notification). The watcher's pipelines and
the UI read it; every writer appends inside its own write transaction, so an
event exists exactly when the change it describes does."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.store.db import Store


@dataclass(frozen=True, slots=True)
class Event:
    """One row of the activity log, with its project's name where it has one."""

    id: int
    ts: float
    kind: str
    message: str
    project_id: int | None = None
    run_id: int | None = None
    data: dict[str, Any] | None = None
    project: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape listings have always used."""
        return {
            "id": self.id,
            "ts": self.ts,
            "kind": self.kind,
            "message": self.message,
            "run_id": self.run_id,
            "project": self.project,
            "data": self.data,
        }


def add_event(
    conn: sqlite3.Connection,
    kind: str,
    message: str,
    *,
    ts: float,
    project_id: int | None = None,
    run_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> int:
    """Append to the activity log; call inside a write transaction. Returns its id."""
    cursor = conn.execute(
        "INSERT INTO events (ts, kind, project_id, run_id, message, data)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (ts, kind, project_id, run_id, message, json.dumps(data) if data else None),
    )
    return int(cursor.lastrowid or 0)


_SELECT = """
SELECT e.id, e.ts, e.kind, e.message, e.project_id, e.run_id, e.data, p.name AS project
FROM events e LEFT JOIN projects p ON p.id = e.project_id
"""


def _event(row: tuple[Any, ...]) -> Event:
    id_, ts, kind, message, project_id, run_id, data, project = row
    return Event(
        id=id_,
        ts=ts,
        kind=kind,
        message=message,
        project_id=project_id,
        run_id=run_id,
        data=_data(data),
        project=project,
    )


def _data(text: Any) -> dict[str, Any] | None:
    """An event's data: a JSON object, else None (a row written by another tool)."""
    if not text:
        return None
    try:
        found = json.loads(text)
    except (TypeError, ValueError, RecursionError):
        return None
    return found if isinstance(found, dict) else None


def recent(store: Store, limit: int = 50, project: str | None = None) -> list[Event]:
    """The newest `limit` events, newest first (of one project, or all)."""
    where, args = ("WHERE p.name = ?", (project,)) if project else ("", ())
    cursor = store.conn.execute(f"{_SELECT} {where} ORDER BY e.id DESC LIMIT ?", (*args, limit))
    return [_event(row) for row in cursor.fetchall()]


def for_run(store: Store, run_id: int, kind: str | None = None) -> list[Event]:
    """A run's events, oldest first (only those of `kind` when given)."""
    sql = f"{_SELECT} WHERE e.run_id = ?" + (" AND e.kind = ?" if kind else "") + " ORDER BY e.id"
    cursor = store.conn.execute(sql, (run_id, kind) if kind else (run_id,))
    return [_event(row) for row in cursor.fetchall()]


def project_id(store: Store, name: str) -> int | None:
    """The id of the project named `name`, for an event about it (None: no such project)."""
    found = store.conn.execute("SELECT id FROM projects WHERE name = ?", (name,)).fetchone()
    return None if found is None else int(found[0])
