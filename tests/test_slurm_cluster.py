"""The Slurm executor against a real slurmctld/slurmd (`scripts/slurm_up.sh`
starts a single-node cluster; CI runs it before the tests). Without one these
tests skip with the reason, except in CI, where they fail.

Each job's folder is under the test's own WORKBENCH_HOME, on this machine, as a
shared filesystem would put it on every node.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
from wbtest import wait_until, wb_inprocess

pytestmark = pytest.mark.slow


def _missing() -> str | None:
    """Why there is no cluster to test against, or None."""
    if not (shutil.which("sbatch") and shutil.which("squeue") and shutil.which("sinfo")):
        return "Slurm's commands are not installed; scripts/slurm_up.sh installs and starts one"
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        return "sinfo did not answer"
    states = set(out.stdout.split())
    if out.returncode != 0 or not states & {"idle", "mix", "alloc", "comp"}:
        return f"no Slurm node is up (sinfo: {(out.stdout + out.stderr).strip()[:200]!r})"
    return None


@pytest.fixture(scope="module")
def cluster() -> int:
    """The cluster's CPUs on its node; fails in CI when there is no cluster."""
    reason = _missing()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs a Slurm cluster: {reason}")
        pytest.skip(reason)
    out = subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True, timeout=30)
    return int(out.stdout.split()[0].rstrip("+"))


def slurm_project(root: Path, body: str, slurm: str = "") -> Path:
    root.mkdir(parents=True)
    (root / "data").mkdir()
    (root / "data" / "train.csv").write_text("x,y\n1,0\n2,1\n")
    (root / "train.py").write_text(textwrap.dedent(body))
    (root / "workbench.toml").write_text(
        textwrap.dedent("""\
        [project]
        name = "hpc"
        [data]
        train = "data/train.csv"
        target = "y"
        [train]
        trainer = "script"
        script = "train.py"
        [runs]
        executor = "slurm"
        [slurm]
        time = "10"
        """)
        + textwrap.dedent(slurm)
    )
    wb_inprocess("project", "add", str(root), check=True)
    return root


@pytest.fixture(autouse=True)
def cancel_leftover_jobs(wb_home):
    """A failed test must not leave its jobs holding the node for the next ones."""
    yield
    from workbench.store import jobs as job_store
    from workbench.store import open_store

    if not (wb_home / "workbench.db").exists():
        return
    store = open_store()
    try:
        ids = [j.job_id for j in job_store.active(store) if j.job_id]
    finally:
        store.close()
    if ids:
        subprocess.run(["scancel", *ids], timeout=60)


def show(run_id: int) -> dict:
    """`run show --json`, which brings in the job's journal and Slurm's state."""
    return json.loads(wb_inprocess("run", "show", str(run_id), "--json", check=True).stdout)


def start(*extra: str) -> dict:
    return json.loads(wb_inprocess("run", "start", "hpc", "--json", *extra, check=True).stdout)


def in_squeue(job_id: str) -> str:
    out = subprocess.run(
        ["squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T"], capture_output=True, text=True
    )
    return out.stdout.strip()


WAITS_FOR_RELEASE = """\
    import pathlib, time
    import workbench as wb
    wb.log_params({"width": 3})
    release = pathlib.Path(wb.project_dir()) / "release"
    step = 0
    while True:
        wb.log_metric("loss", 1.0 / (step + 1), step=step)
        if release.exists():
            break
        step += 1
        time.sleep(0.1)
    pathlib.Path("model.txt").write_text("weights")
    wb.log_artifact("model.txt", kind="model")
    wb.log_metric("accuracy", 0.75)
    print("trained on the node")
    """


def test_runs_go_pending_running_completed_with_their_metrics_resources_and_model(
    tmp_path, cluster
):
    # Each job asks for every CPU of the node: the second waits for the first.
    root = slurm_project(tmp_path / "hpc", WAITS_FOR_RELEASE, f"cpus = {cluster}\n")
    first = start()
    assert first["executor"] == "slurm" and first["job_id"].isdigit()
    second = start("--executor", "slurm")
    running = wait_until(
        lambda: (r := show(first["id"]))["status"] == "running" and r, what="the first job to run"
    )
    assert running["node"] and running["slurm_state"] == "RUNNING"
    # Slurm's reason arrives with the next (rate-limited) squeue.
    pending = wait_until(
        lambda: (r := show(second["id"]))["slurm_reason"] and r, what="the pending reason"
    )
    assert pending["status"] == "queued"
    assert pending["slurm_state"] == "PENDING"
    assert pending["slurm_reason"] in ("Resources", "Priority")
    assert pending["message"] == f"Slurm: pending ({pending['slurm_reason']})"
    # Metrics and resource samples stream in while the job runs.
    wait_until(lambda: show(first["id"])["metrics"].get("loss"), what="live metrics")

    (root / "release").touch()
    for run in (first, second):
        done = wait_until(
            lambda run=run: (r := show(run["id"]))["status"] not in ("queued", "running") and r,
            what=f"run {run['id']} to end",
        )
        assert done["status"] == "succeeded", done
        assert done["exit_code"] == 0
        assert done["job_id"] == run["job_id"]
        assert done["node"] and done["slurm_state"] == "COMPLETED"
        assert done["params"] == {"width": 3}
        assert done["metrics"]["accuracy"] == 0.75 and done["metrics"]["loss"] > 0
        if run is first:  # it ran for seconds; the second may end before a sample is due
            assert done["resources"]["samples"] >= 1
            assert done["resources"]["rss_bytes_max"] > 0
        assert [a["name"] for a in done["artifacts"]] == ["model.txt"]
        log = wb_inprocess("run", "logs", str(run["id"]), check=True).stdout
        assert "trained on the node" in log
    versions = json.loads(wb_inprocess("model", "list", "hpc", "--json", check=True).stdout)
    assert {v["run_id"] for v in versions} == {first["id"], second["id"]}


def test_run_stop_cancels_the_job_and_the_run_ends_stopped(tmp_path, cluster):
    slurm_project(
        tmp_path / "hpc",
        """\
        import time
        import workbench as wb
        for step in range(100000):
            wb.log_metric("tick", step, step=step)
            time.sleep(0.1)
        """,
    )
    run = start()
    wait_until(lambda: show(run["id"])["metrics"].get("tick") is not None, what="the job to run")
    result = wb_inprocess("run", "stop", str(run["id"]), check=True)
    assert "stopped" in result.stderr + result.stdout
    done = show(run["id"])
    assert done["status"] == "stopped"
    assert done["slurm_state"] == "CANCELLED"
    assert done["message"] == "stopped on request (scancel)"
    assert in_squeue(run["job_id"]) in ("", "CANCELLED")
    # Stopping it again is refused in one line.
    again = wb_inprocess("run", "stop", str(run["id"]))
    assert again.returncode != 0 and "already stopped" in again.stderr


def test_a_failing_script_ends_failed_with_its_reason_and_log(tmp_path, cluster):
    slurm_project(
        tmp_path / "hpc",
        """\
        import workbench as wb
        wb.log_metric("loss", 0.5, step=0)
        print("loading the data")
        raise ValueError("the data has no rows")
        """,
    )
    result = wb_inprocess("run", "start", "hpc", "--wait", "--json")
    assert result.returncode == 1
    done = json.loads(result.stdout)
    assert done["status"] == "failed"
    assert done["exit_code"] == 1
    assert "ValueError: the data has no rows" in done["message"]
    assert done["slurm_state"] == "FAILED" and done["job_id"]
    assert done["metrics"] == {"loss": 0.5}
    log = wb_inprocess("run", "logs", str(done["id"]), check=True).stdout
    assert "loading the data" in log and "Traceback" in log
    shown = wb_inprocess("run", "show", str(done["id"]), check=True).stdout
    assert f"slurm job {done['job_id']}" in shown and "FAILED" in shown


def test_the_pipeline_s_retrain_runs_on_slurm_when_the_project_says_so(tmp_path, cluster, cli):
    root = slurm_project(
        tmp_path / "hpc",
        """\
        import workbench as wb
        print("retrained on", wb.train_file())
        wb.log_metric("accuracy", 0.8)
        """,
        '[automation]\non_new_data = "validate-and-retrain"\n',
    )
    rows = "x,y\n" + "".join(f"{i / 40:.3f},{i % 2}\n" for i in range(40))
    (root / "data" / "train.csv").write_text(rows)
    batch = tmp_path / "batch.csv"
    batch.write_text("x,y\n" + "".join(f"{i / 20:.3f},{i % 2}\n" for i in range(20)))
    result = cli("pipeline", "run", "hpc", str(batch), timeout=240)
    assert result.returncode == 0, result.stderr
    (run,) = json.loads(wb_inprocess("run", "list", "hpc", "--json", check=True).stdout)
    done = show(run["id"])
    assert done["status"] == "succeeded"
    assert done["executor"] == "slurm" and done["job_id"] and done["slurm_state"] == "COMPLETED"
    assert "retrained on" in wb_inprocess("run", "logs", str(run["id"]), check=True).stdout


def test_run_logs_follow_streams_a_job_s_output_until_it_ends(tmp_path, cluster):
    slurm_project(
        tmp_path / "hpc",
        """\
        import time
        for i in range(3):
            print(f"epoch {i}", flush=True)
            time.sleep(0.3)
        """,
    )
    run = start()
    followed = wb_inprocess("run", "logs", str(run["id"]), "--follow", check=True)
    assert [ln for ln in followed.stdout.splitlines() if ln.startswith("epoch")] == [
        "epoch 0", "epoch 1", "epoch 2",
    ]  # fmt: skip
    assert show(run["id"])["status"] == "succeeded"
