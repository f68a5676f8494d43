"""The persistent run queue: queued runs start in priority, then submission, order
as slots free up.

Any process that uses the store calls `dispatch` (the CLI on every command,
each supervisor when its run ends), so queued runs also start after a reboot,
as soon as anything touches the store. A file lock makes concurrent
dispatchers take turns; the queue itself lives in the runs table.
"""

from __future__ import annotations

import fcntl
import subprocess
import time

from workbench.core import paths
from workbench.runs import process_tree
from workbench.runs.launch import spawn_supervisor
from workbench.runs.queries import refresh_liveness
from workbench.config.settings import load_settings
from workbench.store import Store

# A dispatched run whose supervisor never recorded itself this long is re-dispatched.
STALE_DISPATCH_S = 30.0


def dispatch(store: Store) -> dict[int, subprocess.Popen]:
    """Start supervisors for due queued runs while slots are free; returns those started."""
    if not store.scalar("SELECT 1 FROM runs WHERE status = 'queued' LIMIT 1"):
        return {}
    with open(paths.home() / "queue.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            refresh_liveness(store)
            _reclaim_stale(store)
            slots = load_settings().parallel_slots()
            # A running sweep only waits on its trials, which take the slots.
            busy = store.scalar(
                "SELECT COUNT(*) FROM runs WHERE (status = 'running' AND trainer != 'sweep')"
                " OR (status = 'queued' AND dispatched_at IS NOT NULL)"
            ) + _lost_but_training(store)
            free = slots - busy
            if free <= 0:
                return {}
            due = [
                row["id"]
                for row in store.rows(
                    "SELECT id FROM runs WHERE status = 'queued' AND dispatched_at IS NULL"
                    " AND stop_requested_at IS NULL ORDER BY priority DESC, id LIMIT ?",
                    (free,),
                )
            ]
            started = {}
            for run_id in due:
                with store.write() as conn:
                    conn.execute(
                        "UPDATE runs SET dispatched_at = ? WHERE id = ?", (time.time(), run_id)
                    )
                supervisor = spawn_supervisor(run_id)
                proc = process_tree.find(supervisor.pid, None)
                with store.write() as conn:
                    # The supervisor may already have recorded itself; keep its values.
                    conn.execute(
                        "UPDATE runs SET supervisor_pid = COALESCE(supervisor_pid, ?),"
                        " supervisor_started_at = COALESCE(supervisor_started_at, ?) WHERE id = ?",
                        (supervisor.pid, proc.create_time() if proc else None, run_id),
                    )
                started[run_id] = supervisor
            return started
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _lost_but_training(store: Store) -> int:
    """Lost runs whose trainer is still alive: slots count live trainers, not
    supervisors. (A trainer dies with its supervisor where the kernel allows;
    this covers the rest, until `run stop` ends it.)"""
    import psutil

    rows = store.rows(
        "SELECT pid, pid_started_at FROM runs WHERE status = 'lost' AND pid IS NOT NULL"
        " AND trainer != 'sweep' AND trainer != 'inline'"
    )
    if not rows:
        return 0
    live = set(psutil.pids())
    return sum(
        1
        for row in rows
        if row["pid"] in live and process_tree.find(row["pid"], row["pid_started_at"])
    )


def _reclaim_stale(store: Store) -> None:
    """Put back in line dispatched runs whose supervisor died before starting them
    (a reboot, a kill) — nothing queued is ever dropped."""
    for row in store.rows(
        "SELECT id, supervisor_pid, supervisor_started_at, dispatched_at FROM runs"
        " WHERE status = 'queued' AND dispatched_at IS NOT NULL"
    ):
        if process_tree.find(row["supervisor_pid"], row["supervisor_started_at"]):
            continue
        if row["supervisor_pid"] is None and time.time() - row["dispatched_at"] < STALE_DISPATCH_S:
            continue  # being spawned right now by another dispatcher
        with store.write() as conn:
            conn.execute(
                "UPDATE runs SET dispatched_at = NULL, supervisor_pid = NULL,"
                " supervisor_started_at = NULL WHERE id = ? AND status = 'queued'",
                (row["id"],),
            )
