"""Stopping runs and following their logs."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

from workbench.core import paths
from workbench.core.errors import UsageError
from workbench.runs import process_tree
from workbench.runs.launch import TERMINAL
from workbench.runs.queries import get_run, refresh_liveness
from workbench.config.settings import load_settings
from workbench.store import Store


def stop_run(store: Store, run_id: int | str, timeout: float | None = None) -> str:
    """Stop a run and its whole process tree; returns the final status.

    The supervisor is asked (SIGTERM) so that it records the outcome itself;
    if it is gone, the trainer's tree is stopped from here and the run marked.
    """
    row = get_run(store, run_id)
    rid = row["id"]
    grace = load_settings().stop_grace
    if row["status"] == "lost":
        # Its supervisor is gone, but what it started may still be running.
        left = process_tree.survivors(row)
        if not left:
            raise UsageError(f"run {rid} is lost and none of its processes is alive")
        for proc in left:
            process_tree.terminate(proc, grace)
        return "lost"
    if row["status"] in TERMINAL:
        raise UsageError(f"run {rid} is already {row['status']}")
    now = time.time()
    with store.write() as conn:
        conn.execute("UPDATE runs SET stop_requested_at = ? WHERE id = ?", (now, rid))
        if row["status"] == "queued" and not row["supervisor_pid"]:
            conn.execute(
                "UPDATE runs SET status = 'stopped', ended_at = ?, message = 'stopped while queued'"
                " WHERE id = ? AND status = 'queued'",
                (now, rid),
            )
    supervisor = process_tree.find(row["supervisor_pid"], row["supervisor_started_at"])
    if supervisor is not None:
        supervisor.send_signal(signal.SIGTERM)
        deadline = time.time() + (timeout or grace + 10)
        while time.time() < deadline:
            status = store.scalar("SELECT status FROM runs WHERE id = ?", (rid,))
            if status in TERMINAL:
                return status
            time.sleep(0.1)
    # The supervisor is gone or did not answer: stop the run's processes from
    # here (the trainer's tree, and every process the supervisor recorded).
    trainer = process_tree.find(row["pid"], row["pid_started_at"])
    if trainer is not None:
        process_tree.terminate(trainer, grace)
    left = process_tree.survivors(row)
    if left:
        process_tree.terminate_all(left, grace)
    with store.write() as conn:
        conn.execute(
            "UPDATE runs SET status = 'stopped', ended_at = ?, message = 'stopped on request'"
            " WHERE id = ? AND status IN ('running', 'queued')",
            (time.time(), rid),
        )
    refresh_liveness(store, rid)
    return store.scalar("SELECT status FROM runs WHERE id = ?", (rid,))


def follow_log(store: Store, run_id: int | str, follow: bool, poll: float = 0.2) -> Iterator[bytes]:
    """Yield the run's log; with `follow`, keep yielding until the run ends."""
    rid = get_run(store, run_id)["id"]
    log = paths.run_log(rid)
    position = 0
    while True:
        if log.exists():
            with open(log, "rb") as fh:
                fh.seek(position)
                chunk = fh.read()
                position += len(chunk)
            if chunk:
                yield chunk
        if not follow:
            return
        status = store.scalar("SELECT status FROM runs WHERE id = ?", (rid,))
        if status in TERMINAL:
            refresh_liveness(store, rid)
            # One last read: output written just before the run ended.
            if log.exists() and os.path.getsize(log) > position:
                continue
            return
        if status == "running":
            refresh_liveness(store, rid)
        time.sleep(poll)
