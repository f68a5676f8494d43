"""The `[slurm] host` path against a loopback sshd (`scripts/slurm_up.sh sshd`):
a run submitted through the system's ssh (one shared connection, closed at
the end) completes. Without a cluster or an sshd these skip
with the reason, except in CI, where they fail."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from test_slurm_cluster import (  # noqa: F401
    cancel_leftover_jobs,
    cluster,
    show,
    slurm_project,
    start,
)
from wbtest import wait_until, wb_inprocess

from workbench.core import env

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "slurm_up.sh"
SSH_CONFIG = Path(os.environ.get("WB_SLURM_DIR", "/var/tmp/workbench-slurm")) / "ssh" / "config"


def _unreachable() -> str | None:
    """Why the loopback sshd cannot be reached, or None."""
    if not shutil.which("ssh"):
        return "ssh is not installed"
    if not SSH_CONFIG.exists():
        return f"no loopback sshd set up ({SSH_CONFIG} is missing)"
    try:
        out = subprocess.run(
            ["ssh", "-F", str(SSH_CONFIG), "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
             "127.0.0.1", "true"],
            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return "the loopback sshd did not answer"
    if out.returncode != 0:
        return f"the loopback sshd refused us: {out.stderr.strip()[:200]!r}"
    return None


@pytest.fixture(scope="module")
def loopback_ssh(cluster) -> Path:  # noqa: F811
    """The ssh config reaching the loopback sshd; started here when this is root."""
    reason = _unreachable()
    if reason and os.geteuid() == 0:
        started = subprocess.run(
            ["bash", str(SCRIPT), "sshd"], capture_output=True, text=True, timeout=300
        )
        reason = _unreachable() or reason
        if started.returncode == 0:
            reason = _unreachable()
        else:
            reason = f"scripts/slurm_up.sh sshd failed: {started.stderr.strip()[-300:]}"
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs the loopback sshd: {reason}")
        pytest.skip(reason)
    return SSH_CONFIG


def counting_ssh(folder: Path) -> Path:
    """An `ssh` first on PATH that notes each call and runs the real one."""
    real = shutil.which("ssh")
    assert real
    folder.mkdir()
    calls = folder / "calls"
    wrapper = folder / "ssh"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexec {real} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return calls


def test_a_run_submitted_through_ssh_completes(tmp_path, loopback_ssh, monkeypatch):
    from workbench.runs.executors import slurm

    monkeypatch.setenv(env.SSH_CONFIG, str(loopback_ssh))
    calls = counting_ssh(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{calls.parent}{os.pathsep}{os.environ['PATH']}")
    slurm_project(
        tmp_path / "hpc",
        """\
        import workbench as wb
        wb.log_metric("accuracy", 0.5)
        print("trained, submitted through ssh")
        """,
        'host = "127.0.0.1"\n',
    )
    try:
        run = start()
        assert run["executor"] == "slurm" and run["job_id"].isdigit()
        done = wait_until(
            lambda: (r := show(run["id"]))["status"] not in ("queued", "running") and r,
            what="the job to end",
        )
        assert done["status"] == "succeeded", done
        assert done["slurm_state"] == "COMPLETED" and done["node"]
        assert done["metrics"] == {"accuracy": 0.5}
        log = wb_inprocess("run", "logs", str(run["id"]), check=True).stdout
        assert "trained, submitted through ssh" in log
    finally:
        slurm.close_connection("127.0.0.1")
    lines = calls.read_text().splitlines()
    # Submitted through ssh, with the config given and one shared connection.
    (submit,) = [ln for ln in lines if "sbatch --parsable" in ln]
    assert f"-F {loopback_ssh}" in submit and "ControlMaster=auto" in submit
    assert "BatchMode=yes" in submit and submit.split(" -- ")[0].endswith("127.0.0.1")
    assert all("127.0.0.1" in ln for ln in lines)
