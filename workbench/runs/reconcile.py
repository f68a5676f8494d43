"""Bringing the runs table in line with the processes: the one place that
marks runs whose owner is gone as lost and starts queued runs that are due.

Called once per CLI command (where the command opens the store) and once per
UI poll; never from a function that only reads, so that listing runs never
writes to the store nor starts a supervisor.
"""

from __future__ import annotations

from workbench.runs import executors
from workbench.runs.liveness import mark_lost
from workbench.runs.queue import dispatch
from workbench.store import Store
from workbench.store import runs as run_store


def reconcile(store: Store) -> None:
    """Bring other executors' jobs (Slurm) in line, mark lost the running runs
    whose owner is gone, then start the queued runs that are due while run slots
    are free. Does nothing on a read-only store."""
    if store.readonly:
        return
    # Jobs of other executors first: their journals and the scheduler's word
    # refresh their heartbeats, so none is taken for lost below.
    executors.poll(store)
    if run_store.any_queued(store):
        dispatch(store)  # marks the lost runs first, under the queue's lock
    else:
        mark_lost(store)
