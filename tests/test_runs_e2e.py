"""Supervised runs through the real CLI, in real subprocesses."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from wbtest import wait_until, wb_auto


@pytest.fixture
def cli():
    """Runs, the pipeline, the watcher and the server start real processes; the
    other commands run in this one (a subprocess is not the point here)."""
    return wb_auto

pytestmark = pytest.mark.slow


def script_project(root: Path, body: str, name: str = "scripted") -> Path:
    """A script project whose train.py is `body`."""
    root.mkdir(parents=True)
    (root / "data").mkdir()
    (root / "data" / "train.csv").write_text("x,y\n1,0\n2,1\n")
    (root / "train.py").write_text(textwrap.dedent(body))
    (root / "workbench.toml").write_text(
        textwrap.dedent(f"""\
        [project]
        name = "{name}"
        [data]
        train = "data/train.csv"
        target = "y"
        [train]
        trainer = "script"
        script = "train.py"
        params = {{ epochs = 3 }}
        """)
    )
    return root


def show(cli, run_id: str) -> dict:
    return json.loads(cli("run", "show", run_id, "--json", check=True).stdout)


def test_lightgbm_template_trains_with_resources(cli, tmp_path, fast_sampling):
    cli("project", "init", str(tmp_path / "churn"), "--template", "lightgbm", check=True)
    started = cli("run", "start", "churn", "--wait", check=True)
    run_id = started.stdout.split()[0]
    info = show(cli, run_id)
    assert info["status"] == "succeeded"
    assert info["exit_code"] == 0
    assert {"accuracy", "f1", "roc_auc", "log_loss"} <= set(info["metrics"])
    assert info["metrics"]["accuracy"] > 0.8
    assert info["resources"]["samples"] >= 1
    assert info["resources"]["cpu_percent_max"] > 0
    assert info["resources"]["rss_bytes_max"] > 0
    assert info["resources"]["gpu"] is None  # no NVML on the test machines
    artifacts = {a["name"]: a for a in info["artifacts"]}
    assert {"model.txt", "feature_schema.json"} <= set(artifacts)
    assert Path(artifacts["model.txt"]["path"]).read_text().startswith("tree")
    schema = json.loads(Path(artifacts["feature_schema.json"]["path"]).read_text())
    assert schema["target"]["classes"] == ["benign", "malignant"]
    assert len(schema["features"]) == 30
    for key in (
        "id",
        "project",
        "status",
        "exit_code",
        "params",
        "metrics",
        "resources",
        "started_at",
        "ended_at",
    ):
        assert key in info


def test_sklearn_template_regression(cli, tmp_path):
    cli("project", "init", str(tmp_path / "reg"), "--template", "sklearn", check=True)
    run_id = cli(
        "run", "start", "reg", "--wait", "--set", "max_iter=50", check=True
    ).stdout.split()[0]
    info = show(cli, run_id)
    assert info["status"] == "succeeded"
    assert {"rmse", "mae", "r2"} <= set(info["metrics"])
    assert info["params"]["max_iter"] == 50
    model = next(a for a in info["artifacts"] if a["name"] == "model.skops")
    import skops.io

    untrusted = skops.io.get_untrusted_types(file=model["path"])
    pipeline = skops.io.load(model["path"], trusted=untrusted)
    assert type(pipeline).__name__ == "Pipeline"


def test_script_project_logs_epochs_and_sees_overrides(cli, tmp_path):
    project = script_project(
        tmp_path / "s",
        """\
        import workbench as wb
        params = wb.params()
        print("params", params, flush=True)
        for epoch in range(params["epochs"]):
            wb.log_metric("loss", 1.0 / (epoch + 1), step=epoch)
        wb.log_metrics({"accuracy": 0.5})
        """,
    )
    cli("project", "add", str(project), check=True)
    run_id = cli(
        "run", "start", "scripted", "--set", "epochs=5", "--wait", check=True
    ).stdout.split()[0]
    info = show(cli, run_id)
    assert info["status"] == "succeeded"
    assert info["params"] == {"epochs": 5}
    assert info["metrics"]["loss"] == pytest.approx(0.2)
    assert info["metrics"]["accuracy"] == 0.5
    with sqlite3.connect(Path(os.environ["WORKBENCH_HOME"]) / "workbench.db") as db:
        steps = [
            r[0]
            for r in db.execute(
                "SELECT step FROM metric_points WHERE run_id = ? AND key = 'loss' ORDER BY idx",
                (run_id,),
            )
        ]
    assert steps == [0, 1, 2, 3, 4]
    assert "params {'epochs': 5}" in cli("run", "logs", run_id, check=True).stdout


def test_crashing_script_fails_with_traceback_in_logs(cli, tmp_path):
    project = script_project(
        tmp_path / "crash",
        """\
        print("about to fail", flush=True)
        raise RuntimeError("the data is cursed")
        """,
        name="crash",
    )
    cli("project", "add", str(project), check=True)
    result = cli("run", "start", "crash", "--wait")
    assert result.returncode == 1
    run_id = result.stdout.split()[0]
    info = show(cli, run_id)
    assert info["status"] == "failed"
    assert info["exit_code"] not in (0, None)
    logs = cli("run", "logs", run_id, check=True).stdout
    assert "about to fail" in logs
    assert "Traceback (most recent call last)" in logs
    assert "RuntimeError: the data is cursed" in logs


def test_stop_kills_the_whole_tree(cli, tmp_path, fast_sampling):
    pids_file = tmp_path / "pids.txt"
    project = script_project(
        tmp_path / "sleepy",
        f"""\
        import os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        with open({str(pids_file)!r}, "w") as fh:
            fh.write(f"{{os.getpid()}} {{child.pid}}")
        print("sleeping", flush=True)
        time.sleep(600)
        """,
        name="sleepy",
    )
    cli("project", "add", str(project), check=True)
    run_id = cli("run", "start", "sleepy", check=True).stdout.split()[0]
    wait_until(
        lambda: pids_file.exists() and len(pids_file.read_text().split()) >= 2,
        what="the script to start",
    )
    trainer_pid, grandchild_pid = map(int, pids_file.read_text().split())
    assert show(cli, run_id)["status"] == "running"

    started = time.time()
    cli("run", "stop", run_id, check=True)
    info = show(cli, run_id)
    assert info["status"] == "stopped"
    # Not a timing check: a stop that waited out the trainer's 600 s sleep fails it.
    assert time.time() - started < 240
    for pid in (trainer_pid, grandchild_pid):
        assert not _alive(pid), f"process {pid} of the run survived the stop"
    # The supervisor recorded the outcome itself and exited.
    assert info["ended_at"] is not None


def test_running_run_streams_logs_and_samples(cli, tmp_path, fast_sampling):
    project = script_project(
        tmp_path / "live",
        """\
        import time
        for i in range(8):
            print(f"tick {i}", flush=True)
            time.sleep(0.25)
        """,
        name="live",
    )
    cli("project", "add", str(project), check=True)
    run_id = cli("run", "start", "live", check=True).stdout.split()[0]
    followed = cli("run", "logs", run_id, "--follow", check=True).stdout
    assert [f"tick {i}" for i in range(8)] == [
        ln for ln in followed.splitlines() if ln.startswith("tick")
    ]
    info = show(cli, run_id)
    assert info["status"] == "succeeded"
    assert info["resources"]["samples"] >= 3


def test_lost_run_is_detected(cli, tmp_path, fast_sampling):
    project = script_project(
        tmp_path / "doomed",
        """\
        import time
        time.sleep(600)
        """,
        name="doomed",
    )
    cli("project", "add", str(project), check=True)
    run_id = cli("run", "start", "doomed", check=True).stdout.split()[0]
    supervisor, trainer = _pids_when_running(run_id)
    psutil.Process(supervisor).kill()
    psutil.Process(supervisor).wait(120) if _alive(supervisor) else None
    try:
        assert show(cli, run_id)["status"] == "lost"
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(trainer).kill()


def test_run_survives_a_hang_up_of_its_terminal(cli, tmp_path):
    """As when an SSH connection drops: the launching shell's whole session is
    hung up right after `run start`, and the run carries on to the end."""
    project = script_project(
        tmp_path / "nohup",
        """\
        import time
        time.sleep(2)
        print("still here", flush=True)
        """,
        name="nohup",
    )
    cli("project", "add", str(project), check=True)
    id_file = tmp_path / "run_id"
    shell = subprocess.Popen(
        ["bash", "-c", f"{sys.executable} -m workbench run start nohup > {id_file}; sleep 60"],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        # A terminal's shell dies of a hang-up; under `nohup` (or any harness that
        # ignores SIGHUP) it would inherit the ignoring and not be hung up at all.
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL),
    )
    wait_until(
        lambda: id_file.exists() and id_file.read_text().strip(), what="run start to print an id"
    )
    os.killpg(shell.pid, signal.SIGHUP)
    assert shell.wait(120) == -signal.SIGHUP
    run_id = id_file.read_text().split()[0]
    followed = cli("run", "logs", run_id, "--follow", check=True).stdout
    assert "still here" in followed
    assert show(cli, run_id)["status"] == "succeeded"


def test_unknown_run_and_project_are_clear_errors(cli):
    for args in (
        ("run", "show", "999"),
        ("run", "stop", "999"),
        ("run", "logs", "abc"),
        ("run", "start", "nope"),
        ("project", "show", "nope"),
    ):
        result = cli(*args)
        assert result.returncode == 2, args
        assert "error:" in result.stderr
        assert "Traceback" not in result.stderr


def _pids_when_running(run_id: str) -> tuple[int, int]:
    """The supervisor's and the trainer's pids, once both are recorded."""
    db = Path(os.environ["WORKBENCH_HOME"]) / "workbench.db"

    def recorded() -> tuple[int, int] | None:
        with contextlib.closing(sqlite3.connect(db, timeout=60)) as conn:
            supervisor, trainer = conn.execute(
                "SELECT supervisor_pid, pid FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
        return (supervisor, trainer) if supervisor and trainer else None

    return wait_until(recorded, what=f"run {run_id} to record its supervisor and trainer")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_script_template_trains_through_the_tracking_api(cli, tmp_path):
    cli("project", "init", str(tmp_path / "wine"), "--template", "script", check=True)
    run_id = cli("run", "start", "wine", "--set", "epochs=4", "--wait", check=True).stdout.split()[
        0
    ]
    info = show(cli, run_id)
    assert info["status"] == "succeeded"
    assert info["metrics"]["accuracy"] > 0.8
    assert {"val_loss", "val_accuracy", "f1"} <= set(info["metrics"])
    assert "epoch 4: val_loss=" in cli("run", "logs", run_id, check=True).stdout


def test_a_lost_runs_trainer_dies_with_its_supervisor(cli, tmp_path, fast_sampling):
    # Its daemons, which outlive it, are stopped by `run stop` (tests/test_orphans.py).
    project = script_project(tmp_path / "orphan", "import time\ntime.sleep(600)\n", name="orphan")
    cli("project", "add", str(project), check=True)
    run_id = cli("run", "start", "orphan", check=True).stdout.split()[0]
    supervisor, trainer = _pids_when_running(run_id)
    try:
        psutil.Process(supervisor).kill()
        wait_until(lambda: not _alive(trainer), what="the trainer to die with its supervisor")
        info = show(cli, run_id)
        assert info["status"] == "lost"
        assert info["survivors"] == []
        again = cli("run", "stop", run_id)
        assert again.returncode == 2 and "none of its processes is alive" in again.stderr
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(trainer).kill()


def test_a_chatty_trainers_log_is_capped_and_rotated(cli, tmp_path, wb_home):
    wb_home.mkdir(parents=True, exist_ok=True)
    (wb_home / "config.toml").write_text("[runs]\nmax_log_mb = 0.25\n")  # 256 KiB on disk
    project = script_project(
        tmp_path / "chatty",
        """\
        import sys
        for i in range(40_000):  # about 2.5 MB of output
            print(f"line {i:06d} " + "x" * 50)
        print("the last line", flush=True)
        """,
        name="chatty",
    )
    cli("project", "add", str(project), check=True)
    run_id = cli("run", "start", "chatty", "--wait", check=True).stdout.split()[0]

    assert show(cli, run_id)["status"] == "succeeded"
    folder = wb_home / "runs" / run_id
    current, rotated = folder / "output.log", folder / "output.log.1"
    assert rotated.exists()
    assert current.stat().st_size + rotated.stat().st_size <= 256 * 1024
    assert current.read_text().rstrip().endswith("the last line")  # the newest output is kept
    # The two files hold one unbroken stretch of the output, oldest first (the
    # first line may have begun in a file rotated away before).
    lines = (rotated.read_text() + current.read_text()).splitlines()[1:-1]
    numbers = [int(ln.split()[1]) for ln in lines]
    assert numbers == list(range(numbers[0], 40_000))
    assert "the last line" in cli("run", "logs", run_id, check=True).stdout
