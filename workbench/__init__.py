"""Workbench: an offline-first terminal MLOps workbench.

Importing the package gives the tracking API for training code:

    import workbench as wb
    wb.log_params({"lr": 0.1})
    wb.log_metric("loss", 0.31, step=7)
"""

from workbench.tracking import (
    active_run,
    flush,
    log_artifact,
    log_metric,
    log_metrics,
    log_params,
    params,
    project_config,
    project_dir,
    start_run,
)

__version__ = "0.1.0"

__all__ = [
    "active_run",
    "flush",
    "log_artifact",
    "log_metric",
    "log_metrics",
    "log_params",
    "params",
    "project_config",
    "project_dir",
    "start_run",
]
