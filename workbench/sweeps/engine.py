"""Running a sweep: Optuna's ask/tell over child runs dispatched through the queue.

The sweep is a run row of its own (trainer "sweep", owned by this process the
way a supervisor owns a run), and every trial is a real child run with its
own supervisor, resources and log. The study lives in a journal file under
`$WORKBENCH_HOME/sweeps/<sweep run id>/` and the trials' runs in the store,
so a sweep stopped at any point, even by kill -9, resumes where it stopped:
a trial already told is never told again, and a trial whose run is still
going (supervisors are detached) is waited for, not repeated.

The work is split by responsibility; this module gathers the public names
that callers import from it: `objective` (what trials are judged by),
`journal` (the Optuna study's file), `trials` (sampling, pruning, scores),
`search` (the loop), `lifecycle` (start, resume) and `report` (reading back).
"""

from __future__ import annotations

from workbench.store.sweeps import SWEEP_TRAINER
from workbench.sweeps.journal import open_study, sweep_dir
from workbench.sweeps.lifecycle import DEFAULT_TRIALS, resume_sweep, start_sweep
from workbench.sweeps.objective import Objective, objective_for
from workbench.sweeps.report import importances, list_sweeps, summary
from workbench.sweeps.search import HEARTBEAT_S, POLL_S, Sweep
from workbench.sweeps.trials import InFlight

__all__ = [
    "DEFAULT_TRIALS",
    "HEARTBEAT_S",
    "POLL_S",
    "SWEEP_TRAINER",
    "InFlight",
    "Objective",
    "Sweep",
    "importances",
    "list_sweeps",
    "objective_for",
    "open_study",
    "resume_sweep",
    "start_sweep",
    "summary",
    "sweep_dir",
]
