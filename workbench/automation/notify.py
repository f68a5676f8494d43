"""Notifications: an event in the store (the UI shows it as a toast) and every
notifier plugin's hook. A notifier that fails is reported, never fatal."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from workbench.store import Store

NOTIFY_KINDS = ("data.rejected", "data.drift", "model.promoted")


def notify(store: Store, kind: str, project: str, message: str, data: dict[str, Any]) -> None:
    project_id = store.scalar("SELECT id FROM projects WHERE name = ?", (project,))
    now = time.time()
    with store.write():
        store.add_event(
            f"notify.{kind}",
            f"{project}: {message}",
            ts=now,
            project_id=project_id,
            data={"kind": kind, **data},
        )
    event = {"kind": kind, "project": project, "message": message, "ts": now, "data": data}
    from workbench.plugins import notify_plugins

    folder = store.scalar("SELECT path FROM projects WHERE id = ?", (project_id,))
    for failure in notify_plugins(event, Path(folder) if folder else None):
        print(f"workbench: notifier {failure}", file=sys.stderr)
        with store.write():
            store.add_event(
                "notify.failed",
                f"{project}: notifier {failure}",
                ts=time.time(),
                project_id=project_id,
                data={"kind": kind},
            )
