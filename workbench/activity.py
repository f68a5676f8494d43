"""The activity log: what happened in the store, newest first."""

from __future__ import annotations

from typing import Any

from workbench.store import Store
from workbench.store import events


def recent_events(
    store: Store, limit: int = 50, project: str | None = None
) -> list[dict[str, Any]]:
    """The newest `limit` events (of one project, or all), as dicts: id, ts, kind,
    message, run_id, project and data (decoded)."""
    return [event.as_dict() for event in events.recent(store, limit, project)]
