"""Helpers for tests that train and export models on tables.

`train_inline`: a project's built-in trainer in the test process, for tests whose subject
is what the trainer makes of a table (the task, the columns used, the metrics, the
saved model), not the processes that run it: a supervised run's trainer is a fresh
interpreter that imports pandas, scikit-learn and LightGBM (seconds of CPU each
time); here they are imported once per test process.

The run is a real run in the test's store (`workbench.start_run`, as a notebook
would own one): the same trainer code writes the same params, metrics, artifacts
and registered version that `run show`, `model list` and `model export` read.
What the trainer prints (its run log under a supervisor) is returned instead.

`distributions_read_once`: one reading of the installed distributions for many
bundle exports.
"""

from __future__ import annotations

import contextlib
import functools
import io
from collections.abc import Iterator
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


@contextlib.contextmanager
def distributions_read_once() -> Iterator[None]:
    """While the block runs, `importlib.metadata.packages_distributions()` reads the
    installed distributions once and answers every later call from that reading.

    A bundle export asks it which distributions provide the model's modules (to pin
    its requirements); each call reads every installed distribution's file list,
    about 0.2 CPU-s. What is installed does not change while the tests run, so a
    module that exports dozens of bundles needs one reading. Each caller gets its own
    copy of the mapping, as from a fresh call."""
    from importlib import metadata

    import pytest

    once = functools.cache(metadata.packages_distributions)

    def packages_distributions() -> dict[str, list[str]]:
        return {module: list(names) for module, names in once().items()}

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(metadata, "packages_distributions", packages_distributions)
        yield
