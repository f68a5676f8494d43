"""Whether a run's owner is still alive, and marking the runs whose owner is gone.

A run marked running is owned by a process (its supervisor, or the process of
an inline `start_run`), recorded by pid *and* create time, so a reused pid
never keeps a dead run alive. A run of another machine sharing the store is
judged by its heartbeat only.
"""

from __future__ import annotations

import socket
import time

from workbench.runs import process_tree
from workbench.store import Store
from workbench.store import runs as run_store
from workbench.store.runs import Run

REMOTE_HEARTBEAT_TIMEOUT_S = 300.0


def owner_gone(run: Run, *, here: str | None = None, now: float | None = None) -> bool:
    """Whether the process that owns this running run is gone."""
    here = here or socket.gethostname()
    if run.hostname and run.hostname != here:
        # Another machine's run (a shared store): its pid means nothing here,
        # so only a heartbeat silent for long says it is gone.
        now = time.time() if now is None else now
        return now - (run.heartbeat_at or 0) >= REMOTE_HEARTBEAT_TIMEOUT_S
    # Its start time is recorded with its pid when it takes the run: without it,
    # nothing proves that a live process with that pid is the owner.
    return process_tree.find_known(run.supervisor_pid, run.supervisor_started_at) is None


def gone(store: Store, run_id: int | None = None) -> list[Run]:
    """Runs marked running whose owner is gone (reads only)."""
    here = socket.gethostname()
    return [run for run in run_store.running(store, run_id) if owner_gone(run, here=here)]


def mark_lost(store: Store, run_id: int | None = None) -> int:
    """Mark `lost` every running run (or only `run_id`) whose owner is gone; returns
    how many were marked. Each change is conditional on the run still being
    running, so a supervisor that finished between our read and our check keeps
    its real outcome, and a run is marked (and its event written) once."""
    return sum(run_store.mark_lost(store, run) for run in gone(store, run_id))
