"""Reconciliation in one place: listings only read; `reconcile` records lost runs
(once, with their event) and starts queued runs."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys

import pytest
from wbtest import wb

from workbench.core import paths
from workbench.runs.queries import list_runs, lost_runs, show_run
from workbench.runs.reconcile import reconcile
from workbench.store import events as event_store
from workbench.store import open_store
from workbench.store import runs as run_store
from workbench.store.runs import RunStatus


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def dead_and_queued(wb_home):
    """Run 1 marked running whose supervisor is gone; run 2 queued, never dispatched."""
    store = open_store()
    try:
        with store.write() as conn:
            project = conn.execute(
                "INSERT INTO projects (name, path, created_at) VALUES ('p', ?, 0)",
                (str(wb_home / "p"),),
            ).lastrowid
        dead = run_store.create(
            store,
            project,
            "script",
            status="running",
            event_message="run {id} running",
            started_at=100.0,
            heartbeat_at=150.0,
            supervisor_pid=_dead_pid(),
            supervisor_started_at=1.0,  # no live process has this create time
            hostname=socket.gethostname(),
        )
        queued = run_store.insert_queued(store, project, "script", {}, project_name="p")
    finally:
        store.close()
    return dead, queued


def _snapshot(db) -> tuple:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return (
            conn.execute("SELECT * FROM runs ORDER BY id").fetchall(),
            conn.execute("SELECT * FROM events ORDER BY id").fetchall(),
        )
    finally:
        conn.close()


def test_listing_and_showing_runs_never_write(dead_and_queued):
    dead, queued = dead_and_queued
    watcher = open_store()
    before = _snapshot(paths.db_path())
    version = watcher.scalar("PRAGMA data_version")
    store = open_store()
    try:
        changes = store.conn.total_changes
        listed = {r["id"]: r["status"] for r in list_runs(store)}
        assert listed == {dead: "lost", queued: "queued"}  # shown lost, computed now
        assert show_run(store, dead)["status"] == "lost"
        assert lost_runs(store) == {dead} and lost_runs(store, queued) == set()
        assert store.conn.total_changes == changes
    finally:
        store.close()
    for command in (["run", "list", "--json"], ["run", "show", str(dead), "--json"]):
        result = wb(*command, check=True)
        assert "lost" in result.stdout and "Traceback" not in result.stderr
    # No other connection committed anything: not the listings, not a supervisor.
    assert watcher.scalar("PRAGMA data_version") == version
    watcher.close()
    assert _snapshot(paths.db_path()) == before


def test_run_list_does_not_start_a_supervisor(dead_and_queued):
    _, queued = dead_and_queued
    runs = json.loads(wb("run", "list", "--json", check=True).stdout)
    assert [r["status"] for r in runs if r["id"] == queued] == ["queued"]
    store = open_store()
    try:
        run = run_store.get(store, queued)
        assert run.status is RunStatus.QUEUED
        assert run.dispatched_at is None and run.supervisor_pid is None
    finally:
        store.close()
    assert not (paths.run_dir(queued) / "supervisor.log").exists()


def test_reconcile_marks_a_dead_run_lost_once_with_its_event(dead_and_queued, monkeypatch):
    dead, queued = dead_and_queued
    started: list[int] = []
    # Starting the queued run is the queue's job, tested through the CLI elsewhere;
    # here only that reconcile hands it over.
    monkeypatch.setattr("workbench.runs.queue.spawn_supervisor", _fake_spawn(started))
    store = open_store()
    try:
        reconcile(store)
        assert started == [queued]
        assert run_store.get(store, queued).dispatched_at is not None
        reconcile(store)
        run = run_store.get(store, dead)
        assert run.status is RunStatus.LOST
        assert run.ended_at == 150.0  # its last heartbeat
        assert run.message == run_store.LOST_MESSAGE
        lost = event_store.for_run(store, dead, "run.lost")
        assert [e.message for e in lost] == [f"run {dead} lost"]
    finally:
        store.close()


def test_reconcile_leaves_a_read_only_store_alone(dead_and_queued, monkeypatch):
    dead, _ = dead_and_queued
    before = _snapshot(paths.db_path())
    monkeypatch.setenv("WORKBENCH_READ_ONLY", "1")
    store = open_store()
    try:
        assert store.readonly
        reconcile(store)
        assert lost_runs(store) == {dead}
    finally:
        store.close()
    assert _snapshot(paths.db_path()) == before


def test_a_finished_run_is_never_marked_lost(dead_and_queued, monkeypatch):
    dead, _ = dead_and_queued
    monkeypatch.setattr("workbench.runs.queue.spawn_supervisor", _fake_spawn([]))
    store = open_store()
    try:
        # The supervisor recorded its outcome between a reader's look and the marking.
        stale = run_store.get(store, dead)
        assert run_store.transition(store, dead, "succeeded", expect="running", exit_code=0)
        assert not run_store.mark_lost(store, stale)
        reconcile(store)
        assert run_store.status_of(store, dead) is RunStatus.SUCCEEDED
        assert event_store.for_run(store, dead, "run.lost") == []
    finally:
        store.close()


def _fake_spawn(started: list[int]):
    class Spawned:
        pid = _dead_pid()

    def spawn(run_id: int) -> Spawned:
        started.append(run_id)
        return Spawned()

    return spawn
