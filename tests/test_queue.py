"""The persistent run queue, through the real CLI."""

from __future__ import annotations

import json
import time

import pytest
from test_runs_e2e import script_project, show
from wbtest import wb, wb_inprocess

from workbench.core import paths
from workbench.runs.launch import create_run
from workbench.store import open_store

pytestmark = pytest.mark.slow

# Commands that never start a run: the listings only read (a dead run is shown as
# lost without recording it, a queued run is not started), and each test adds its
# project before any run exists. Every other command may start queued runs, in
# processes that outlive it: those run in a process of their own.
_READ_ONLY = (["run", "list"], ["run", "show"], ["project", "add"])


@pytest.fixture
def cli():
    """The read-only commands above in this process, the rest as a user runs them."""

    def run(*args: str, **options):
        words = [a for a in args if not a.startswith("-")][:2]
        return (wb_inprocess if words in _READ_ONLY else wb)(*args, **options)

    return run


@pytest.fixture
def one_slot(wb_home):
    wb_home.mkdir(parents=True, exist_ok=True)
    (wb_home / "config.toml").write_text("[runs]\nmax_parallel = 1\nsample_interval = 0.2\n")


def _statuses(cli) -> dict[int, str]:
    return {
        r["id"]: r["status"] for r in json.loads(cli("run", "list", "--json", check=True).stdout)
    }


def _wait_until(predicate, timeout: float = 60, message: str = "condition") -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, f"timed out waiting for {message}"
        time.sleep(0.1)


def test_runs_beyond_the_slots_wait_and_start_in_priority_then_submission_order(
    cli, tmp_path, one_slot
):
    order_file, go = tmp_path / "order.txt", tmp_path / "go"
    project = script_project(
        tmp_path / "q",
        f"""\
        import os, time
        with open({str(order_file)!r}, "a") as fh:
            fh.write(os.environ["WORKBENCH_RUN_ID"] + "\\n")
        deadline = time.time() + 120  # the first run holds the slot until the test says go
        while not os.path.exists({str(go)!r}) and time.time() < deadline:
            time.sleep(0.05)
        """,
        name="q",
    )
    cli("project", "add", str(project), check=True)
    first = cli("run", "start", "q", check=True)
    assert "started" in first.stderr
    low = cli("run", "start", "q", check=True)
    assert "queued" in low.stderr
    high = cli("run", "start", "q", "--priority", "10", check=True)
    ids = [int(r.stdout.split()[0]) for r in (first, low, high)]
    statuses = _statuses(cli)
    assert statuses[ids[1]] == "queued" and statuses[ids[2]] == "queued"
    go.touch()
    # A waited run is carried through the queue even when nothing else touches the store.
    assert cli("run", "start", "q", "--wait", check=True, timeout=120).returncode == 0
    _wait_until(lambda: all(s == "succeeded" for s in _statuses(cli).values()), message="all runs")
    started = [int(x) for x in order_file.read_text().split()]
    assert started[:3] == [ids[0], ids[2], ids[1]]  # priority first, then submission order
    assert len(started) == 4


def test_queued_runs_start_after_a_reboot_on_next_use(cli, tmp_path, one_slot):
    """Runs queued with no supervisor alive (as after a reboot) are started by
    the next command that reconciles the store (not by a listing of runs, which
    only reads); nothing is dropped."""
    project = script_project(tmp_path / "r", "print('ran')\n", name="r")
    cli("project", "add", str(project), check=True)
    store = open_store()
    queued = [create_run(store, "r", {}) for _ in range(2)]
    store.close()
    assert set(_statuses(cli).values()) == {"queued"}
    assert not any((paths.run_dir(i) / "supervisor.log").exists() for i in queued)
    cli("project", "list", check=True)
    _wait_until(
        lambda: all(_statuses(cli)[i] == "succeeded" for i in queued), message="queued runs"
    )
    assert "ran" in cli("run", "logs", str(queued[1]), check=True).stdout


def test_a_queued_run_can_be_stopped_before_it_starts(cli, tmp_path, one_slot):
    project = script_project(tmp_path / "s", "import time; time.sleep(30)\n", name="s")
    cli("project", "add", str(project), check=True)
    busy = cli("run", "start", "s", check=True).stdout.split()[0]
    waiting = cli("run", "start", "s", check=True).stdout.split()[0]
    assert cli("run", "stop", waiting, check=True).returncode == 0
    assert show(cli, waiting)["status"] == "stopped"
    assert show(cli, waiting)["started_at"] is None
    cli("run", "stop", busy, check=True)
    assert _statuses(cli) == {int(busy): "stopped", int(waiting): "stopped"}


def test_run_show_has_the_environment(cli, tmp_path):
    project = script_project(tmp_path / "e", "print('hi')\n", name="e")
    cli("project", "add", str(project), check=True)
    run_id = cli("run", "start", "e", "--wait", "--set", "seed=7", check=True).stdout.split()[0]
    env = show(cli, run_id)["environment"]
    assert env["python"].count(".") == 2
    assert env["hostname"]
    assert env["cpu"]["cores"] >= 1 and env["cpu"]["model"]
    assert "numpy" in env["libraries"]
    assert env["seeds"]["seed"] == 7
    assert env["gpus"] == []
    assert env["git"] is None  # the project folder is not in a git repository


def test_environment_records_the_git_commit_and_dirty_flag(cli, tmp_path):
    import subprocess

    project = script_project(tmp_path / "g", "print('hi')\n", name="g")
    git = ["git", "-C", str(project), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "first"], check=True)
    commit = subprocess.run(
        [*git, "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    cli("project", "add", str(project), check=True)
    clean = cli("run", "start", "g", "--wait", check=True).stdout.split()[0]
    (project / "train.py").write_text("print('changed')\n")
    dirty = cli("run", "start", "g", "--wait", check=True).stdout.split()[0]
    assert (
        show(cli, clean)["environment"]["git"]
        == {"commit": commit, "branch": "master", "dirty": False}
        or show(cli, clean)["environment"]["git"]["branch"] == "main"
    )
    assert show(cli, clean)["environment"]["git"]["dirty"] is False
    assert show(cli, dirty)["environment"]["git"]["dirty"] is True
    assert show(cli, dirty)["environment"]["git"]["commit"] == commit
