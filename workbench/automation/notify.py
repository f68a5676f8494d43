"""Notifications: an event in the store (the UI shows it as a toast) and every
notifier plugin's hook. A notifier that fails is reported, never fatal."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from workbench.store import Store, events, projects

NOTIFY_KINDS = ("data.rejected", "data.drift", "model.promoted")


def notify(store: Store, kind: str, project: str, message: str, data: dict[str, Any]) -> None:
    found = projects.by_name(store, project)
    project_id = found.id if found else None
    now = time.time()
    with store.write() as conn:
        events.add_event(
            conn,
            f"notify.{kind}",
            f"{project}: {message}",
            ts=now,
            project_id=project_id,
            data={"kind": kind, **data},
        )
    event = {"kind": kind, "project": project, "message": message, "ts": now, "data": data}
    from workbench.plugins import notify_plugins

    for failure in notify_plugins(event, Path(found.path) if found else None):
        # The user's word that a hook failed: on stderr, in a command as in the
        # watcher (whose stderr is its log).
        print(f"workbench: notifier {failure}", file=sys.stderr)
        with store.write() as conn:
            events.add_event(
                conn,
                "notify.failed",
                f"{project}: notifier {failure}",
                ts=time.time(),
                project_id=project_id,
                data={"kind": kind},
            )
