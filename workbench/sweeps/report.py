"""Reading sweeps back: a project's sweeps with their progress, one sweep's
document (best trial, registered version, every trial), and the parameters'
importances."""

from __future__ import annotations

from typing import Any

from workbench.core.errors import NotFoundError
from workbench.projects import get_project
from workbench.store import Store
from workbench.store import models as model_rows
from workbench.store import runs
from workbench.store import sweeps as rows
from workbench.store.sweeps import SWEEP_TRAINER
from workbench.sweeps.journal import open_study


def list_sweeps(store: Store, project: str) -> list[dict[str, Any]]:
    """A project's sweeps, newest first, with their trials' progress (reads
    only: a sweep whose process died shows as running until reconciled)."""
    project_id = get_project(store, project)["id"]
    out = []
    for sweep_id in rows.project_sweeps(store, project_id):
        row = runs.get(store, sweep_id)
        if row is None:
            continue  # deleted meanwhile
        spec = rows.params(store, sweep_id)
        out.append(
            {
                "id": row.id,
                "status": row.status.value,
                "trials": spec.get("_trials"),
                "runs": rows.trial_counts(store, sweep_id),
                "objective": spec.get("_objective"),
                "direction": spec.get("_direction"),
                "best_value": rows.latest_value(store, sweep_id, spec.get("_objective")),
                "best_run": spec.get("_best_run"),
                "message": row.message,
            }
        )
    return out


def importances(sweep_id: int) -> dict[str, float]:
    """Each parameter's share of the objective's variance over the complete
    trials (Optuna's fANOVA), largest first; {} before two trials complete."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(sweep_id)
    if len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) < 2:
        return {}
    try:
        return dict(optuna.importance.get_param_importances(study))
    except (ValueError, RuntimeError):  # e.g. every trial had the same params
        return {}


def summary(store: Store, sweep_id: int) -> dict[str, Any]:
    """The sweep's document: its best trial, the registered version, every trial."""
    from workbench.runs.queries import get_run, iso

    row = get_run(store, sweep_id)
    if row["trainer"] != SWEEP_TRAINER:
        raise NotFoundError(f"run {sweep_id} is not a sweep")
    spec = rows.params(store, sweep_id)
    study = open_study(sweep_id)
    trial_runs = rows.trial_runs(store, sweep_id)
    trials = [
        {
            "number": t.number,
            "state": t.state.name.lower(),
            "value": t.value,
            "run_id": trial_runs[t.number].id if t.number in trial_runs else None,
            "run_status": (
                trial_runs[t.number].status.value if t.number in trial_runs else None
            ),
            "params": t.params,
            "duration_s": t.duration.total_seconds() if t.duration else None,
            "reason": t.user_attrs.get("reason"),
        }
        for t in study.get_trials(deepcopy=False)
    ]
    complete = [t for t in trials if t["state"] == "complete"]
    best = None
    if complete:
        pick = max if spec["_direction"] == "maximize" else min
        top = pick(complete, key=lambda t: (t["value"], -t["number"]))
        best = {k: top[k] for k in ("number", "run_id", "value", "params")}
    found = model_rows.for_run(store, best["run_id"]) if best and best["run_id"] else None
    registered = None
    if found is not None:
        from workbench.models.registry import get_version_by_id

        version = get_version_by_id(store, found.id)
        registered = {"version": version.version, "ref": version.ref, "aliases": version.aliases}
    return {
        "sweep_run_id": sweep_id,
        "project": row["project"],
        "status": row["status"],
        "message": row["message"],
        "objective": spec["_objective"],
        "direction": spec["_direction"],
        "trials_requested": spec["_trials"],
        "parallel": spec["_parallel"],
        "space": spec["_space"],
        "started_at": iso(row["started_at"]),
        "ended_at": iso(row["ended_at"]),
        "best": best,
        "registered_version": registered,
        "trials": trials,
    }
