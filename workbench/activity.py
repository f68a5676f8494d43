"""The activity log: what happened in the store, newest first."""

from __future__ import annotations

import json
from typing import Any

from workbench.store import Store


def recent_events(
    store: Store, limit: int = 50, project: str | None = None
) -> list[dict[str, Any]]:
    where, args = ("WHERE p.name = ?", (project,)) if project else ("", ())
    rows = store.rows(
        f"""SELECT e.id, e.ts, e.kind, e.message, e.run_id, p.name AS project, e.data
            FROM events e LEFT JOIN projects p ON p.id = e.project_id {where}
            ORDER BY e.id DESC LIMIT ?""",
        (*args, limit),
    )
    for row in rows:
        row["data"] = json.loads(row["data"]) if row["data"] else None
    return rows
