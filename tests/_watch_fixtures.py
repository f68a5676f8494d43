"""`supervised_run`: a real supervised run started from the test process, and
`start_warm_runner`: the store's warm runner, up before a test's first run.

`workbench run start --wait` in a subprocess costs an interpreter that imports
the CLI and the store only to queue a run and wait for it; the run itself is
done by its supervisor and trainer, processes of their own either way. Tests
that need a trained run as a starting point (not how `run start` behaves) start
it here with the same calls the command makes, and wait for the supervisor to
exit (it is this process's child, so it is reaped).
"""

from __future__ import annotations

import os
import subprocess
import sys

from wbtest import _forget_process_caches


def supervised_run(project: str, *overrides: str) -> int:
    """Start a run of `project` (with `KEY=VALUE` overrides, as `run start --set`
    takes them) in the store of WORKBENCH_HOME, wait until its supervisor has
    exited, and return the run's id; fails unless the run succeeded."""
    from workbench.config.project import parse_overrides
    from workbench.runs.launch import start_run, wait_for
    from workbench.store import open_store

    _forget_process_caches()  # what a fresh `workbench` process would not have
    store = open_store()
    try:
        run_id, supervisor = start_run(store, project, parse_overrides(overrides))
        assert supervisor is not None, f"run {run_id} was queued, not started"
        status = wait_for(store, run_id, supervisor)
    finally:
        store.close()
    if status != "succeeded":
        from workbench.core import paths

        log = paths.run_dir(run_id) / "supervisor.log"
        detail = log.read_text(errors="replace") if log.exists() else "(no supervisor log)"
        raise AssertionError(f"run {run_id} of {project} {status}:\n{detail}")
    return run_id


def start_warm_runner(idle_s: float | None = None) -> None:
    """Start the warm runner of the store of WORKBENCH_HOME (`workbench sweep` and a
    pipeline's retrain start it themselves), so that the trainers of the runs that
    follow are forked from it instead of each importing pandas, scikit-learn and
    LightGBM afresh. `idle_s`: how long it stays after its last child (its own
    default otherwise). It is started by a short-lived process, so that it and what
    it forks are not this process's descendants: the in-process CLI takes a
    descendant that appears during a command for one the command left running."""
    env = dict(os.environ)
    if idle_s is not None:
        env["WORKBENCH_WARM_IDLE"] = str(idle_s)
    subprocess.run(
        [sys.executable, "-c", "from workbench.runs import warm; warm.ensure_server()"],
        env=env,
        check=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
