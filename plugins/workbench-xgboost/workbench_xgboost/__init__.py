"""Workbench plugin: an XGBoost trainer, `[train] trainer = "xgboost"`."""

from __future__ import annotations

from workbench import hookimpl


@hookimpl
def workbench_trainers() -> dict[str, type]:
    from workbench_xgboost.trainer import XGBoostTrainer

    return {"xgboost": XGBoostTrainer}
