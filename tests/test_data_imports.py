"""`data validate` and `data drift` import only what they use: each command runs
in a fresh interpreter, which reports the packages it imported when it exits."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from wbtest import REPO, wb_inprocess

# Runs the CLI as `python -m workbench` does, and writes the top-level packages in
# sys.modules to stderr as the interpreter exits (click ends with sys.exit).
PROBE = r"""
import atexit, json, sys
atexit.register(lambda: sys.stderr.write(
    "\nMODULES " + json.dumps(sorted({m.split(".")[0] for m in sys.modules})) + "\n"))
sys.argv = ["workbench", *sys.argv[1:]]
from workbench.cli import main
main()
"""
NEVER = {"sklearn", "optuna", "textual", "lightgbm", "xgboost", "matplotlib", "torch"}


@pytest.fixture
def penguins(tmp_path: Path) -> Path:
    folder = tmp_path / "penguins-lightgbm"
    shutil.copytree(REPO / "sample_projects" / "penguins-lightgbm", folder)
    wb_inprocess("project", "add", str(folder), check=True)
    wb_inprocess("data", "schema", "penguins", check=True)
    return folder


def _imported(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    line = next(x for x in done.stderr.splitlines() if x.startswith("MODULES "))
    return set(json.loads(line.removeprefix("MODULES ")))


def test_validate_imports_no_scipy_sklearn_or_ui(penguins):
    batch = penguins / "data" / "incoming" / "batch_01_clean.csv"
    found = _imported("data", "validate", "penguins", str(batch), "--json")
    assert {"pandas", "pyarrow"} <= found  # it did read the table
    assert not found & (NEVER | {"scipy"})


def test_drift_without_a_model_imports_no_sklearn_or_ui(penguins):
    # The batch has labels, but there is no model to score on them.
    batch = penguins / "data" / "incoming" / "batch_02_shifted.csv"
    found = _imported("data", "drift", "penguins", str(batch), "--json")
    assert {"pandas", "scipy"} <= found  # it did run the tests
    assert not found & NEVER
