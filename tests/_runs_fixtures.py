"""A project trained once for a test module, handed to each test as a private copy.

Training a baseline through the real CLI starts a supervisor and a trainer that
imports pandas, scikit-learn and LightGBM: seconds of CPU that every test of a
module would otherwise repeat for the same model. `TrainedTemplate` trains once
into a store of its own; `install` gives a test a copy of that store in its own
`WORKBENCH_HOME` and puts the project folder back as it was right after the
training. The store records the project by its path, so the folder keeps its
path: tests of a module run one after another, and each starts from the same
untouched copy.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from wbtest import NETGUARD, regular_only, wb, wb_inprocess


class TrainedTemplate:
    """A store with `project` registered (and whatever `prepare` did in it), and
    a pristine copy of the project folder to restore before each test."""

    def __init__(self, root: Path, project: Path) -> None:
        self.home = root / "home"
        self.project = project
        self._pristine = root / "pristine"

    def snapshot(self) -> None:
        shutil.copytree(self.project, self._pristine, ignore=regular_only)

    def install(self, wb_home: Path) -> Path:
        """Copy the store into `wb_home`; restore the project folder; return it."""
        shutil.copytree(self.home, wb_home, ignore=regular_only, dirs_exist_ok=True)
        shutil.rmtree(self.project, ignore_errors=True)
        shutil.copytree(self._pristine, self.project)
        return self.project


def train_template(
    tmp_path_factory: pytest.TempPathFactory,
    cache: Path,
    source: Path,
    prepare: Callable[[Callable[..., object], Path], None],
    name: str | None = None,
    folder: str | None = None,
) -> TrainedTemplate:
    """Copy `source` into a module folder, register it in a fresh store and run
    `prepare(cli, folder)` there (the copy is named `folder`, else as `source`), where `cli` runs commands that start processes
    in a subprocess (`wb`) and the rest in this process."""
    root = tmp_path_factory.mktemp(name or source.name)
    project = root / (folder or source.name)
    shutil.copytree(source, project)
    template = TrainedTemplate(root, project)

    def cli(*args: str, **options):
        words = [a for a in args if not a.startswith("-")][:2]
        starts = words[:1] in (["pipeline"], ["sweep"], ["serve"], ["watch"]) or words == [
            "run",
            "start",
        ]
        return (wb if starts else wb_inprocess)(*args, **options)

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", str(template.home))
        mp.setenv("WORKBENCH_CACHE", str(cache))
        mp.setenv("NO_COLOR", "1")
        mp.setenv("COLUMNS", "200")
        mp.setenv(
            "PYTHONPATH",
            os.pathsep.join([str(NETGUARD), *filter(None, [os.environ.get("PYTHONPATH")])]),
        )
        for var in ("WORKBENCH_RUN_ID", "WORKBENCH_PARAMS", "WORKBENCH_PROJECT_DIR"):
            mp.delenv(var, raising=False)
        cli("project", "add", str(project), check=True)
        prepare(cli, project)
    template.snapshot()
    return template
