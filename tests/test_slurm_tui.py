"""The TUI's queue view of cluster jobs (`J`): Slurm's state, the reason a job
waits, the node it runs on; Enter opens the run."""

from __future__ import annotations

import os
import stat

from tui_support import notifications, row, row_keys, wait_for

from workbench.projects import add_project
from workbench.store import jobs as job_store
from workbench.store import open_store
from workbench.store import runs as run_store
from workbench.store.runs import RunStatus
from workbench.tui.app import make_app
from workbench.tui.screens.jobs import JobsScreen
from workbench.tui.screens.run import RunScreen


def test_queue_rows_are_the_active_jobs_only(tmp_path):
    store, rids = _jobs(tmp_path)
    rows = job_store.queue(store)
    assert [r.run_id for r in rows] == rids[:2]
    assert rows[0].slurm_reason == "Resources" and rows[1].node == "node[07]"
    store.close()


async def test_the_jobs_screen_shows_state_reason_and_node(tmp_path, monkeypatch):
    store, rids = _jobs(tmp_path)
    store.close()
    _fake_squeue(tmp_path, monkeypatch)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("J")
        await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen), what="the jobs screen")
        table = app.screen.query_one("#jobs")
        await wait_for(pilot, lambda: row_keys(table) == [str(r) for r in rids[:2]], what="rows")
        pending, running = row(table, str(rids[0])), row(table, str(rids[1]))
        assert pending[2:6] == ["queued", "slurm 501", "PENDING", "Resources"]
        assert running[2:6] == ["running", "slurm 502", "RUNNING", "node[07]"]
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen), what="the run screen")
        assert app.screen.run_id == rids[0]


async def test_project_and_run_screens_show_executor_job_node_and_slurm_state(
    tmp_path, monkeypatch
):
    from tui_support import plain

    from workbench.tui.screens.project import JOB_COLUMNS, RUN_COLUMNS, ProjectScreen

    store, rids = _jobs(tmp_path)
    local_root = tmp_path / "local"
    (local_root / "data").mkdir(parents=True)
    (local_root / "data" / "train.csv").write_text("x,y\n1,0\n2,1\n")
    (local_root / "workbench.toml").write_text(
        '[project]\nname = "plain"\n[data]\ntrain = "data/train.csv"\ntarget = "y"\n'
        '[train]\ntrainer = "lightgbm"\n'
    )
    local_id = add_project(store, local_root)["id"]
    run_store.insert_queued(store, local_id, "lightgbm", {}, project_name="plain")
    store.close()
    _fake_squeue(tmp_path, monkeypatch)
    app = make_app()
    async with app.run_test(size=(160, 30)) as pilot:
        app.open_project("queued")
        await wait_for(pilot, lambda: _mounted(app, ProjectScreen, "#runs"), what="the project")
        table = app.screen.query_one("#runs")
        await wait_for(pilot, lambda: len(row_keys(table)) == 3, what="the runs")
        labels = [str(c.label).split(" ")[0] for c in table.columns.values()]
        assert labels[-4:] == ["Executor", "Job", "Node", "Slurm"]
        assert row(table, str(rids[0]))[-4:] == ["slurm", "501", "", "PENDING (Resources)"]
        assert row(table, str(rids[1]))[-4:] == ["slurm", "502", "node[07]", "RUNNING"]
        # A project whose runs all ran here keeps its table as it was.
        app.open_project("plain")
        await wait_for(
            pilot,
            lambda: _mounted(app, ProjectScreen, "#runs") and app.screen.project == "plain",
            what="the local project",
        )
        table = app.screen.query_one("#runs")
        await wait_for(pilot, lambda: len(row_keys(table)) == 1, what="its run")
        assert [c.key.value for c in table.columns.values()] == [k for k, _ in RUN_COLUMNS]
        assert not {k for k, _ in JOB_COLUMNS} & {c.key.value for c in table.columns.values()}
        # The run screen's status line says where the job is.
        app.open_run(rids[0])
        await wait_for(pilot, lambda: _mounted(app, RunScreen, "#run-status"), what="the run")
        await wait_for(
            pilot,
            lambda: "slurm job 501 PENDING (Resources)"
            in plain(app.screen.query_one("#run-status")),
            what="the job on the status line",
        )


def _mounted(app, screen_type, selector) -> bool:
    """The app shows a screen of this type, composed (the widget is there)."""
    return isinstance(app.screen, screen_type) and len(app.screen.query(selector)) > 0


def _script_project(root, name: str, extra: str = ""):
    """A two-row project whose trainer is a one-line script; `extra` ends [train]."""
    (root / "data").mkdir(parents=True)
    (root / "data" / "train.csv").write_text("x,y\n1,0\n2,1\n")
    (root / "train.py").write_text("print('hi')\n")
    (root / "workbench.toml").write_text(
        f'[project]\nname = "{name}"\n[data]\ntrain = "data/train.csv"\ntarget = "y"\n'
        f'[train]\ntrainer = "script"\nscript = "train.py"\n{extra}'
    )
    return root


def _jobs(tmp_path):
    root = _script_project(tmp_path / "p", "queued")
    store = open_store()
    pid = add_project(store, root)["id"]
    rids = []
    for n, (state, reason, node) in enumerate(
        [("PENDING", "Resources", None), ("RUNNING", None, "node[07]"), ("COMPLETED", None, "n")]
    ):
        rid = run_store.insert_queued(store, pid, "script", {}, project_name="queued")
        job_store.mark_submitted(
            store, rid, executor="slurm", job_id=str(501 + n), slurm_state=state,
            slurm_reason=reason, node=node,
        )  # fmt: skip
        rids.append(rid)
    run_store.transition(store, rids[1], RunStatus.RUNNING, hostname="slurm:node[07]",
                         heartbeat_at=9e9)  # fmt: skip
    run_store.transition(store, rids[2], RunStatus.SUCCEEDED)
    return store, rids


def _fake_squeue(tmp_path, monkeypatch):
    """The TUI's polls ask Slurm: a squeue that says what the rows already say."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "squeue"
    tool.write_text("#!/bin/sh\necho '501|PENDING|Resources|'\necho '502|RUNNING|None|node[07]'\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


async def test_the_sweep_screen_s_requeue_key_resubmits_the_failed_tasks(tmp_path, monkeypatch):
    """R on an array sweep's screen starts `sweep resume` in a process of its own,
    which requeues the failed task (here sbatch refuses it again: no cluster)."""
    from workbench.core.errors import WorkbenchError
    from workbench.sweeps.engine import start_sweep
    from workbench.tui.screens.sweep import SweepScreen

    root = _script_project(
        tmp_path / "p",
        "swept",
        'metric = "score"\n[sweep]\nspace = { x = { type = "float", low = 0.0, high = 1.0 } }\n',
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "sbatch"
    tool.write_text("#!/bin/sh\ncat >/dev/null\necho 'no partition today' >&2\nexit 1\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    store = open_store()
    add_project(store, root)
    sweep = start_sweep(store, "swept", trials=1, executor="slurm")
    try:
        sweep.run()
    except WorkbenchError as exc:
        assert "no partition today" in exc.message
    (first,) = job_store.children(store, sweep.run_id)
    assert first.status is RunStatus.FAILED
    store.close()
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        app.push_screen(SweepScreen(sweep.run_id))
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen), what="the sweep")
        await pilot.press("R")

        def retried():
            check = open_store()
            try:
                kids = job_store.children(check, sweep.run_id)
                retry = kids[-1] if len(kids) == 2 and kids[-1].finished else None
                return retry and (retry, run_store.get(check, retry.run_id),
                                  run_store.params(check, retry.run_id))  # fmt: skip
            finally:
                check.close()

        retry, row_, params = await wait_for(pilot, retried, timeout=60, what="the requeued task")
        assert params["_retry_of"] == first.run_id and params["_task"] == 0
        assert row_.status is RunStatus.FAILED
        assert "sbatch refused the array: no partition today" in row_.message
        assert f"requeueing 1 failed task(s) of sweep {sweep.run_id}" in notifications(app)


async def test_the_requeue_key_says_why_when_there_is_nothing_to_requeue(tmp_path):
    from tui_support import plain

    from workbench.store import sweeps as sweep_rows
    from workbench.tui.screens.sweep import SweepScreen

    store, _ = _jobs(tmp_path)
    owner = sweep_rows.Owner(os.getpid(), 0.0, "here")
    sweep_id = sweep_rows.create(
        store, 1, {"_executor": "slurm"}, owner, 1.0, message="sweep {id}", data={}
    )
    sweep_rows.end(store, sweep_id, "succeeded", "done", 2.0)
    store.close()
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        app.push_screen(SweepScreen(sweep_id))
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen), what="the sweep")
        # Its study is not there: said on the screen itself, which stays up
        # (no dialog to swallow the next key), once its first poll is shown.
        await wait_for(
            pilot,
            lambda: "No trials to show" in plain(app.screen.query_one("#sweep-empty")),
            what="the sweep's missing-study line",
        )
        await pilot.press("R")
        await wait_for(
            pilot,
            lambda: "has no failed task to requeue" in _error_text(app),
            what="the refusal",
        )


def _error_text(app) -> str:
    """The message of the error dialog on screen, or ""."""
    from tui_support import plain

    from workbench.tui.screens.error import ErrorModal

    if not isinstance(app.screen, ErrorModal):
        return ""
    return plain(app.screen.query_one("#error-message"))
