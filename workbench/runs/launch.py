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

# The finished statuses, as strings (for code that compares plain strings).
TERMINAL = tuple(status.value for status in FINISHED)


def create_run(
    store: Store,
    project: str,
    overrides: dict[str, Any],
    priority: int = 0,
    parent_id: int | None = None,
) -> int:
    """Validate the project's config and the trainer's params, and record a queued
    run with them (a child of `parent_id`, e.g. a sweep's trial)."""
    from workbench.trainers.params import check_params

    row, config = project_config(store, project)
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
    store: Store, project: str, overrides: dict[str, Any], priority: int = 0
) -> tuple[int, subprocess.Popen | None]:
    """Queue a run and start it if a slot is free; returns its id and, when it
    started here, its supervisor process."""
    from workbench.runs.queue import dispatch

    run_id = create_run(store, project, overrides, priority)
    return run_id, dispatch(store).get(run_id)


def wait_for(
    store: Store, run_id: int, supervisor: subprocess.Popen | None = None, poll: float = 0.2
) -> str:
    """Block until the run reaches a terminal status; returns it.

    While the run waits in the queue this keeps dispatching, so it starts as
    soon as a slot frees even if nothing else is using the store.
    """
    from workbench.runs.liveness import mark_lost
    from workbench.runs.queue import dispatch

    while True:
        if supervisor is not None:
            supervisor.wait()
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
