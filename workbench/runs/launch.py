"""Creating a run and handing it to a detached supervisor."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

from workbench.core import paths
from workbench.core.spawn import child_env, spawn_detached
from workbench.projects import project_config
from workbench.store import Store
from workbench.store import runs as run_store
from workbench.store.runs import FINISHED, RunStatus

FIRST_POLL_S = 0.005  # how often `wait_for` reads a run's status in its first second

# The finished statuses, as strings (for code that compares plain strings).
TERMINAL = tuple(status.value for status in FINISHED)


def create_run(
    store: Store,
    project: str,
    overrides: dict[str, Any],
    priority: int = 0,
    parent_id: int | None = None,
    loaded: tuple[dict[str, Any], Any] | None = None,
) -> int:
    """Validate the project's config and the trainer's params, and record a queued
    run with them (a child of `parent_id`, e.g. a sweep's trial). `loaded`: the
    project's row and config, when the caller has read them already."""
    from workbench.trainers.params import check_params

    row, config = loaded or project_config(store, project)
    params = {**config.params, **overrides}
    # A bad key or value fails here, for the CLI, the TUI, sweeps and pipelines alike,
    # not minutes later inside the run.
    check_params(config.trainer, params)
    return run_store.insert_queued(
        store,
        row["id"],
        config.trainer,
        params,
        project_name=config.name,
        priority=priority,
        parent_id=parent_id,
    )


def spawn_supervisor(run_id: int) -> subprocess.Popen:
    """Start the run's supervisor in a new session, detached from this terminal."""
    folder = paths.run_dir(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    env = child_env()
    log_path = folder / "supervisor.log"
    with open(log_path, "ab") as log:
        from workbench.runs.warm import fork_supervisor

        # Forked by a warm server when one runs (no interpreter start, no imports).
        forked = fork_supervisor(run_id, env, log)
        if forked is not None:
            return forked  # type: ignore[return-value]
    return spawn_detached(
        [sys.executable, "-m", "workbench.runs.supervisor", str(run_id)], log=log_path, environ=env
    )


def start_run(
    store: Store,
    project: str,
    overrides: dict[str, Any],
    priority: int = 0,
    executor: str | None = None,
) -> tuple[int, subprocess.Popen | None]:
    """Queue a run and start it if a slot is free; returns its id and, when it
    started here, its supervisor process. With an executor other than "local"
    (`executor`, else the project's `[runs] executor`) the run is submitted to it
    instead, and no process of it runs here."""
    from workbench.runs.queue import dispatch

    from workbench.runs import executors

    loaded = project_config(store, project)
    name = executors.choose(loaded[1], executor)
    if name != executors.LOCAL:
        return submit_run(store, project, overrides, priority, name, loaded), None
    run_id = create_run(store, project, overrides, priority, loaded=loaded)
    return run_id, dispatch(store).get(run_id)


def submit_run(
    store: Store,
    project: str,
    overrides: dict[str, Any],
    priority: int,
    name: str,
    loaded: tuple[dict[str, Any], Any],
    parent_id: int | None = None,
) -> int:
    """Record a run handed to executor `name` and submit it; returns its id.
    `loaded`: the project's row and config."""
    from workbench.core.files import exclusive_lock
    from workbench.runs import executors
    from workbench.store import jobs as job_store

    config = loaded[1]
    runner = executors.executor(name, config.root)  # an unknown name fails before the run exists
    # Under the queue's lock: no dispatcher may take the new run for a local
    # supervisor between its insert and its hand-over.
    with exclusive_lock(paths.home() / "queue.lock"):
        run_id = create_run(store, project, overrides, priority, parent_id, loaded)
        job_store.mark_submitted(store, run_id, executor=name)
    runner.submit(store, run_id, config)
    return run_id


def wait_for(
    store: Store,
    run_id: int,
    supervisor: subprocess.Popen | None = None,
    poll: float = 0.2,
    *,
    leave_supervisor: bool = False,
) -> str:
    """Block until the run reaches a terminal status; returns it.

    While the run waits in the queue this keeps dispatching, so it starts as
    soon as a slot frees even if nothing else is using the store.

    With `supervisor` (started by this process), this also waits for it to exit
    (reaped, its queue dispatch done), unless `leave_supervisor`: then it
    returns as soon as the run has ended, for a process about to exit anyway
    (`run start --wait`), which need not sit through the supervisor's shutdown.
    """
    from workbench.runs.liveness import mark_lost
    from workbench.runs.queue import dispatch
    from workbench.store import jobs as job_store

    if supervisor is None and job_store.is_job(store, run_id):
        from workbench.runs import executors

        return executors.wait(store, run_id)
    while True:
        if supervisor is not None:
            if not leave_supervisor:
                supervisor.wait()
            elif (ended := _watch(store, run_id, supervisor, poll)) is not None:
                return ended
        status = run_store.status_of(store, run_id)
        if status is not None and status.finished:
            return status.value
        if supervisor is not None and status is RunStatus.QUEUED:
            # Our supervisor exited without taking the run: record why, never hang.
            _fail_unstarted(store, run_id, supervisor.returncode)
            continue
        mark_lost(store, run_id)
        supervisor = dispatch(store).get(run_id)
        if supervisor is None:
            time.sleep(poll)


def _watch(
    store: Store, run_id: int, supervisor: subprocess.Popen, longest: float
) -> str | None:
    """Wait for the run to finish or its supervisor to exit, whichever comes
    first; returns the run's terminal status, or None when the supervisor exited
    first. The status is read every few milliseconds for the first second, then
    at intervals that grow to `longest`: a short run is seen to end at once (not
    after its supervisor has also dispatched the queue and shut its interpreter
    down), and a long one costs a few cheap reads a second."""
    started = time.monotonic()
    delay = FIRST_POLL_S
    while supervisor.poll() is None:
        status = run_store.status_of(store, run_id)
        if status is not None and status.finished:
            return status.value
        time.sleep(delay)
        if time.monotonic() - started > 1.0:
            delay = min(delay * 1.5, longest)
    return None


def _fail_unstarted(store: Store, run_id: int, code: int | None) -> None:
    log = paths.run_dir(run_id) / "supervisor.log"
    detail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
    message = f"the supervisor exited ({code}) before starting the run" + (
        f": {detail[0]}" if detail else ""
    )
    run_store.transition(
        store,
        run_id,
        RunStatus.FAILED,
        expect=RunStatus.QUEUED,
        ended_at=time.time(),
        message=message,
    )
