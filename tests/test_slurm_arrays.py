"""A sweep on Slurm as ONE job array, against the real single-node cluster
(`scripts/slurm_up.sh`): one sbatch for all trials, `%K` respected, child runs
ingested from their journals, and a failed task requeued by `sweep resume`.
Without a cluster these skip with the reason, except in CI, where they fail."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from test_slurm_cluster import cancel_leftover_jobs, cluster, show, slurm_project  # noqa: F401
from wbtest import wb_inprocess

pytestmark = pytest.mark.slow

# Fails once: the first task to run takes the flag (O_EXCL: exactly one does).
FAILS_ONCE = """\
import os
import workbench as wb
x = wb.params()["x"]
try:
    os.close(os.open(os.path.join(wb.project_dir(), "failed-once"), os.O_CREAT | os.O_EXCL))
except FileExistsError:
    wb.log_metric("score", 1.0 - (x - 0.3) ** 2)
else:
    raise SystemExit("failing once on purpose")
"""


def counting_sbatch(folder: Path) -> Path:
    """An `sbatch` first on PATH that notes each call and runs the real one."""
    real = shutil.which("sbatch")
    assert real
    folder.mkdir()
    calls = folder / "calls"
    wrapper = folder / "sbatch"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexec {real} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return calls


def test_a_sweep_is_one_array_two_at_a_time_and_resume_requeues_its_failed_task(
    tmp_path, cluster, cli, monkeypatch
):
    root = slurm_project(tmp_path / "hpc", FAILS_ONCE)
    toml = root / "workbench.toml"
    toml.write_text(
        toml.read_text().replace('script = "train.py"\n', 'script = "train.py"\nmetric = "score"\n')
        + '[sweep]\nsampler = "random"\nspace = { x = { type = "float", low = 0.0, high = 1.0 } }\n'
    )
    calls = counting_sbatch(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{calls.parent}{os.pathsep}{os.environ['PATH']}")
    result = cli(
        "sweep", "start", "hpc", "--trials", "10", "--parallel", "2", "--executor", "slurm",
        "--json", timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    sweep_id = doc["sweep_run_id"]
    # One sbatch call: one array of ten tasks, two at a time.
    (call,) = calls.read_text().splitlines()
    assert "--parsable" in call
    runs = json.loads(wb_inprocess("run", "list", "hpc", "--json", check=True).stdout)
    children = sorted((r for r in runs if r["trainer"] == "script"), key=lambda r: r["id"])
    assert len(children) == 10
    jobs = [show(r["id"]) for r in children]
    arrays = {j["job_id"].split("_")[0] for j in jobs}
    assert len(arrays) == 1
    (array_id,) = arrays
    assert sorted(int(j["job_id"].split("_")[1]) for j in jobs) == list(range(10))
    assert all(j["executor"] == "slurm" and j["node"] for j in jobs)
    # Each task asked the study for its own trial, on the node.
    assert sorted(j["params"]["_trial"] for j in jobs) == list(range(10))
    assert len({j["params"]["x"] for j in jobs}) == 10
    statuses = sorted(j["status"] for j in jobs)
    assert statuses == ["failed"] + ["succeeded"] * 9, statuses
    (failed,) = [j for j in jobs if j["status"] == "failed"]
    assert "failing once on purpose" in failed["message"]
    # Never more than two tasks at once, by their recorded start and end times.
    spans = sorted((j["started_at"], j["ended_at"]) for j in jobs)
    for i, (start_i, _) in enumerate(spans):
        assert sum(1 for s, e in spans[:i] if e > start_i) <= 1
    ok = [j for j in jobs if j["status"] == "succeeded"]
    assert doc["best"]["value"] == max(j["metrics"]["score"] for j in ok)
    assert doc["status"] == "succeeded"

    # Resume requeues the failed task, with the same index and params, as a new array.
    resumed = cli("sweep", "resume", "hpc", str(sweep_id), "--json", timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert len(calls.read_text().splitlines()) == 2
    runs = json.loads(wb_inprocess("run", "list", "hpc", "--json", check=True).stdout)
    children = sorted((r for r in runs if r["trainer"] == "script"), key=lambda r: r["id"])
    assert len(children) == 11
    retry = show(children[-1]["id"])
    assert retry["status"] == "succeeded", retry
    assert retry["params"]["_retry_of"] == failed["id"]
    assert retry["params"]["_task"] == failed["params"]["_task"]
    assert retry["params"]["x"] == failed["params"]["x"]
    new_array, index = retry["job_id"].split("_")
    assert new_array != array_id and int(index) == failed["params"]["_task"]
    assert json.loads(resumed.stdout)["status"] == "succeeded"
    # Nothing left to requeue: resuming again is refused in one line.
    again = wb_inprocess("sweep", "resume", "hpc", str(sweep_id))
    assert again.returncode == 2 and "has finished" in again.stderr


# The first task to run hangs until it is cancelled (as a preemption would end
# it); every other one scores at once.
HANGS_ONCE = """\
import os, time
import workbench as wb
x = wb.params()["x"]
try:
    fd = os.open(os.path.join(wb.project_dir(), "hung-once"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
except FileExistsError:
    wb.log_metric("score", 1.0 - (x - 0.3) ** 2)
else:
    os.write(fd, os.environ["WORKBENCH_RUN_ID"].encode())
    os.close(fd)
    while True:
        time.sleep(0.1)
"""


def test_a_task_cancelled_while_it_runs_is_requeued_with_its_trial_s_params(tmp_path, cluster):
    import subprocess
    import sys

    from wbtest import wait_until

    root = slurm_project(tmp_path / "hpc", HANGS_ONCE)
    toml = root / "workbench.toml"
    toml.write_text(
        toml.read_text().replace('script = "train.py"\n', 'script = "train.py"\nmetric = "score"\n')
        + '[sweep]\nsampler = "random"\nspace = { x = { type = "float", low = 0.0, high = 1.0 } }\n'
    )
    sweep = subprocess.Popen(
        [sys.executable, "-m", "workbench", "sweep", "start", "hpc", "--trials", "3",
         "--parallel", "2", "--executor", "slurm", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:

        def hung():
            flag = root / "hung-once"
            rid = flag.read_text() if flag.exists() else ""
            run = show(int(rid)) if rid.isdigit() else None
            return run if run and run["status"] == "running" else None

        victim = wait_until(hung, what="the hanging task to run")
        # Cancelled from outside, as a preemption or an admin would.
        subprocess.run(["scancel", victim["job_id"]], check=True, timeout=60)
        out, err = sweep.communicate(timeout=240)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 0, err
    cancelled = show(victim["id"])
    assert cancelled["status"] == "stopped" and cancelled["slurm_state"] == "CANCELLED"
    trial = next(
        t for t in json.loads(out)["trials"] if t["number"] == cancelled["params"]["_trial"]
    )
    assert trial["state"] == "fail" and "signalled" in trial["reason"]

    resumed = wb_inprocess("sweep", "resume", "hpc", "--json")
    assert resumed.returncode == 2 and "no unfinished sweep" in resumed.stderr
    resumed = wb_inprocess("sweep", "resume", "hpc", str(json.loads(out)["sweep_run_id"]))
    assert resumed.returncode == 0, resumed.stderr
    runs = json.loads(wb_inprocess("run", "list", "hpc", "--json", check=True).stdout)
    retry = show(max(r["id"] for r in runs if r["trainer"] == "script"))
    assert retry["status"] == "succeeded", retry
    assert retry["params"]["_retry_of"] == victim["id"]
    # The same point again: its trial's params were enqueued for the retry.
    assert retry["params"]["x"] == cancelled["params"]["x"]
    assert retry["params"]["_trial"] != cancelled["params"]["_trial"]
