"""Architecture rules checked by importing in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys


def modules_after(statement: str, watched: list[str]) -> list[str]:
    """Which of `watched` are in sys.modules after running `statement` in a new Python."""
    code = (
        f"import json, sys\n{statement}\n"
        f"print(json.dumps([m for m in {watched!r} if m in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_the_core_never_imports_the_ui_toolkit():
    core = (
        "import workbench, workbench.cli, workbench.store, workbench.runs.supervisor,"
        " workbench.trainers.tabular, workbench.tracking"
    )

    assert modules_after(core, ["textual"]) == []


def test_importing_workbench_in_a_training_script_stays_light():
    # User scripts `import workbench as wb`; that must cost next to nothing.
    heavy = ["pandas", "sklearn", "lightgbm", "sqlite_utils", "pyarrow", "textual"]

    assert modules_after("import workbench as wb", heavy) == []
