"""No process of a run outlives it: a trainer dies with its supervisor, daemons it
starts are stopped with the run, and `max_parallel` counts live trainers."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path

import psutil
import pytest
from test_runs_e2e import script_project
from wbtest import wb_inprocess

pytestmark = pytest.mark.slow

GONE_DEADLINE_S = 20.0  # generous: the kernel kills the trainer at once

# Starts a double-forked daemon (its own session, re-parented away from the
# trainer), writes its pid, then trains (sleeps) for a long time.
DAEMON_TRAIN_PY = """\
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        with open("daemon.pid.tmp", "w") as out:
            out.write(str(os.getpid()))
        os.replace("daemon.pid.tmp", "daemon.pid")
        time.sleep(600)
        os._exit(0)
    os._exit(0)
os.wait()
print("trainer up", flush=True)
time.sleep(float(os.environ.get("TRAIN_SECONDS", "600")))
"""


def _poll(predicate, timeout: float, message: str) -> float:
    """Wait until `predicate()` holds; returns the seconds it took."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{message} (after {timeout:.0f} s)")
        time.sleep(0.05)
    return time.monotonic() - start


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _row(run_id: str) -> dict:
    db = Path(os.environ["WORKBENCH_HOME"]) / "workbench.db"
    conn = sqlite3.connect(db, timeout=30)
    conn.row_factory = sqlite3.Row
    try:
        return dict(conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone())
    finally:
        conn.close()


def _running(run_id: str) -> tuple[int, int]:
    """(supervisor pid, trainer pid) once both are recorded."""
    found: dict = {}

    def recorded() -> bool:
        found.update(_row(run_id))
        return bool(found["supervisor_pid"] and found["pid"])

    _poll(recorded, 60, f"run {run_id} never started its trainer")
    return found["supervisor_pid"], found["pid"]


def _daemon_pid(project: Path) -> int:
    pid_file = project / "daemon.pid"
    _poll(pid_file.exists, 60, "the training script never started its daemon")
    return int(pid_file.read_text())


def _show(run_id: str) -> dict:
    """`run show --json`, in this process: it only reads (it never starts a queued run),
    so it needs no process of its own."""
    return json.loads(wb_inprocess("run", "show", run_id, "--json", check=True).stdout)


def _add(project: Path) -> None:
    """Register the project, in this process: no run exists yet, so nothing starts."""
    wb_inprocess("project", "add", str(project), check=True)


@pytest.fixture
def kill_leftovers():
    """Pids to SIGKILL at the end whatever happens, so a failing test leaves nothing."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).kill()


def test_kill_9_of_a_supervisor_takes_its_trainer_along(
    cli, tmp_path, fast_sampling, kill_leftovers
):
    project = script_project(tmp_path / "p", "import time\ntime.sleep(600)\n", name="p")
    _add(project)
    run_id = cli("run", "start", "p", check=True).stdout.split()[0]
    supervisor, trainer = _running(run_id)
    kill_leftovers.append(trainer)

    psutil.Process(supervisor).kill()
    took = _poll(
        lambda: not _alive(trainer), GONE_DEADLINE_S, "the trainer outlived its supervisor"
    )

    print(f"trainer gone {took:.3f} s after its supervisor's kill -9")
    info = _show(run_id)
    assert info["status"] == "lost"
    assert info["survivors"] == []


def test_run_stop_ends_a_double_forked_daemon(cli, tmp_path, fast_sampling, kill_leftovers):
    project = script_project(tmp_path / "d", DAEMON_TRAIN_PY, name="d")
    _add(project)
    run_id = cli("run", "start", "d", check=True).stdout.split()[0]
    _, trainer = _running(run_id)
    daemon = _daemon_pid(project)
    kill_leftovers.extend([trainer, daemon])
    assert os.getsid(daemon) != os.getsid(trainer)  # it left the run's session
    # The supervisor sees it (re-parented to it) before we stop the run.
    processes = Path(os.environ["WORKBENCH_HOME"]) / "runs" / run_id / "processes"
    _poll(
        lambda: processes.exists() and str(daemon) in processes.read_text().split(),
        30,
        "the supervisor never recorded the daemon",
    )

    cli("run", "stop", run_id, check=True)

    _poll(lambda: not _alive(daemon), GONE_DEADLINE_S, "the daemon survived `run stop`")
    assert not _alive(trainer)
    assert _show(run_id)["status"] == "stopped"


def test_a_daemon_left_behind_by_a_finished_trainer_is_stopped(
    cli, tmp_path, fast_sampling, kill_leftovers, monkeypatch
):
    monkeypatch.setenv("TRAIN_SECONDS", "1")
    project = script_project(tmp_path / "f", DAEMON_TRAIN_PY, name="f")
    _add(project)
    run_id = cli("run", "start", "f", "--wait", check=True).stdout.split()[0]
    daemon = _daemon_pid(project)
    kill_leftovers.append(daemon)

    assert _show(run_id)["status"] == "succeeded"
    _poll(lambda: not _alive(daemon), GONE_DEADLINE_S, "the daemon outlived its run")


def test_a_lost_runs_daemon_can_still_be_stopped(cli, tmp_path, fast_sampling, kill_leftovers):
    project = script_project(tmp_path / "l", DAEMON_TRAIN_PY, name="l")
    _add(project)
    run_id = cli("run", "start", "l", check=True).stdout.split()[0]
    supervisor, trainer = _running(run_id)
    daemon = _daemon_pid(project)
    kill_leftovers.extend([trainer, daemon])
    processes = Path(os.environ["WORKBENCH_HOME"]) / "runs" / run_id / "processes"
    _poll(
        lambda: processes.exists() and str(daemon) in processes.read_text().split(),
        30,
        "the supervisor never recorded the daemon",
    )

    psutil.Process(supervisor).kill()
    _poll(lambda: not _alive(trainer), GONE_DEADLINE_S, "the trainer outlived its supervisor")
    info = _show(run_id)
    assert info["status"] == "lost"
    assert info["survivors"] == [daemon]  # found by its recorded pid and create time

    cli("run", "stop", run_id, check=True)
    assert not _alive(daemon)
    again = cli("run", "stop", run_id)
    assert again.returncode == 2 and "none of its processes is alive" in again.stderr


def _trainers(home: str, marker: str) -> list[int]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        with contextlib.suppress(psutil.Error):
            cmd = proc.info["cmdline"] or []
            if (
                any(part.endswith(marker) for part in cmd)
                and proc.info["status"] != psutil.STATUS_ZOMBIE
                and proc.environ().get("WORKBENCH_HOME") == home
            ):
                found.append(proc.pid)
    return found


def test_one_slot_never_has_two_live_trainers(cli, tmp_path, wb_home, kill_leftovers):
    wb_home.mkdir(parents=True, exist_ok=True)
    (wb_home / "config.toml").write_text(
        "[runs]\nmax_parallel = 1\nsample_interval = 0.2\nstop_grace = 2\n"
    )
    # Each trainer holds its slot until the test opens the gate (however slow the
    # machine, the first one is still running when its supervisor is killed), then
    # for two seconds more.
    gate = tmp_path / "gate"
    project = script_project(
        tmp_path / "q",
        "import os, time\nprint('training', flush=True)\n"
        "deadline = time.monotonic() + 120\n"
        f"while not os.path.exists({str(gate)!r}) and time.monotonic() < deadline:\n"
        "    time.sleep(0.05)\n"
        "time.sleep(2)\n",
        name="q",
    )
    (project / "train.py").rename(project / "slot_train.py")
    toml = project / "workbench.toml"
    toml.write_text(toml.read_text().replace('"train.py"', '"slot_train.py"'))
    _add(project)
    most, done = [0], threading.Event()

    def watch() -> None:
        while not done.is_set():
            most[0] = max(most[0], len(_trainers(str(wb_home), "slot_train.py")))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        ids = [cli("run", "start", "q", check=True).stdout.split()[0] for _ in range(3)]
        # Kill the first run's supervisor mid-training: its slot frees, and the
        # next trainer must not start while the old one still runs.
        supervisor, trainer = _running(ids[0])
        kill_leftovers.append(trainer)
        assert _alive(trainer)
        psutil.Process(supervisor).kill()
        gate.touch()
        for run_id in ids[1:]:
            # Any command but a read-only listing dispatches; so do supervisors.
            cli("project", "list", check=True)
            _poll(
                lambda rid=run_id: _row(rid)["status"] in ("succeeded", "failed"),
                120,
                f"run {run_id} never finished",
            )
    finally:
        done.set()
        watcher.join(5)
        for pid in _trainers(str(wb_home), "slot_train.py"):
            kill_leftovers.append(pid)

    assert most[0] == 1, f"{most[0]} trainers ran at once with max_parallel = 1"
    assert _show(ids[0])["status"] == "lost"


def test_a_warm_trainer_dies_with_its_warm_supervisor(cli, tmp_path, wb_home, kill_leftovers):
    import signal
    import subprocess
    import sys

    from test_sweeps import _penguins, _slots

    _penguins(wb_inprocess, tmp_path, extra="")  # registered in this process: no run yet
    _slots(wb_home, 2)
    server = subprocess.Popen(
        [sys.executable, "-m", "workbench.runs.warm"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert "listening on" in server.stdout.readline()  # its imports are done
        started = cli(
            "run",
            "start",
            "penguins",
            "--set",
            "n_estimators=1000000",
            "--set",
            "learning_rate=0.0001",
            "--json",
            check=True,
        )
        run_id = str(json.loads(started.stdout)["id"])
        supervisor, trainer = _running(run_id)
        kill_leftovers.append(trainer)
        # Both forked by the server: the trainer is not its supervisor's child.
        assert psutil.Process(supervisor).ppid() == server.pid
        assert psutil.Process(trainer).ppid() == server.pid

        psutil.Process(supervisor).kill()
        took = _poll(
            lambda: not _alive(trainer), GONE_DEADLINE_S, "the warm trainer outlived its supervisor"
        )
        print(f"warm trainer gone {took:.3f} s after its supervisor's kill -9")
        assert _show(run_id)["status"] == "lost"
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
