"""The persistent run queue: queued runs start in priority, then submission, order
as slots free up.

Whatever uses the store dispatches (`reconcile` on every CLI command and UI
poll, each supervisor when its run ends), so queued runs also start after a
reboot, as soon as anything touches the store. A file lock makes concurrent
dispatchers take turns; the queue itself lives in the runs table.
"""

from __future__ import annotations

import subprocess
import time

from workbench.config.settings import load_settings
from workbench.core import paths
from workbench.core.files import exclusive_lock
from workbench.runs import process_tree
from workbench.runs.launch import spawn_supervisor
from workbench.runs.liveness import mark_lost
from workbench.store import Store
from workbench.store import jobs as job_store
from workbench.store import runs as run_store
from workbench.store.runs import IfNull, RunStatus

# A dispatched run whose supervisor never recorded itself this long is re-dispatched.
STALE_DISPATCH_S = 30.0


def dispatch(store: Store) -> dict[int, subprocess.Popen]:
    """Start supervisors for due queued runs while slots are free; returns those started."""
    if not run_store.any_queued(store):
        return {}
    with exclusive_lock(paths.home() / "queue.lock"):
        mark_lost(store)
        _reclaim_stale(store)
        settings = load_settings()  # a bad config.toml fails here, before any start
        # Runs of other executors (Slurm jobs) run elsewhere: they take no slot here.
        taken = run_store.taking_slots(store) - job_store.taking_local_slots(store)
        busy = taken + _lost_but_training(store)
        if busy == 0 and len(run_store.due(store, 2)) < 2:
            # There is always at least one slot: a lone queued run on an idle
            # machine starts without counting GPUs (an NVML load per dispatch).
            free = 1
        else:
            free = settings.parallel_slots() - busy
        if free <= 0:
            return {}
        started = {}
        for run_id in run_store.due(store, free):
            run_store.update(store, run_id, dispatched_at=time.time())
            supervisor = spawn_supervisor(run_id)
            proc = process_tree.find(supervisor.pid, None)
            # The supervisor may already have recorded itself; keep its values.
            run_store.update(
                store,
                run_id,
                supervisor_pid=IfNull(supervisor.pid),
                supervisor_started_at=IfNull(proc.create_time() if proc else None),
            )
            started[run_id] = supervisor
        return started


def _lost_but_training(store: Store) -> int:
    """Lost runs whose trainer is still alive: slots count live trainers, not
    supervisors. (A trainer dies with its supervisor where the kernel allows;
    this covers the rest, until `run stop` ends it.)"""
    import psutil

    runs = run_store.lost_with_trainer(store)
    if not runs:
        return 0
    live = set(psutil.pids())
    return sum(
        1 for run in runs if run.pid in live and process_tree.find(run.pid, run.pid_started_at)
    )


def _reclaim_stale(store: Store) -> None:
    """Put back in line dispatched runs whose supervisor died before starting them
    (a reboot, a kill) — nothing queued is ever dropped."""
    elsewhere = job_store.active_ids(store)  # handed to another executor, not to a supervisor
    for run in run_store.dispatched(store):
        if run.id in elsewhere:
            continue
        if process_tree.find(run.supervisor_pid, run.supervisor_started_at):
            continue
        if run.supervisor_pid is None and time.time() - (run.dispatched_at or 0) < STALE_DISPATCH_S:
            continue  # being spawned right now by another dispatcher
        run_store.update(
            store,
            run.id,
            expect=RunStatus.QUEUED,
            dispatched_at=None,
            supervisor_pid=None,
            supervisor_started_at=None,
        )
