"""A sweep's trial inside a Slurm array task, on the node.

A sweep on Slurm is ONE job array (`sbatch --array=0-(N-1)%K`). Its tasks
coordinate through the sweep's Optuna study, a journal file on the shared
filesystem (Optuna's `JournalFileBackend` with its symlink lock, the lock
Optuna documents for NFS): each task picks its run's orders by
`SLURM_ARRAY_TASK_ID`, asks the study for a trial when it starts (so the
sampler sees every trial told so far, and the ones still running as bad
guesses: `constant_liar`), runs the trainer with those params, and tells the
study the objective read back from its own run journal before it writes its
exit record. The workbench side never has to be up for the search to go on;
it ingests the runs' journals (params, metrics, outcome) as for single runs.

A trial the node could not tell (the task killed hard) is told failed by the
sweep's process when it sees the run end (`sweeps.arrays`).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from workbench.runs.executors.journal import parse

TASK_ENV = "SLURM_ARRAY_TASK_ID"


def task_spec(spec: dict[str, Any], index: str | None = None) -> tuple[dict[str, Any], int]:
    """The run's own spec (as a single run's) of this array task, and its index."""
    index = index if index is not None else os.environ.get(TASK_ENV)
    orders = spec["array"].get(str(index)) if index is not None else None
    if not isinstance(orders, dict):
        raise LookupError(f"the array has no task {index!r}")
    run = {key: value for key, value in spec.items() if key not in ("array", "sweep")}
    run.update(
        run_id=orders["run_id"], folder=orders["folder"], params=dict(orders.get("params") or {})
    )
    return run, int(str(index))


class TrialTask:
    """The trial an array task asked the sweep's study for, and its telling."""

    def __init__(self, sweep: dict[str, Any], index: int, run_id: int) -> None:
        import optuna
        from optuna.distributions import json_to_distribution
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        path = str(sweep["study"])
        storage = JournalStorage(JournalFileBackend(path, lock_obj=JournalFileSymlinkLock(path)))
        study = optuna.load_study(study_name=sweep["name"], storage=storage)
        # Tasks start at once with the same history: the index keeps their draws
        # apart, the trials so far a retry's (same index) from its first try's.
        seed = int(sweep.get("seed") or 0) + index * 100_003 + len(study.get_trials(deepcopy=False))
        study.sampler = _sampler(str(sweep.get("sampler") or "tpe"), seed)
        distributions = {
            name: json_to_distribution(text) for name, text in sweep["distributions"].items()
        }
        self.study = study
        self.key = str(sweep["objective"])
        self.trial = study.ask(distributions)
        self.trial.set_user_attr("run_id", run_id)
        self.number: int = self.trial.number
        self.params: dict[str, Any] = dict(self.trial.params)

    def journal_params(self, sweep_id: int) -> dict[str, str]:
        """The params record's values (JSON text) naming the trial, as a local
        sweep's trial run has them."""
        values = {**self.params, "_trial": self.number, "_sweep": sweep_id}
        return {key: json.dumps(value) for key, value in values.items()}

    def tell(self, status: str, message: str | None, journal: Path) -> None:
        """The trial's outcome: the objective's last value in the run's journal
        when the run succeeded, else failed (with why, for the sweep's report)."""
        from optuna.trial import TrialState

        value = last_value(journal, self.key) if status == "succeeded" else None
        if value is not None:
            self.study.tell(self.trial, value)
            return
        reason = (
            f"run logged no {self.key!r}"
            if status == "succeeded"
            else f"run {status}" + (f": {message}" if message else "")
        )
        self.trial.set_user_attr("reason", reason[:500])
        self.study.tell(self.trial, state=TrialState.FAIL)


def _sampler(name: str, seed: int) -> Any:
    import optuna

    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def last_value(journal: Path, key: str) -> float | None:
    """The last finite value of metric `key` in a run journal, or None."""
    found: float | None = None
    marker = b'"t":"m"'
    try:
        with open(journal, "rb") as f:
            for line in f:
                if marker not in line:
                    continue  # most lines are samples: not parsed
                record = parse(line)
                if record is None or record.get("k") != key:
                    continue
                values = record.get("v")
                if isinstance(values, list):
                    numbers = [v for v in values if isinstance(v, (int, float))]
                    if numbers:
                        found = float(numbers[-1])
    except OSError as exc:
        print(f"workbench job: cannot read {journal}: {exc}", file=sys.stderr)
    return found
