"""`workbench sweep` through the real CLI: trials are child runs of the sweep's
run; kill -9 midway and `sweep resume` repeats nothing; Ctrl-C stops queued
trials; pruning stops runs; only the best trial becomes a model version; and
`[train] cv` logs cross-validated metrics."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from wbtest import REPO, wb_auto, wb_inprocess


@pytest.fixture
def cli():
    """Runs, the pipeline, the watcher and the server start real processes; the
    other commands run in this one (a subprocess is not the point here)."""
    return wb_auto

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def short_lived_warm_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's warm server goes soon after its sweep, not a minute later."""
    monkeypatch.setenv("WORKBENCH_WARM_IDLE", "5")


SPACE = """
[sweep]
seed = 11

[sweep.space]
learning_rate = { type = "log-uniform", low = 0.02, high = 0.3 }
num_leaves = { type = "int", low = 4, high = 31 }
n_estimators = { type = "int", low = 10, high = 60 }
"""


def _penguins(cli, tmp_path: Path, extra: str = SPACE, train: str = "") -> Path:
    """The penguins sample, one thread per fit (tiny trials), plus `extra`."""
    folder = tmp_path / "penguins"
    shutil.copytree(REPO / "sample_projects" / "penguins-lightgbm", folder)
    toml = folder / "workbench.toml"
    text = toml.read_text().replace(
        "min_child_samples = 5 }", "min_child_samples = 5, n_jobs = 1 }"
    )
    text = text.replace("seed = 42\n", f"seed = 42\n{train}\n")
    toml.write_text(text + extra)
    cli("project", "add", str(folder), check=True)
    return folder


def _script_project(cli, tmp_path: Path, script: str, space: str, params: str = "{}") -> Path:
    folder = tmp_path / "scripted"
    folder.mkdir()
    (folder / "train.csv").write_text("x,y\n1,0\n2,1\n")
    (folder / "train.py").write_text(script)
    (folder / "workbench.toml").write_text(
        '[project]\nname = "scripted"\n[data]\ntrain = "train.csv"\ntarget = "y"\n'
        '[train]\ntrainer = "script"\nscript = "train.py"\nmetric = "score"\n'
        f"params = {params}\n" + space
    )
    cli("project", "add", str(folder), check=True)
    return folder


def _slots(home: Path, slots: int) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(f"[runs]\nmax_parallel = {slots}\nstop_grace = 3\n")


def _query(home: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(f"file:{home / 'workbench.db'}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []
    finally:
        conn.close()


def _children(home: Path, sweep_id: int) -> dict[int, dict]:
    """Child run id -> status, start and params (without the workbench's own)."""
    out = {}
    for run_id, status, started in _query(
        home, "SELECT id, status, started_at FROM runs WHERE parent_id = ?", (sweep_id,)
    ):
        params = dict(_query(home, "SELECT key, value FROM params WHERE run_id = ?", (run_id,)))
        out[run_id] = {
            "status": status,
            "started": started,
            "trial": json.loads(params["_trial"]),
            "params": {k: json.loads(v) for k, v in params.items() if not k.startswith("_")},
        }
    return out


def _sweep_command(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "workbench", "sweep", "start", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait(condition, proc: subprocess.Popen | None, what: str, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the sweep ended before {what}: {proc.communicate()}")
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _finished_in_journal(home: Path, sweep_id: int) -> dict[int, int]:
    """Optuna trial id -> how many times it was told a finished state."""
    told: dict[int, int] = {}
    for line in (home / "sweeps" / str(sweep_id) / "journal.log").read_text().splitlines():
        record = json.loads(line)
        if record.get("state") in (1, 2, 3):  # COMPLETE, PRUNED, FAIL
            told[record["trial_id"]] = told.get(record["trial_id"], 0) + 1
    return told


def test_a_sweep_killed_midway_resumes_without_repeating_a_trial(cli, tmp_path, wb_home):
    _penguins(cli, tmp_path)
    _slots(wb_home, 2)
    proc = _sweep_command("penguins", "--trials", "10", "--parallel", "2", "--json")
    sweep_ids = lambda: _query(wb_home, "SELECT id FROM runs WHERE trainer = 'sweep'")  # noqa: E731
    _wait(lambda: bool(sweep_ids()), proc, "the sweep run")
    sweep_id = sweep_ids()[0][0]

    def done() -> int:  # one indexed read per poll
        found = _query(
            wb_home,
            "SELECT COUNT(*) FROM runs WHERE parent_id = ? AND status = 'succeeded'",
            (sweep_id,),
        )
        return found[0][0] if found else 0

    _wait(lambda: done() >= 4, proc, "four finished trials")
    proc.kill()
    proc.communicate()
    before = _children(wb_home, sweep_id)
    finished_before = {i: c for i, c in before.items() if c["status"] == "succeeded"}
    assert 4 <= len(finished_before) < 10, "the kill came too late to test a resume"

    # Its owner is gone, so the sweep reads as lost (while its trials' runs go on).
    shown = json.loads(cli("run", "show", str(sweep_id), "--json", check=True).stdout)
    assert shown["status"] == "lost"
    result = cli("sweep", "resume", "penguins", "--json", timeout=300)
    assert result.returncode == 0, result.stderr
    for run_id, child in before.items():
        if child["status"] in ("queued", "running"):  # in flight at the kill: waited for
            assert f"trial {child['trial']}: waiting for run {run_id}" in result.stderr
    doc = json.loads(result.stdout)
    assert doc["sweep_run_id"] == sweep_id and doc["status"] == "succeeded"

    trials = doc["trials"]
    assert [t["number"] for t in trials] == list(range(10))
    assert {t["state"] for t in trials} <= {"complete", "pruned"}
    children = _children(wb_home, sweep_id)
    # Ten child runs: those in flight at the kill were waited for, not duplicated.
    assert len(children) == 10
    assert set(before) <= set(children)
    assert {t["run_id"] for t in trials} == set(children)
    assert sorted(c["trial"] for c in children.values()) == list(range(10))
    combos = {json.dumps(c["params"], sort_keys=True) for c in children.values()}
    assert len(combos) == 10, "a params combination ran twice"
    # Trials finished before the kill kept their run and value, and every trial
    # was told its outcome exactly once.
    by_run = {t["run_id"]: t for t in trials}
    for run_id in finished_before:
        f1 = _query(
            wb_home, "SELECT value FROM metric_series WHERE run_id = ? AND key = 'f1'", (run_id,)
        )[0][0]
        assert by_run[run_id]["state"] == "complete" and by_run[run_id]["value"] == f1
    told = _finished_in_journal(wb_home, sweep_id)
    assert len(told) == 10 and set(told.values()) == {1}

    # The best trial, and only it, became a model version.
    complete = [t for t in trials if t["state"] == "complete"]
    assert doc["best"]["value"] == max(t["value"] for t in complete)
    versions = json.loads(cli("model", "list", "penguins", "--json", check=True).stdout)
    assert [(v["version"], v["run_id"]) for v in versions] == [(1, doc["best"]["run_id"])]
    assert doc["registered_version"] == {"version": 1, "ref": "penguins@1", "aliases": ["champion"]}

    sweep_run = json.loads(cli("run", "show", str(sweep_id), "--json", check=True).stdout)
    assert sweep_run["status"] == "succeeded" and sweep_run["trainer"] == "sweep"
    assert sweep_run["metrics"]["f1"] == doc["best"]["value"]
    assert sweep_run["params"]["_best_run"] == doc["best"]["run_id"]
    assert sweep_run["params"]["num_leaves"] == doc["best"]["params"]["num_leaves"]
    # Listing starts nothing: in this process.
    listed = json.loads(wb_inprocess("sweep", "list", "penguins", "--json", check=True).stdout)
    assert [(s["id"], s["status"], s["trials"]) for s in listed] == [(sweep_id, "succeeded", 10)]
    again = wb_inprocess("sweep", "resume", "penguins")  # refused: it starts nothing
    assert again.returncode == 2 and "no unfinished sweep" in again.stderr


SLEEPY = """
import time
import workbench as wb

params = wb.params()
time.sleep(params["sleep"])
wb.log_metric("score", -(params["x"] - 0.3) ** 2)
"""


def test_ctrl_c_stops_queued_trials_and_a_resume_runs_them(cli, tmp_path, wb_home):
    space = (
        '[sweep]\nsampler = "random"\n[sweep.space]\nx = { type = "float", low = 0, high = 1 }\n'
    )
    _script_project(cli, tmp_path, SLEEPY, space, params="{ sleep = 2.5 }")
    _slots(wb_home, 1)  # one slot: of two trials in flight, one waits in the queue
    proc = _sweep_command("scripted", "--trials", "3", "--parallel", "2", "--json")

    def states() -> list[str]:
        return [s for (s,) in _query(wb_home, "SELECT status FROM runs WHERE parent_id = 1")]

    _wait(lambda: sorted(states()) == ["queued", "running"], proc, "a running and a queued trial")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    doc = json.loads(out)
    assert doc["status"] == "stopped"
    assert "workbench sweep resume scripted 1" in doc["message"]
    stopped = {i: c for i, c in _children(wb_home, 1).items() if c["status"] == "stopped"}
    assert len(stopped) == 1 and next(iter(stopped.values()))["started"] is None

    result = cli("sweep", "resume", "scripted", "1", "--json", timeout=120)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [t["state"] for t in doc["trials"]] == ["complete"] * 3
    ((old_run, old),) = stopped.items()
    again = doc["trials"][old["trial"]]
    # The trial that never started ran under a new run, with the same params.
    assert again["run_id"] != old_run and again["params"]["x"] == old["params"]["x"]
    assert len(_children(wb_home, 1)) == 4  # 3 trials + the run stopped in the queue


STEPPED = """
import time
import workbench as wb

params = wb.params()
for step in range(1, 9):
    # Later trials are worse at every step, whatever their params.
    wb.log_metric("valid_loss", params["_trial"] + 1 / step, step=step)
    wb.flush()
    # The trials to be pruned (after five complete ones) wait long between steps, so
    # that they end by being stopped, however long a loaded machine takes to decide.
    time.sleep(0.15 if params["_trial"] < 5 else 10)
wb.log_metric("score", -params["_trial"])
"""


def test_trials_worse_than_the_median_are_pruned_and_stopped(cli, tmp_path, wb_home):
    space = '[sweep]\npruner = "median"\n[sweep.space]\nx = { type = "float", low = 0, high = 1 }\n'
    _script_project(cli, tmp_path, STEPPED, space)
    result = cli("sweep", "start", "scripted", "--trials", "7", "--json", timeout=240)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    # Median pruning starts after five complete trials.
    assert [t["state"] for t in doc["trials"]] == ["complete"] * 5 + ["pruned"] * 2
    assert doc["best"]["number"] == 0
    for trial in doc["trials"][5:]:
        assert trial["run_status"] == "stopped"
        steps = _query(
            wb_home,
            "SELECT count FROM metric_series WHERE run_id = ? AND key = 'valid_loss'",
            (trial["run_id"],),
        )
        assert steps[0][0] < 8  # stopped before its last step
    assert "trial 5: pruned" in result.stderr


def test_cross_validation_logs_mean_and_std_and_drives_a_sweep(cli, tmp_path, wb_home):
    _penguins(cli, tmp_path, train="cv = 3")
    result = cli("sweep", "start", "penguins", "--trials", "2", "--json", timeout=240)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["objective"] == "cv_f1_mean" and doc["direction"] == "maximize"
    for trial in doc["trials"]:
        value = _query(
            wb_home,
            "SELECT value FROM metric_series WHERE run_id = ? AND key = 'cv_f1_mean'",
            (trial["run_id"],),
        )[0][0]
        assert trial["value"] == value

    # Each trial is a run of the project's trainer, which logged what cross-validation
    # found beside its hold-out scores.
    for trial in doc["trials"]:
        run_id = str(trial["run_id"])
        metrics = json.loads(cli("run", "show", run_id, "--json", check=True).stdout)["metrics"]
        for name in ("accuracy", "f1", "log_loss", "roc_auc"):
            assert metrics[f"cv_{name}_std"] >= 0 and metrics[f"cv_{name}_mean"] > 0, name
            assert name in metrics  # the hold-out score, as without cv
        assert 0.8 < metrics["cv_accuracy_mean"] <= 1
        folds = json.loads(cli("run", "metrics", run_id, "--json", check=True).stdout)
        assert {k["key"]: k["count"] for k in folds}["cv_fold_f1"] == 3
        log = cli("run", "logs", run_id, check=True).stdout
        assert "cross-validation (3 folds): accuracy=" in log and " ± " in log


def test_the_warm_server_forks_supervisors_and_trainers_that_run_and_stop(
    cli, tmp_path, wb_home
):
    _penguins(cli, tmp_path, extra="")
    _slots(wb_home, 2)
    # This server is stopped by the test itself: on a busy machine the next CLI
    # command may take longer than the short idle time to reach it.
    server_env = {**os.environ, "WORKBENCH_WARM_IDLE": "600"}
    server = subprocess.Popen(
        [sys.executable, "-m", "workbench.runs.warm"],
        env=server_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    endless: list[int] = []
    try:
        # It listens once its imports are done.
        assert "listening on" in server.stdout.readline()
        quick = json.loads(cli("run", "start", "penguins", "--wait", "--json", check=True).stdout)
        assert quick["status"] == "succeeded" and quick["metrics"]["f1"] > 0.5
        assert quick["resources"]["cpu_time_s"] > 0
        assert quick["resources"]["peak_process_rss_bytes"] > 0

        slow = cli(
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
        run_id = json.loads(slow.stdout)["id"]
        endless.append(run_id)

        def pids() -> tuple:
            found = _query(wb_home, "SELECT supervisor_pid, pid FROM runs WHERE id = ?", (run_id,))
            return found[0] if found and found[0][1] else ()

        _wait(lambda: bool(pids()), None, "the trainer to start")
        supervisor, trainer = pids()
        # Both forked by the server, not started as fresh interpreters.
        assert psutil.Process(supervisor).ppid() == server.pid
        assert psutil.Process(trainer).ppid() == server.pid
        assert psutil.Process(trainer).cmdline()[-2:] == ["-m", "workbench.runs.warm"]
        cli("run", "stop", str(run_id), check=True)
        shown = json.loads(cli("run", "show", str(run_id), "--json", check=True).stdout)
        assert shown["status"] == "stopped"
        assert not psutil.pid_exists(trainer) or psutil.Process(trainer).status() == "zombie"
    finally:
        for left in endless:  # a failed check must not leave a million-round run going
            cli("run", "stop", str(left))
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    assert not (wb_home / "warm.sock").exists()
