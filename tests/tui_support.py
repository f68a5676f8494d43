"""Shared by the terminal-UI tests: a store of real trained runs of the sample
projects (trained once per session, copied into each test's WORKBENCH_HOME),
reading what a screen shows, and waiting for it."""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from wbtest import NETGUARD, REPO, regular_only

SAMPLES = REPO / "sample_projects"
# folder -> registered name, in the order they are trained
SAMPLE_PROJECTS = {
    "penguins-lightgbm": "penguins",
    "autompg-sklearn": "autompg",
    "cancer-script": "cancer",
}
# (project, overrides) of the runs in the trained store; run ids are 1, 2, 3, 4
TRAINED_RUNS = [
    ("penguins", {}),
    ("autompg", {}),
    ("cancer", {}),
    ("cancer", {"alpha": 0.01, "epochs": 20}),
]
CANCER_RUNS = (3, 4)


def _train_template(root: Path) -> None:
    from workbench.projects import add_project
    from workbench.runs import launch
    from workbench.store import open_store

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", str(root / "home"))
        mp.setenv(
            "PYTHONPATH",
            os.pathsep.join([str(NETGUARD), *filter(None, [os.environ.get("PYTHONPATH")])]),
        )
        # LightGBM sums histograms per thread: one thread gives the same model on
        # any machine, so the snapshots do not depend on the core count.
        mp.setenv("OMP_NUM_THREADS", "1")
        for var in ("WORKBENCH_RUN_ID", "WORKBENCH_PARAMS", "WORKBENCH_PROJECT_DIR"):
            mp.delenv(var, raising=False)
        store = open_store()
        try:
            for folder in SAMPLE_PROJECTS:
                shutil.copytree(SAMPLES / folder, root / "projects" / folder)
                add_project(store, root / "projects" / folder)
            for project, overrides in TRAINED_RUNS:
                run_id, supervisor = launch.start_run(store, project, overrides)
                status = launch.wait_for(store, run_id, supervisor)
                log = root / "home" / "runs" / str(run_id) / "output.log"
                assert status == "succeeded", log.read_text(errors="replace")
        finally:
            store.close()


_template: Path | None = None


def trained_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Projects and a store with runs 1-4 (penguins, autompg, cancer, cancer
    with alpha=0.01 epochs=20), trained once per test run (shared by its workers)."""
    global _template
    if _template is None:
        # Shared by xdist's workers (their temp folders sit side by side): the
        # first to get the lock trains, the others wait for it and copy.
        base = tmp_path_factory.getbasetemp()
        shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
        root = shared / "trained-template"
        with open(shared / "trained-template.lock", "wb") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (root / "complete").exists():
                shutil.rmtree(root, ignore_errors=True)  # a worker that died midway
                root.mkdir()
                _train_template(root)
                (root / "complete").touch()
        _template = root
    return _template


def copy_trained(template: Path, home: Path, tmp_path: Path) -> Path:
    """A test's own copy of the trained store and of its project folders, so a
    test may break a project or add runs; returns the projects folder."""
    projects = tmp_path / "projects"
    shutil.copytree(template / "projects", projects)
    shutil.copytree(template / "home", home, dirs_exist_ok=True, ignore=regular_only)
    sql(
        home,
        "UPDATE projects SET path = replace(path, ?, ?)",
        (str(template / "projects"), str(projects)),
    )
    return projects


class FixedSampler:
    """Stands in for `workbench.tui.reads.SystemSampler`: one fixed reading, then
    the sampling thread waits until its worker is cancelled, so the strip shows
    the same thing however long a test runs, and the thread ends at once on exit."""

    READING = {"ts": 1_700_000_000.0, "cpu": 37.0, "ram": 52.0, "gpus": None}

    def __init__(self) -> None:
        self.calls = 0

    def sample(self) -> dict[str, Any]:
        from textual.worker import get_current_worker

        self.calls += 1
        if self.calls > 1:
            get_current_worker().cancelled_event.wait(60)
        return dict(self.READING)


def _sleep_unless_cancelled(seconds: float) -> None:
    """time.sleep for a worker thread that stops sleeping once it is cancelled."""
    from textual.worker import NoActiveWorker, get_current_worker

    try:
        get_current_worker().cancelled_event.wait(seconds)
    except NoActiveWorker:
        time.sleep(seconds)


def use_fixed_system_sampler(monkeypatch: pytest.MonkeyPatch) -> None:
    """The home screen's CPU/RAM strip gets FixedSampler's reading, and its
    sampling thread ends as soon as the app exits. (home.py sleeps a whole
    second between samples with time.sleep, so every app exit would wait for
    it; `worker.cancelled_event.wait(1.0)` there would make this unnecessary.)"""
    from types import SimpleNamespace

    from workbench.tui import reads
    from workbench.tui.screens import home

    monkeypatch.setattr(reads, "SystemSampler", FixedSampler)
    clock = SimpleNamespace(time=lambda: time.time(), sleep=_sleep_unless_cancelled)
    monkeypatch.setattr(home, "time", clock)


def sql(home: Path, statement: str, args: tuple = ()) -> None:
    """One write to the store from outside the app (as another process would)."""
    db = sqlite3.connect(home / "workbench.db", timeout=10)
    try:
        with db:
            db.execute(statement, args)
    finally:
        db.close()


def sql_value(home: Path, query: str, args: tuple = ()) -> Any:
    """The first column of the first row of a query on the store."""
    db = sqlite3.connect(home / "workbench.db", timeout=10)
    try:
        return db.execute(query, args).fetchone()[0]
    finally:
        db.close()


# What the screen shows ---------------------------------------------------


def plain(widget: Any) -> str:
    """The text a Label or Static shows, without markup."""
    visual = widget.visual
    return visual.plain if hasattr(visual, "plain") else str(visual)


def cell_text(value: Any) -> str:
    return Text.from_markup(value).plain if isinstance(value, str) else str(value)


def row(table: Any, key: str) -> list[str]:
    """A table row's cells as plain text."""
    return [cell_text(c) for c in table.get_row(key)]


def row_keys(table: Any) -> list[str]:
    """The table's row keys, top to bottom."""
    return [r.key.value for r in table.ordered_rows]


def notifications(app: Any) -> list[str]:
    """The messages of the app's toasts (recorded even when run_test hides them)."""
    return [str(n.message) for n in app._notifications]


async def wait_for(pilot: Any, predicate: Callable[[], Any], timeout: float = 20, what: str = ""):
    """Let the app run until `predicate()` is true (polls come every second)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = predicate()
        except Exception:  # a widget not mounted yet, a row not there yet
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        await pilot.pause(0.1)
