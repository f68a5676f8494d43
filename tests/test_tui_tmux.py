"""The real `workbench` terminal UI in a real terminal (tmux): open a sample
project with the keyboard, start a run from the form, watch it finish, quit."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable

import pytest
from tui_support import SAMPLES

from workbench.projects import add_project
from workbench.store import open_store

pytestmark = pytest.mark.slow

WIDTH, HEIGHT = 100, 30


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

    def start(self, command: str) -> None:
        self.tmux("new-session", "-d", "-s", "wb", "-x", str(WIDTH), "-y", str(HEIGHT), command)

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


def test_start_a_run_from_the_real_tui(terminal, tmp_path, wb_home):
    store = open_store()
    for folder in ("cancer-script", "penguins-lightgbm"):
        shutil.copytree(SAMPLES / folder, tmp_path / folder)
        add_project(store, tmp_path / folder)
    store.close()
    env = {
        "WORKBENCH_HOME": str(wb_home),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "TERM": "xterm-256color",
        "OMP_NUM_THREADS": "1",
    }
    # The size comes from the terminal: COLUMNS/LINES (set for the CLI tests)
    # would override it.
    command = " ".join(
        ["env", "-u", "COLUMNS", "-u", "LINES", "-u", "NO_COLOR"]
        + [f"{k}={shlex.quote(v)}" for k, v in env.items()]
        + [shlex.quote(sys.executable), "-m", "workbench"]
    )
    terminal.start(command)

    terminal.wait(lambda s: "Projects" in s and "penguins" in s, "the home screen")
    terminal.keys("Down")  # cancer, penguins: the second one
    terminal.keys("Enter")
    terminal.wait(lambda s: "Project penguins" in s and "lightgbm" in s, "the project screen")

    terminal.keys("n")
    form = terminal.wait(lambda s: "Start a run of penguins" in s, "the start form")
    assert "learning_rate" in form and "0.05" in form
    terminal.keys("Enter")
    # The summary names the best run once a run has succeeded.
    done = terminal.wait(lambda s: "best: run 1" in s, "the run to succeed", timeout=240)
    assert "1 runs" in done
    terminal.keys("Enter")  # open it
    run = terminal.wait(lambda s: "Run 1" in s and "exit 0" in s, "the run screen")
    assert "run 1  penguins  succeeded" in run
    assert "hold-out: accuracy=" in run  # its log

    terminal.keys("q")
    deadline = time.monotonic() + 120
    while terminal.running():
        assert time.monotonic() < deadline, "q did not quit:\n" + terminal.screen()
        time.sleep(0.1)
