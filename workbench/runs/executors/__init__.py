"""Executors: where a run executes. "local" (the default) is the detached
supervisor on this machine, started by the run queue; "slurm" submits a batch
job; a plugin may add others through the `workbench_executors` hook.

A project picks one with `[runs] executor` in workbench.toml; `run start
--executor` overrides it for one run. The local executor needs nothing here:
its runs wait in the queue (`runs.queue`). Other executors' runs are handed
over at once, marked dispatched so the local queue never starts them, and
followed by `poll` (from `runs.reconcile`, once per CLI command and TUI poll).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

from workbench.core.errors import UsageError, WorkbenchError
from workbench.store import Store
from workbench.store import jobs as job_store
from workbench.store import runs as run_store
from workbench.store.jobs import Job
from workbench.store.runs import RunStatus

logger = logging.getLogger("workbench.runs.executors")

LOCAL = job_store.LOCAL
BUILTIN = ("local", "slurm")


class Executor(Protocol):
    """What a non-local executor does (see `hookspecs.workbench_executors`)."""

    name: str

    def submit(self, store: Store, run_id: int, config: Any) -> Any: ...

    def poll(self, store: Store, jobs: list[Job], *, force: bool = False) -> None: ...

    def cancel(self, store: Store, job: Job) -> None: ...


def executor(name: str, project_dir: Any = None) -> Executor:
    """The executor named `name` (not "local"); UsageError naming the known ones."""
    if name == "slurm":
        from workbench.runs.executors.slurm import SlurmExecutor

        return SlurmExecutor()
    from workbench.plugins import plugins_for

    manager = plugins_for(project_dir)
    found = manager.find("workbench_executors", name)
    if found is None:
        known = sorted({*BUILTIN, *manager.merged("workbench_executors")})
        raise UsageError(f"unknown executor {name!r}; expected one of {', '.join(known)}")
    return found() if isinstance(found, type) else found


def choose(config: Any, override: str | None) -> str:
    """The executor of a run: `--executor`, else the project's `[runs] executor`."""
    return override or getattr(config, "executor", LOCAL) or LOCAL


def submit(store: Store, run_id: int, config: Any, name: str) -> Any:
    """Hand queued run `run_id` to executor `name` (already recorded as its executor)."""
    return executor(name, config.root).submit(store, run_id, config)


def poll(store: Store, *, force: bool = False, run_id: int | None = None) -> None:
    """Bring every non-local run in line with its executor (one batched call per
    executor); an executor that cannot be asked is logged, never fatal to the
    command that reconciles."""
    jobs = job_store.active(store)
    if run_id is not None:
        jobs = [j for j in jobs if j.run_id == run_id]
    by_name: dict[str, list[Job]] = {}
    for job in jobs:
        by_name.setdefault(job.executor, []).append(job)
    for name, group in by_name.items():
        try:
            executor(name).poll(store, group, force=force)
        except WorkbenchError as exc:
            logger.warning("cannot poll the %s executor: %s", name, exc.message)
        except OSError as exc:  # a journal or folder on the shared filesystem unreadable
            logger.warning("cannot read a %s job's files: %s", name, exc)


def wait(store: Store, run_id: int, poll_s: float = 0.5) -> str:
    """Block until a non-local run ends; returns its status."""
    while True:
        status = run_store.status_of(store, run_id)
        if status is not None and status.finished:
            return status.value
        poll(store, run_id=run_id)
        status = run_store.status_of(store, run_id)
        if status is not None and status.finished:
            return status.value
        time.sleep(poll_s)


def stop(store: Store, job: Job, timeout: float = 60.0) -> str:
    """Ask the executor to cancel the run's job, and wait (up to `timeout`) for
    the outcome; returns the run's status then."""
    if job.finished:
        raise UsageError(f"run {job.run_id} is already {job.status.value}")
    run_store.update(store, job.run_id, stop_requested_at=time.time())
    job = job_store.job_of(store, job.run_id) or job
    runner = executor(job.executor)
    if not job.job_id:
        run_store.transition(
            store,
            job.run_id,
            RunStatus.STOPPED,
            expect=RunStatus.QUEUED,
            ended_at=time.time(),
            message="stopped before it was submitted",
        )
    else:
        runner.cancel(store, job)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = run_store.status_of(store, job.run_id)
        if status is not None and status.finished:
            return status.value
        poll(store, force=True, run_id=job.run_id)
        time.sleep(0.5)
    status = run_store.status_of(store, job.run_id)
    return status.value if status is not None else RunStatus.STOPPED.value
