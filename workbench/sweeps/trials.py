"""A sweep's trials: how each is sampled and pruned, and how a trial run's
learning curve reaches Optuna as intermediate scores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workbench.core.metric_rules import CURVE_PREFIXES, higher_is_better
from workbench.store import Store
from workbench.store import sweeps as rows
from workbench.sweeps.objective import Objective


@dataclass
class InFlight:
    """A trial whose run has not been told to Optuna yet."""

    trial: Any  # optuna.trial.Trial
    run_id: int
    reported: set[int] = field(default_factory=set)  # steps already reported
    read: int = 0  # points of the pruning series already read
    key: str | None = None
    sign: float = 1.0  # -1 when the pruning series runs against the objective


def make_sampler(name: str, seed: int) -> Any:
    import optuna

    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # constant_liar: parallel trials in flight count as bad guesses, so
    # concurrent asks spread out instead of piling on one point.
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def make_pruner(name: str) -> Any:
    import optuna

    return optuna.pruners.MedianPruner() if name == "median" else optuna.pruners.NopPruner()


def report_scores(store: Store, flight: InFlight, objective: Objective) -> bool:
    """Report the run's new intermediate scores to the trial; whether there were any."""
    if flight.key is None:
        flight.key = objective.pruning_key or rows.first_series(
            store, flight.run_id, CURVE_PREFIXES
        )
        if flight.key is None:
            return False
        higher = higher_is_better(flight.key)
        flight.sign = 1.0 if higher == (objective.direction == "maximize") else -1.0
    fresh = False
    for idx, step, value in rows.series_since(store, flight.run_id, flight.key, flight.read):
        flight.read = idx + 1
        if step is None or value is None or step in flight.reported:
            continue
        flight.trial.report(flight.sign * value, step)
        flight.reported.add(step)
        fresh = True
    return fresh


def short(value: Any) -> str:
    """A param value for a log line."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)
