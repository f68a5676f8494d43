"""A sweep on Slurm as ONE job array, and requeueing its failed tasks.

`sweep start --executor slurm --trials N --parallel K` records N queued trial
runs (params `_task` = 0..N-1) and submits them in one `sbatch
--array=0-(N-1)%K`. The study's journal lives on the shared filesystem (under
`[slurm] workdir`); each task asks it for its trial on the node and tells it
the outcome (`runs.executors.trial`), so the tasks coordinate without this
process. Here the sweep only follows: the runs' journals are ingested by the
usual poll (child runs appear live), each ended run's trial is recorded on the
sweep run, and a trial whose task was killed before it could tell is told
failed. When every task has ended the best trial is registered as for a local
sweep.

`sweep resume` of such a sweep requeues: every failed, lost (preempted) or
stopped trial run not yet retried gets a new run (`_retry_of` the old one) with
the same task index, its trial's params are enqueued in the study (so the
retry runs the same point), and the indices go out as a new array
(`--array=3,7%K`). Tasks still queued or running are waited for.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core import paths
from workbench.core.errors import WorkbenchError
from workbench.projects import project_config
from workbench.runs import executors
from workbench.runs.launch import create_run
from workbench.store import Store
from workbench.store import jobs as job_store
from workbench.store import runs
from workbench.store.jobs import Job
from workbench.store.runs import RunStatus
from workbench.sweeps.journal import study_file
from workbench.sweeps.report import summary

if TYPE_CHECKING:
    from workbench.sweeps.search import Sweep

POLL_S = 0.5  # the executor's poll is rate-limited itself; this is the store read's pace
TASK_KEY = "_task"
RETRY_KEY = "_retry_of"
RETRYABLE = (RunStatus.FAILED, RunStatus.LOST, RunStatus.STOPPED)


def array_executor(name: str | None, project_dir: Any = None) -> Any:
    """The executor `name` when it runs a sweep as one array (Slurm), else None."""
    if not name or name == executors.LOCAL:
        return None
    runner = executors.executor(name, project_dir)
    return runner if hasattr(runner, "submit_array") else None


def shared_study(store: Store, config: Any, sweep_id: int) -> Path:
    """Where an array sweep's study goes: beside its tasks' run folders."""
    from workbench.runs.executors.slurm import workdir

    uuid = (job_store.run_uuid(store, sweep_id) or "")[:8] or "x"
    return workdir(config.slurm) / f"sweep-{sweep_id}-{uuid}" / "study.log"


def _whole(value: Any) -> bool:
    """A task index or trial number: an int of 0 or more (never a bool), below
    Slurm's largest array index."""
    return type(value) is int and 0 <= value < 100_000_000


def retryable(store: Store, sweep_id: int) -> list[Job]:
    """The sweep's trial runs that failed, were lost (preempted) or stopped, and
    were not retried yet, oldest first."""
    children = job_store.children(store, sweep_id)
    retried = {runs.params(store, c.run_id).get(RETRY_KEY) for c in children}
    return [c for c in children if c.status in RETRYABLE and c.run_id not in retried]


class ArrayDriver:
    """Follows (and submits, and requeues) a sweep's job arrays."""

    def __init__(self, sweep: Sweep, runner: Any) -> None:
        self.sweep = sweep
        self.store = sweep.store
        self.runner = runner
        self.pending: set[int] = set()

    def run(self, on_progress: Callable[[Sweep], None] | None = None) -> dict[str, Any]:
        s = self.sweep
        children = job_store.children(self.store, s.run_id)
        self.pending = {c.run_id for c in children if not c.finished}
        tasks = self._requeue(children) if children else {}
        known = {self._index(c.run_id) for c in children}
        tasks.update({i: {} for i in range(s.n_trials) if i not in known})
        if tasks:
            self._submit(tasks)
        started = time.monotonic()
        next_beat = 0.0
        timed_out = False
        while self.pending:
            if s.stop_requested:
                return self._stop()
            if s.timeout is not None and not timed_out and time.monotonic() - started > s.timeout:
                timed_out = True
                self._cancel_queued()
            executors.poll(self.store)  # journals ingested; one squeue for every task
            found = {j.run_id: j for j in job_store.children(self.store, s.run_id)}
            for run_id in sorted(self.pending):
                job = found.get(run_id)
                if job is None or job.finished:
                    self.pending.discard(run_id)
                    if job is not None:
                        self._conclude(job)
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + 1.0
                s._heartbeat()
            if on_progress is not None:
                on_progress(s)
            if self.pending:
                time.sleep(POLL_S)
        note = f"timeout reached after {s.finished} trials" if timed_out else None
        return s._finish(note)

    # -- submitting --------------------------------------------------------------

    def _requeue(self, children: list[Job]) -> dict[int, dict[str, Any]]:
        """The tasks that retry failed trial runs: task index -> extra params."""
        tasks: dict[int, dict[str, Any]] = {}
        trials = self.sweep.study.get_trials(deepcopy=False)
        for job in retryable(self.store, self.sweep.run_id):
            params = runs.params(self.store, job.run_id)
            index = params.get(TASK_KEY)
            if not _whole(index) or index in tasks:
                continue  # a run whose index was rewritten by its journal: left alone
            number = params.get("_trial")
            if _whole(number) and number < len(trials):
                # The retry runs the same point: the next ask takes it first.
                self.sweep.study.enqueue_trial(
                    trials[number].params, user_attrs={"retry_of_trial": number}
                )
                self.sweep._say(
                    f"task {index}: trial {number} requeued (run {job.run_id} {job.status.value})"
                )
            else:
                self.sweep._say(f"task {index}: requeued (run {job.run_id} {job.status.value})")
            tasks[index] = {RETRY_KEY: job.run_id}
        return tasks

    def _submit(self, tasks: dict[int, dict[str, Any]]) -> None:
        from optuna.distributions import distribution_to_json

        from workbench.core.files import exclusive_lock

        s = self.sweep
        loaded = project_config(self.store, s.project)
        config = loaded[1]
        created: dict[int, int] = {}
        # Under the queue's lock: no dispatcher takes a new run for a local supervisor.
        with exclusive_lock(paths.home() / "queue.lock"):
            for index in sorted(tasks):
                overrides = {"_sweep": s.run_id, TASK_KEY: index, **tasks[index]}
                run_id = create_run(self.store, s.project, overrides, 0, s.run_id, loaded)
                job_store.mark_submitted(self.store, run_id, executor=s.executor)
                created[index] = run_id
        spec = {
            "study": str(study_file(s.run_id)),
            "name": f"sweep-{s.run_id}",
            "sweep_id": s.run_id,
            "distributions": {name: distribution_to_json(d) for name, d in s.distributions.items()},
            "sampler": s.sampler_name,
            "seed": s.seed,
            "objective": s.objective.key,
        }
        array_id = self.runner.submit_array(
            self.store,
            created,
            config,
            sweep=spec,
            parallel=s.parallel,
            name=f"wb-{config.name}-sweep-{s.run_id}",
        )
        self.pending.update(created.values())
        indices = sorted(created)
        shown = ", ".join(map(str, indices)) if len(indices) <= 8 else f"{len(indices)} tasks"
        s._say(
            f"array {array_id} submitted: tasks {shown}, {s.parallel} at a time"
            f" (runs {min(created.values())}-{max(created.values())})"
        )

    # -- following ---------------------------------------------------------------

    def _index(self, run_id: int) -> int | None:
        index = runs.params(self.store, run_id).get(TASK_KEY)
        return index if _whole(index) else None

    def _conclude(self, job: Job) -> None:
        """Record an ended task's trial on the sweep; tell it failed when its task
        could not (killed before it wrote its outcome)."""
        import optuna
        from optuna.trial import TrialState

        s = self.sweep
        params = runs.params(self.store, job.run_id)
        number = params.get("_trial")
        row = runs.get(self.store, job.run_id)
        status = row.status.value if row else job.status.value
        if not _whole(number):
            task = params.get(TASK_KEY)
            s._say(f"task {task}: run {job.run_id} {status} before it asked for a trial")
            return
        trials = s.study.get_trials(deepcopy=False)
        if number >= len(trials):
            return
        trial = trials[number]
        if trial.state is TrialState.RUNNING:
            reason = f"run {status}" + (f": {row.message}" if row and row.message else "")
            with contextlib.suppress(Exception):  # the task may tell it this very moment
                live = optuna.trial.Trial(s.study, trial._trial_id)
                live.set_user_attr("reason", reason[:500])
                s.study.tell(number, state=TrialState.FAIL)
            trial = s.study.get_trials(deepcopy=False)[number]
        if trial.state is TrialState.COMPLETE:
            s._record(number, "complete", trial.value)
        elif trial.state is TrialState.PRUNED:
            s._record(number, "pruned", None)
        else:
            reason = str(trial.user_attrs.get("reason") or f"run {status}")
            s._record(number, "failed", None, reason)

    # -- stopping ----------------------------------------------------------------

    def _cancel_queued(self) -> int:
        """scancel the tasks that have not started; running ones finish."""
        cancelled = 0
        for job in job_store.children(self.store, self.sweep.run_id):
            if job.run_id in self.pending and job.status is RunStatus.QUEUED and job.job_id:
                runs.update(self.store, job.run_id, stop_requested_at=time.time())
                try:
                    self.runner.cancel(self.store, job)
                    cancelled += 1
                except WorkbenchError as exc:
                    self.sweep._say(f"run {job.run_id}: {exc.message}")
        return cancelled

    def _stop(self) -> dict[str, Any]:
        s = self.sweep
        cancelled = self._cancel_queued()
        running = len(self.pending) - cancelled
        message = (
            f"interrupted after {s.finished} of {s.n_trials} trials"
            + (f"; {cancelled} queued tasks cancelled" if cancelled else "")
            + (f"; {running} still running will be picked up" if running > 0 else "")
            + f"; continue with `workbench sweep resume {s.project} {s.run_id}`"
        )
        s._say(message)
        s._end("stopped", message)
        return summary(self.store, s.run_id)


def requeue_detached(store: Store, sweep_id: int) -> int:
    """Start `workbench sweep resume` for an array sweep's failed tasks in a
    process of its own (the TUI's key): how many tasks it requeues. UsageError
    when the sweep's process still runs, or when it has nothing to requeue."""
    import sys

    from workbench.core.errors import UsageError
    from workbench.core.spawn import spawn_detached

    row = runs.get(store, sweep_id)
    if row is None:
        raise UsageError(f"no sweep {sweep_id}")
    if row.status is RunStatus.RUNNING:
        raise UsageError(
            f"sweep {sweep_id} is running; its failed tasks can be requeued once it ends"
        )
    failed = retryable(store, sweep_id)
    if not failed:
        raise UsageError(f"sweep {sweep_id} has no failed task to requeue")
    spawn_detached(
        [sys.executable, "-m", "workbench", "sweep", "resume", str(row.project), str(sweep_id)],
        log=paths.run_dir(sweep_id) / "requeue.log",
    )
    return len(failed)
