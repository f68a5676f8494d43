"""The runs aggregate: typed records, the state machine's single writer and its events."""

from __future__ import annotations

import sqlite3

import pytest

from workbench.store import open_store
from workbench.store import events as event_store
from workbench.store import runs as run_store
from workbench.store.runs import IfNull, Run, RunStatus, transition


@pytest.fixture
def store():
    store = open_store()
    try:
        yield store
    finally:
        store.close()


def new_run(store, status: str = "queued") -> int:
    with store.write() as conn:
        project = conn.execute(
            "INSERT INTO projects (name, path, created_at) VALUES ('p', '/p', 0)"
        ).lastrowid
    run_id = run_store.insert_queued(store, project, "lightgbm", {"lr": 0.1}, project_name="p")
    if status != "queued":
        with store.write() as conn:
            conn.execute("UPDATE runs SET status = ? WHERE id = ?", (status, run_id))
    return run_id


def test_statuses_know_which_are_finished():
    assert [s.value for s in RunStatus] == [
        "queued", "running", "succeeded", "failed", "stopped", "lost"
    ]
    assert not RunStatus.QUEUED.finished and not RunStatus.RUNNING.finished
    assert all(RunStatus(s).finished for s in ("succeeded", "failed", "stopped", "lost"))
    assert RunStatus("lost") == "lost" and str(RunStatus.LOST) == "lost"


def test_a_queued_run_is_a_typed_record_with_its_project_and_event(store):
    run_id = new_run(store)
    run = run_store.get(store, run_id)
    assert isinstance(run, Run) and run.status is RunStatus.QUEUED
    assert (run.project, run.project_path, run.trainer) == ("p", "/p", "lightgbm")
    with pytest.raises(AttributeError):
        run.status = RunStatus.RUNNING  # type: ignore[misc]
    (queued,) = event_store.for_run(store, run_id)
    assert (queued.kind, queued.message) == ("run.queued", f"run {run_id} queued for p")
    assert queued.data == {"params": {"lr": 0.1}} and queued.project == "p"
    assert run_store.get(store, run_id + 1) is None


def test_transition_sets_status_and_columns_with_its_event_in_one_step(store):
    run_id = new_run(store, "running")
    assert transition(
        store, run_id, RunStatus.FAILED, expect=RunStatus.RUNNING,
        exit_code=3, message="exited with code 3", ended_at=5.0,
    )
    run = run_store.get(store, run_id)
    assert (run.status, run.exit_code, run.message, run.ended_at) == (
        RunStatus.FAILED, 3, "exited with code 3", 5.0
    )
    (failed,) = event_store.for_run(store, run_id, "run.failed")
    assert failed.message == f"run {run_id} failed: exited with code 3"
    assert failed.data == {"exit_code": 3} and failed.project_id == run.project_id


def test_a_transition_from_an_unexpected_status_changes_nothing(store):
    run_id = new_run(store, "succeeded")
    before = store.scalar("SELECT COUNT(*) FROM events")
    assert not transition(store, run_id, "lost", expect=("running", "queued"), ended_at=1.0)
    run = run_store.get(store, run_id)
    assert run.status is RunStatus.SUCCEEDED and run.ended_at is None
    assert store.scalar("SELECT COUNT(*) FROM events") == before


def test_unknown_columns_and_statuses_are_refused_before_writing(store):
    run_id = new_run(store)
    with pytest.raises(ValueError, match="colour"):
        transition(store, run_id, "running", colour="red")
    with pytest.raises(ValueError):
        transition(store, run_id, "paused")
    with pytest.raises(ValueError, match="status"):
        transition(store, run_id, "running", status="failed")
    assert run_store.status_of(store, run_id) is RunStatus.QUEUED


def test_if_null_keeps_a_value_already_there_and_event_can_be_left_out(store):
    run_id = new_run(store, "running")
    with store.write() as conn:
        conn.execute("UPDATE runs SET started_at = 7 WHERE id = ?", (run_id,))
    assert transition(
        store, run_id, "stopped", event=False, started_at=IfNull(9.0), ended_at=IfNull(9.0)
    )
    run = run_store.get(store, run_id)
    assert (run.started_at, run.ended_at, run.status) == (7.0, 9.0, RunStatus.STOPPED)
    assert event_store.for_run(store, run_id, "run.stopped") == []


def test_a_transition_joins_the_callers_transaction_and_rolls_back_with_it(store):
    run_id = new_run(store)
    with pytest.raises(sqlite3.IntegrityError), store.write() as conn:
        assert transition(store, run_id, "running", expect="queued", event_message="go")
        conn.execute(
            "INSERT INTO runs (project_id, status, trainer, created_at)"
            " VALUES (999, 'queued', 'x', 0)"
        )
    assert run_store.status_of(store, run_id) is RunStatus.QUEUED
    assert event_store.for_run(store, run_id, "run.running") == []
