"""Trained stores shared by the export, bundle and serving tests.

Training a sample project takes a `workbench` process, a supervisor and a
trainer (several CPU-seconds each time), and several test files need the same
trained models. `trained_home` trains each store once per test session: xdist's
workers share it through the run's common cache folder (the `shared_cache`
fixture), the first worker to ask trains while the others wait on a file lock.
A store is built on the store of all its projects but the last, so files that
need the same first projects share those trainings too. Tests never use these
stores directly: each copies one into its own WORKBENCH_HOME (`copy_home`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from wbtest import NETGUARD, REPO, regular_only, wb, wb_inprocess

# The LightGBM sample's parameters, replaced by each variant's.
_LIGHTGBM_PARAMS = (
    "n_estimators = 150, learning_rate = 0.05, num_leaves = 15, min_child_samples = 5"
)

# Project name -> (sample project it is copied from, edits to its workbench.toml).
PROJECTS: dict[str, tuple[str, dict[str, str]]] = {
    "penguins": ("penguins-lightgbm", {}),
    "autompg": ("autompg-sklearn", {}),
    # A scikit-learn classifier on penguins (its `sex` column has missing values).
    "penguins-rf": (
        "penguins-lightgbm",
        {
            'name = "penguins"': 'name = "penguins-rf"',
            'trainer = "lightgbm"': (
                'trainer = "sklearn:sklearn.ensemble.RandomForestClassifier"'
            ),
            _LIGHTGBM_PARAMS: "n_estimators = 50, max_depth = 6",
        },
    ),
    # LightGBM's scikit-learn estimator inside the scikit-learn trainer's Pipeline.
    "lgbm-pipeline": (
        "penguins-lightgbm",
        {
            'name = "penguins"': 'name = "lgbm-pipeline"',
            'trainer = "lightgbm"': 'trainer = "sklearn:lightgbm.LGBMClassifier"',
            _LIGHTGBM_PARAMS: "",
        },
    ),
}


def edit(config: Path, replacements: dict[str, str]) -> None:
    """Replace text in a project's workbench.toml; each old text must be there."""
    text = config.read_text()
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    config.write_text(text)


def copy_home(trained: Path, home: Path) -> Path:
    """A private copy of a trained store, as the test's WORKBENCH_HOME."""
    shutil.copytree(trained, home, ignore=regular_only)
    return home


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
        yield


def trained_home(cache: Path, projects: tuple[str, ...]) -> Path:
    """The home of a store in which `projects` (names in PROJECTS) were added and
    trained, in this order; made once per session in `cache`. Read-only to callers:
    copy it with `copy_home`."""
    root = cache / "trained-stores" / "+".join(projects)
    home, done = root / "home", root / "done"
    with _locked(root.with_name(root.name + ".lock")):
        if done.exists():
            return home
        shutil.rmtree(root, ignore_errors=True)  # what an interrupted build left
        root.mkdir(parents=True)
        if len(projects) > 1:
            shutil.copytree(trained_home(cache, projects[:-1]), home, ignore=regular_only)
        _train(root, home, projects[-1], cache)
        done.touch()
    return home


def _train(root: Path, home: Path, project: str, cache: Path) -> None:
    sample, edits = PROJECTS[project]
    folder = root / project
    shutil.copytree(REPO / "sample_projects" / sample, folder)
    edit(folder / "workbench.toml", edits)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WORKBENCH_HOME", str(home))
        env.setenv("WORKBENCH_CACHE", str(cache))
        env.setenv(
            "PYTHONPATH",
            os.pathsep.join([str(NETGUARD), *filter(None, [os.environ.get("PYTHONPATH")])]),
        )
        env.setenv("NO_COLOR", "1")
        for var in ("WORKBENCH_RUN_ID", "WORKBENCH_PARAMS", "WORKBENCH_PROJECT_DIR"):
            env.delenv(var, raising=False)
        wb_inprocess("project", "add", str(folder), check=True)
        # A run is supervised by processes of its own: the real CLI starts them.
        wb("run", "start", project, "--wait", check=True, timeout=300)
