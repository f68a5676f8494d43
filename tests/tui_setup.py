"""Setup shared by the terminal-UI tests that need only a registered project,
no trained runs: use with `from tui_setup import penguins`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tui_support import SAMPLES

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
