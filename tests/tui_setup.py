"""Setup shared by the terminal-UI tests: the penguins sample registered with no
runs (`from tui_setup import penguins`), and `template_env` / `train` for the
module-scoped stores of trained runs that test files build once and copy."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from tui_support import SAMPLES
from wbtest import NETGUARD

from workbench.projects import add_project
from workbench.store import open_store


@pytest.fixture
def penguins(tmp_path: Path, wb_home: Path) -> str:
    """The penguins sample project copied into tmp_path and registered in
    this test's store (no runs); its name."""
    shutil.copytree(SAMPLES / "penguins-lightgbm", tmp_path / "penguins")
    store = open_store()
    try:
        add_project(store, tmp_path / "penguins")
    finally:
        store.close()
    return "penguins"


@contextmanager
def template_env(home: Path) -> Iterator[None]:
    """The environment a template store is built in: its own WORKBENCH_HOME,
    the network guard for its processes, one LightGBM thread (the same model on
    any machine) and no warm runner (the few runs of a template would pay for
    its imports and gain nothing, and it would outlive the build)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", str(home))
        mp.setenv(
            "PYTHONPATH",
            os.pathsep.join([str(NETGUARD), *filter(None, [os.environ.get("PYTHONPATH")])]),
        )
        mp.setenv("OMP_NUM_THREADS", "1")
        mp.setenv("WORKBENCH_WARM", "0")
        for var in ("WORKBENCH_RUN_ID", "WORKBENCH_PARAMS", "WORKBENCH_PROJECT_DIR"):
            mp.delenv(var, raising=False)
        yield


def register(folder: Path) -> None:
    """`workbench project add folder`, through the core."""
    store = open_store()
    try:
        add_project(store, folder)
    finally:
        store.close()


def train(project: str, overrides: dict[str, Any] | None = None) -> int:
    """A real supervised run of `project` to its end (`workbench run start
    --wait`, without the CLI's own interpreter); its id. It must succeed."""
    from workbench.runs import launch

    store = open_store()
    try:
        run_id, supervisor = launch.start_run(store, project, overrides or {})
        status = launch.wait_for(store, run_id, supervisor)
    finally:
        store.close()
    if status != "succeeded":
        from workbench.core import paths

        log = paths.home() / "runs" / str(run_id) / "output.log"
        raise AssertionError(f"run {run_id}: {status}\n{log.read_text(errors='replace')}")
    return run_id
