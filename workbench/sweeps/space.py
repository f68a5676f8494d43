"""The sweep's search space as Optuna distributions.

The `[sweep]` table itself is declared and checked in `workbench.config.sweep`
when the config is loaded. Optuna is imported only by `distributions`, when a
sweep actually runs.
"""

from __future__ import annotations

from typing import Any

# The [sweep] table is part of workbench.toml, so config checks it; these names
# stay importable from here for the sweep engine.
from workbench.config.sweep import (
    PRUNERS,
    SAMPLERS,
    TYPES,
    Param,
    SweepConfig,
    check_sweep,
    parse_space,
)

__all__ = [
    "PRUNERS",
    "SAMPLERS",
    "TYPES",
    "Param",
    "SweepConfig",
    "check_sweep",
    "distributions",
    "parse_space",
]


def distributions(space: tuple[Param, ...]) -> dict[str, Any]:
    """The space as Optuna distributions (imports Optuna)."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    out: dict[str, Any] = {}
    for p in space:
        if p.type == "categorical":
            out[p.name] = CategoricalDistribution(list(p.choices))
        elif p.type == "int":
            out[p.name] = IntDistribution(int(p.low), int(p.high), log=p.log, step=int(p.step or 1))
        else:
            out[p.name] = FloatDistribution(p.low, p.high, log=p.log, step=p.step)
    return out
