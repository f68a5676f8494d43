"""`supervised_run`: a real supervised run started from the test process.

`workbench run start --wait` in a subprocess costs an interpreter that imports
the CLI and the store only to queue a run and wait for it; the run itself is
done by its supervisor and trainer, processes of their own either way. Tests
that need a trained run as a starting point (not how `run start` behaves) start
it here with the same calls the command makes, and wait for the supervisor to
exit (it is this process's child, so it is reaped).
"""

from __future__ import annotations

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
