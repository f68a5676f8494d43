"""`train_inline`: a project's built-in trainer in the test process, for tests whose subject
is what the trainer makes of a table (the task, the columns used, the metrics, the
saved model), not the processes that run it: a supervised run's trainer is a fresh
interpreter that imports pandas, scikit-learn and LightGBM (seconds of CPU each
time); here they are imported once per test process.

The run is a real run in the test's store (`workbench.start_run`, as a notebook
would own one): the same trainer code writes the same params, metrics, artifacts
and registered version that `run show`, `model list` and `model export` read.
What the trainer prints (its run log under a supervisor) is returned instead.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path


def train_inline(folder: Path, overrides: dict | None = None) -> tuple[int, str]:
    """Train the project in `folder` with its `[train]` params (and `overrides`, as
    `run start --set` gives them): the run's id and what the trainer printed. The
    params are checked first, as `run start` checks them before queueing."""
    import workbench as wb
    from workbench.config.project import load_config
    from workbench.trainers.__main__ import train
    from workbench.trainers.params import check_params

    config = load_config(folder)
    params = {**config.params, **(overrides or {})}
    check_params(config.trainer, params)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), wb.start_run(folder, params) as run:
        train()
    return run.id, printed.getvalue()

