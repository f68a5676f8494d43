"""The real `workbench` terminal UI in a real terminal (tmux): open a sample
project with the keyboard, start a run from the form, watch it finish, quit;
and the whole journey from an empty store to an exported model."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from tui_support import SAMPLES
from wbtest import REPO

from workbench.projects import add_project
from workbench.store import open_store

pytestmark = pytest.mark.slow

WIDTH, HEIGHT = 100, 30
REFERENCE_CSV = REPO / "tests" / "data" / "reference.csv"  # id, age, income, city, churned


class Terminal:
    """A tmux server of its own (its own socket), running one command."""

    def __init__(self) -> None:
        self.socket = f"wb-test-{uuid.uuid4().hex[:12]}"

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=check,
        )

    def start(self, command: str, width: int = WIDTH, height: int = HEIGHT) -> None:
        self.tmux("new-session", "-d", "-s", "wb", "-x", str(width), "-y", str(height), command)

    def screen(self) -> str:
        result = self.tmux("capture-pane", "-p", "-t", "wb", check=False)
        return result.stdout

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "wb", *keys)

    def running(self) -> bool:
        return self.tmux("has-session", "-t", "wb", check=False).returncode == 0

    def wait(self, ready: Callable[[str], bool], what: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if ready(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the screen:\n{text}")
            time.sleep(0.1)

    def close(self) -> None:
        self.tmux("kill-server", check=False)


@pytest.fixture
def terminal():
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    term = Terminal()
    try:
        yield term
    finally:
        term.close()


def workbench_command(home: Path) -> str:
    """`python -m workbench` on the test's store, sized by the terminal."""
    env = {
        "WORKBENCH_HOME": str(home),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "TERM": "xterm-256color",
        "OMP_NUM_THREADS": "1",  # LightGBM's scores, and so the gate's verdict, fixed
    }
    # The size comes from the terminal: COLUMNS/LINES (set for the CLI tests)
    # would override it.
    return " ".join(
        ["env", "-u", "COLUMNS", "-u", "LINES", "-u", "NO_COLOR"]
        + [f"{k}={shlex.quote(v)}" for k, v in env.items()]
        + [shlex.quote(sys.executable), "-m", "workbench"]
    )


def wait_until_closed(terminal: Terminal) -> None:
    deadline = time.monotonic() + 120
    while terminal.running():
        assert time.monotonic() < deadline, "q did not quit:\n" + terminal.screen()
        time.sleep(0.1)


def test_start_a_run_from_the_real_tui(terminal, tmp_path, wb_home):
    store = open_store()
    for folder in ("cancer-script", "penguins-lightgbm"):
        shutil.copytree(SAMPLES / folder, tmp_path / folder)
        add_project(store, tmp_path / folder)
    store.close()
    terminal.start(workbench_command(wb_home))

    terminal.wait(lambda s: "Projects" in s and "penguins" in s, "the home screen")
    terminal.keys("Down")  # cancer, penguins: the second one
    terminal.keys("Enter")
    terminal.wait(lambda s: "Project penguins" in s and "lightgbm" in s, "the project screen")

    terminal.keys("n")
    # The title is drawn before the fields on a busy machine: wait for both.
    form = terminal.wait(
        lambda s: "Start a run of penguins" in s and "learning_rate" in s, "the start form"
    )
    assert "0.05" in form
    terminal.keys("Enter")
    # The summary names the best run once a run has succeeded.
    done = terminal.wait(lambda s: "best: run 1" in s, "the run to succeed", timeout=240)
    assert "1 runs" in done
    terminal.keys("Enter")  # open it
    run = terminal.wait(lambda s: "Run 1" in s and "exit 0" in s, "the run screen")
    assert "run 1  penguins  succeeded" in run
    assert "hold-out: accuracy=" in run  # its log

    terminal.keys("q")
    wait_until_closed(terminal)


def test_the_whole_journey_at_80x24(terminal, tmp_path, wb_home):
    """An empty store; a project from the user's CSV; a long run watched live
    and stopped (after a question); two short runs compared; the better model
    promoted through the gate; exported. Keys are typed ahead, as people do:
    each form gets what was typed after the key that opened it."""
    folder, exported = tmp_path / "churn", tmp_path / "churn-bundle"
    terminal.start(workbench_command(wb_home), 80, 24)
    terminal.wait(lambda s: "No projects yet" in s, "the empty store's home screen")

    # A project from a CSV: the form opens and is filled in one burst of keys.
    terminal.keys("i", str(folder), "Tab", "Tab", str(REFERENCE_CSV), "Tab", "churned")
    terminal.wait(lambda s: "churned" in s and "reference.csv" in s, "the filled-in form")
    terminal.keys("Enter")
    terminal.wait(lambda s: "Project churn" in s and "No runs yet" in s, "the new project")

    # A run long enough to watch: its charts move while it trains.
    terminal.keys("n", "1000000")  # typing replaces the n_estimators field's text
    terminal.wait(lambda s: "Start a run of churn" in s and "1000000" in s, "the start form")
    terminal.keys("Enter")
    terminal.wait(lambda s: re.search(r"1\s+running", s), "run 1 running")
    terminal.keys("Enter")
    steps = re.compile(r"step (\d+)/1000000")
    first = terminal.wait(lambda s: steps.search(s) and "valid_binary_logloss" in s, "the charts")
    seen = int(steps.search(first).group(1))
    terminal.wait(
        lambda s: (m := steps.search(s)) and int(m.group(1)) > seen, "the charts to move on"
    )

    # Stopping asks first.
    terminal.keys("x")
    terminal.wait(lambda s: "Stop run 1?" in s, "the question")
    terminal.keys("Enter")
    terminal.wait(lambda s: "run 1  churn  stopped" in s, "run 1 stopped")
    terminal.keys("Escape")
    terminal.wait(lambda s: "Project churn" in s, "the project again")

    # A weak run (3 trees), then the template's 100 trees: the first model is
    # made champion on its own, the second is its challenger.
    terminal.keys("n", "3")
    terminal.wait(lambda s: re.search(r"n_estimators\W+3\s", s), "3 trees in the form")
    terminal.keys("Enter")
    terminal.wait(lambda s: re.search(r"2\s+succeeded", s), "run 2 to succeed")
    terminal.keys("n")
    terminal.wait(lambda s: "Start a run of churn" in s, "the start form")
    terminal.keys("Enter")
    terminal.wait(lambda s: "best: run 3" in s, "run 3 to succeed, the best")

    # Compare the two: g to the first row (run 3), space marks and moves down.
    terminal.keys("g", "Space", "Space")
    terminal.wait(lambda s: len(re.findall(r"●\s+[23]\s", s)) == 2, "runs 3 and 2 marked")
    terminal.keys("c")
    compare = terminal.wait(lambda s: "Compare 2, 3" in s and "n_estimators" in s, "compare")
    assert re.search(r"\* n_estimators\s+3\s+100", compare), compare
    terminal.keys("Escape")
    terminal.wait(lambda s: "Project churn" in s, "the project again")

    # Promote version 2 (run 3's model): it scores better than the champion,
    # but on 40 hold-out rows not surely so, and the gate says why. Enter would
    # cancel; the user picks "Force promote" (shift+tab) to insist.
    terminal.keys("M")
    terminal.wait(lambda s: "champion v1" in s and "challenger v2" in s, "the models")
    terminal.keys("g", "p")
    terminal.wait(
        lambda s: "the gate would keep version 1 as champion" in s and "Force promote" in s,
        "the gate's verdict",
    )
    terminal.keys("BTab", "Enter")
    terminal.wait(lambda s: "champion v2" in s, "version 2 promoted")

    # Export it: the output field has the focus; typing replaces the default.
    terminal.keys("e", str(exported))
    terminal.wait(lambda s: "Export churn@2" in s and exported.name in s, "the export form")
    terminal.keys("Enter")
    terminal.wait(lambda s: "verified" in s and "exported churn@2" in s, "the export", 240)
    manifest = json.loads((exported / "manifest.json").read_text())
    assert manifest["run_id"] == 3

    terminal.keys("q")
    wait_until_closed(terminal)
