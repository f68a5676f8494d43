"""Stopping runs: the supervisor first, then whatever of the run is left."""

from __future__ import annotations

import signal
import time

from workbench.config.settings import load_settings
from workbench.core.errors import UsageError
from workbench.runs import process_tree
from workbench.runs.liveness import mark_lost
from workbench.runs.queries import find_run
from workbench.store import Store
from workbench.store import jobs as job_store
from workbench.store import runs as run_store
from workbench.store.runs import RunStatus


def stop_run(store: Store, run_id: int | str, timeout: float | None = None) -> str:
    """Stop a run and its whole process tree; returns the final status.

    The supervisor is asked (SIGTERM) so that it records the outcome itself;
    if it is gone, the trainer's tree is stopped from here and the run marked.
    """
    run = find_run(store, run_id)
    rid = run.id
    grace = load_settings().stop_grace
    job = job_store.job_of(store, rid)
    if job is not None and job.executor != job_store.LOCAL:
        from workbench.runs import executors

        return executors.stop(store, job, timeout or grace + 60)
    if run.status is RunStatus.LOST:
        # Its supervisor is gone, but what it started may still be running.
        left = process_tree.survivors(run)
        if not left:
            raise UsageError(f"run {rid} is lost and none of its processes is alive")
        for proc in left:
            process_tree.terminate(proc, grace)
        return RunStatus.LOST.value
    if run.status.finished:
        raise UsageError(f"run {rid} is already {run.status.value}")
    now = time.time()
    with store.write():
        run_store.update(store, rid, stop_requested_at=now)
        if run.status is RunStatus.QUEUED and not run.supervisor_pid:
            run_store.transition(
                store,
                rid,
                RunStatus.STOPPED,
                expect=RunStatus.QUEUED,
                ended_at=now,
                message="stopped while queued",
            )
    supervisor = process_tree.find_known(run.supervisor_pid, run.supervisor_started_at)
    if supervisor is not None:
        supervisor.send_signal(signal.SIGTERM)
        deadline = time.time() + (timeout or grace + 10)
        while time.time() < deadline:
            status = run_store.status_of(store, rid)
            if status is not None and status.finished:
                return status.value
            time.sleep(0.1)
    # The supervisor is gone or did not answer: stop the run's processes from
    # here (the trainer's tree, and every process the supervisor recorded).
    trainer = process_tree.find_known(run.pid, run.pid_started_at)
    if trainer is not None:
        process_tree.terminate(trainer, grace)
    left = process_tree.survivors(run)
    if left:
        process_tree.terminate_all(left, grace)
    run_store.transition(
        store,
        rid,
        RunStatus.STOPPED,
        expect=(RunStatus.RUNNING, RunStatus.QUEUED),
        ended_at=time.time(),
        message="stopped on request",
    )
    mark_lost(store, rid)
    status = run_store.status_of(store, rid)
    return status.value if status is not None else RunStatus.STOPPED.value

