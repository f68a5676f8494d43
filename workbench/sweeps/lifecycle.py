"""Starting and resuming a sweep: the sweep run recorded (or taken over) as
owned by this process, with its spec as params, ready for `Sweep.run`."""

from __future__ import annotations

import os
import socket
import time

from workbench.core import paths
from workbench.core.errors import NotFoundError, UsageError
from workbench.projects import get_project, project_config
from workbench.runs.liveness import mark_lost
from workbench.store import Store
from workbench.store import runs
from workbench.store import sweeps as rows
from workbench.store.runs import RunStatus
from workbench.store.sweeps import SWEEP_TRAINER
from workbench.sweeps.arrays import array_executor, retryable, shared_study
from workbench.sweeps.journal import open_study, place_study, study_file
from workbench.sweeps.objective import objective_for
from workbench.sweeps.search import Sweep

DEFAULT_TRIALS = 20


def start_sweep(
    store: Store,
    project: str,
    trials: int | None = None,
    parallel: int | None = None,
    timeout: float | None = None,
    executor: str | None = None,
) -> Sweep:
    """Record a new sweep run of `project`, owned by this process; its trials run
    on `executor` (default: the project's `[runs] executor`)."""
    row, config = project_config(store, project)
    if config.sweep is None:
        raise UsageError(
            f"{config.file} has no [sweep.space]: add the parameters to search under it,"
            ' e.g. learning_rate = { type = "log-uniform", low = 0.01, high = 0.3 }'
        )
    objective = objective_for(config)
    spec = {
        "_trials": trials or config.sweep.trials or DEFAULT_TRIALS,
        "_parallel": parallel or config.sweep.parallel or 1,
        "_timeout": timeout,
        "_objective": objective.key,
        "_metric": objective.metric,
        "_direction": objective.direction,
        "_space": {p.name: p.describe() for p in config.sweep.space},
        "_sampler": config.sweep.sampler,
        "_pruner": config.sweep.pruner,
        "_seed": config.sweep.seed if config.sweep.seed is not None else config.seed,
        "_executor": executor or config.executor,
    }
    run_id = rows.create(
        store,
        row["id"],
        spec,
        _me(),
        time.time(),
        message=f"sweep {{id}} started: {spec['_trials']} trials of {config.name}",
        data={"space": spec["_space"]},
    )
    paths.run_dir(run_id).mkdir(parents=True, exist_ok=True)
    if array_executor(spec["_executor"], config.root) is not None:
        # Its tasks ask the study for trials on the nodes: it lives on the shared filesystem.
        place_study(run_id, shared_study(store, config, run_id))
    return Sweep(store, run_id)


def resume_sweep(
    store: Store,
    project: str,
    sweep_id: int | None = None,
    trials: int | None = None,
    parallel: int | None = None,
    timeout: float | None = None,
) -> Sweep:
    """Take over an interrupted sweep (default: the project's latest unfinished
    one); `trials`, `parallel` and `timeout` replace the recorded ones when given."""
    project_id = get_project(store, project)["id"]
    mark_lost(store)  # a sweep whose process died is resumable
    if sweep_id is None:
        sweep_id = rows.latest_unfinished(store, project_id)
        if sweep_id is None:
            raise NotFoundError(f"{project} has no unfinished sweep to resume")
    row = runs.get(store, sweep_id)
    if row is None or row.trainer != SWEEP_TRAINER or row.project_id != project_id:
        raise NotFoundError(f"{project} has no sweep {sweep_id}")
    if row.status is RunStatus.RUNNING:
        raise UsageError(
            f"sweep {sweep_id} is running (process {row.supervisor_pid}); "
            f"stop it first with `workbench run stop {sweep_id}`"
        )
    if row.status is RunStatus.SUCCEEDED and not _requeueable(store, sweep_id):
        raise UsageError(f"sweep {sweep_id} has finished; start a new one")
    if os.path.lexists(study_file(sweep_id)):
        open_study(sweep_id)  # a damaged journal is refused before the sweep is taken over
    changes = {"_trials": trials, "_parallel": parallel, "_timeout": timeout}
    given = {k: v for k, v in changes.items() if v is not None}
    if not rows.take_over(store, sweep_id, row.status, _me(), time.time(), given):
        raise UsageError(f"sweep {sweep_id} was just taken over by another process")
    return Sweep(store, sweep_id)


def _requeueable(store: Store, sweep_id: int) -> bool:
    """Whether a finished sweep ran as a job array with failed tasks to requeue."""
    executor = rows.params(store, sweep_id).get("_executor")
    return array_executor(executor) is not None and bool(retryable(store, sweep_id))


def _me() -> rows.Owner:
    import psutil

    me = psutil.Process()
    return rows.Owner(os.getpid(), me.create_time(), socket.gethostname())
