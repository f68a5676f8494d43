"""Comparing runs: params side by side, which differ, and the best run per metric."""

from __future__ import annotations

from typing import Any

from workbench.core.errors import UsageError
from workbench.core.metric_rules import is_internal_param, lower_is_better
from workbench.runs.queries import show_run
from workbench.store import Store

__all__ = ["compare_runs", "lower_is_better"]  # lower_is_better: see workbench.core.metric_rules


def compare_runs(store: Store, run_ids: list[str]) -> dict[str, Any]:
    if len(run_ids) < 2:
        raise UsageError("compare needs at least two runs")
    runs = [show_run(store, rid) for rid in run_ids]
    ids = [r["id"] for r in runs]
    param_keys = sorted({k for r in runs for k in r["params"] if not is_internal_param(k)})
    params = {k: [r["params"].get(k) for r in runs] for k in param_keys}
    metric_keys = sorted({k for r in runs for k in r["metrics"]})
    metrics = {k: [r["metrics"].get(k) for r in runs] for k in metric_keys}
    best = {}
    for key, values in metrics.items():
        scored = [(v, i) for v, i in zip(values, ids, strict=True) if v is not None]
        if scored:
            # On a tie the earlier run wins.
            if lower_is_better(key):
                best[key] = min(scored, key=lambda vi: (vi[0], vi[1]))[1]
            else:
                best[key] = max(scored, key=lambda vi: (vi[0], -vi[1]))[1]
    return {
        "runs": [
            {k: r[k] for k in ("id", "project", "status", "started_at", "duration_s")} for r in runs
        ],
        "params": params,
        "differing_params": [k for k, v in params.items() if len({repr(x) for x in v}) > 1],
        "metrics": metrics,
        "best": best,
    }
