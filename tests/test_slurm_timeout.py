"""A Slurm job that outlives its time limit, against the real single-node cluster
(`scripts/slurm_up.sh`): slurmctld signals it at the limit, the job's wrapper
stops the trainer and leaves the outcome to Slurm, and the run ends with the
state Slurm gives it (TIMEOUT) and a reason naming the limit. Without a cluster
this skips with the reason, except in CI, where it fails.

The limit is the smallest Slurm takes (one minute); slurmctld checks limits
about every 30 s, so the job ends some 60-100 s after it starts. The test waits
on conditions only, polling gently: the job itself just sleeps.
"""

from __future__ import annotations

import pytest
from test_slurm_cluster import (  # noqa: F401 - fixtures used by name
    cancel_leftover_jobs,
    cluster,
    show,
    slurm_project,
    start,
)
from wbtest import wait_until, wb_inprocess

pytestmark = pytest.mark.slow

SLEEPS_PAST_ITS_LIMIT = """\
    import time
    print("started, sleeping past the limit", flush=True)
    time.sleep(900)
    print("woke up")
    """


def test_a_job_past_its_time_limit_ends_failed_with_the_limit_as_its_reason(tmp_path, cluster):
    root = slurm_project(tmp_path / "hpc", SLEEPS_PAST_ITS_LIMIT)
    toml = root / "workbench.toml"
    toml.write_text(toml.read_text().replace('time = "10"\n', 'time = "1"\n'))
    run = start()
    assert run["job_id"].isdigit()
    running = wait_until(
        lambda: (r := show(run["id"]))["status"] == "running" and r,
        timeout=240, what="the job to run", poll=0.5,
    )  # fmt: skip
    assert running["slurm_state"] == "RUNNING"
    # The script's first line reaches the run's log while it still runs.
    wait_until(
        lambda: "started, sleeping past the limit"
        in wb_inprocess("run", "logs", str(run["id"]), check=True).stdout,
        timeout=240, what="the started line in the log", poll=0.5,
    )  # fmt: skip

    # One minute of limit, then slurmctld's next check (about every 30 s).
    done = wait_until(
        lambda: (r := show(run["id"]))["status"] not in ("queued", "running") and r,
        timeout=300, what="the job to reach its time limit", poll=1.0,
    )  # fmt: skip
    assert done["status"] == "failed", done
    assert done["slurm_state"] == "TIMEOUT", done
    # Slurm's reason ("TimeLimit") follows the executor's words when it gives one.
    assert done["message"].startswith("the job reached its time limit"), done
    assert done["job_id"] == run["job_id"] and done["node"]
    log = wb_inprocess("run", "logs", str(run["id"]), check=True).stdout
    assert "started, sleeping past the limit" in log
    assert "woke up" not in log
    shown = wb_inprocess("run", "show", str(run["id"]), check=True).stdout
    assert "TIMEOUT" in shown and "time limit" in shown
