"""store/pipelines.py and store/sweeps.py: typed records, each change written
with its event in one transaction, claims that only one process wins; and no
SQL left in the automation and sweeps packages."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from pathlib import Path

import psutil
import pytest

from workbench.store import open_store
from workbench.store import pipelines as rows
from workbench.store import sweeps as sweep_rows
from workbench.store.runs import RunStatus, get

PACKAGE = Path(__file__).resolve().parent.parent / "workbench"


@pytest.fixture
def store(wb_home):
    store = open_store()
    with store.write() as conn:
        conn.execute("INSERT INTO projects (name, path, created_at) VALUES ('p', '/nowhere', 0)")
    try:
        yield store
    finally:
        store.close()


def events(store, kind: str) -> list[dict]:
    return store.rows("SELECT message, data FROM events WHERE kind = ? ORDER BY id", (kind,))


def me() -> tuple[int, float]:
    return os.getpid(), psutil.Process().create_time()


def test_a_pipeline_is_queued_with_its_files_and_event(store):
    pipeline_id = rows.create(store, 1, "cli", [("/in/a.csv", 10, 5), ("/in/b.csv", 20, 6)], 1.0)
    found = rows.get(store, pipeline_id)
    assert found is not None and found.state == rows.PENDING and found.project == "p"
    assert found.files == ("/in/a.csv", "/in/b.csv") and found.trigger == "cli"
    with pytest.raises(dataclasses.FrozenInstanceError):
        found.state = "done"  # type: ignore[misc]
    assert rows.handed_files(store, 1) == {"/in/a.csv": (10, 5), "/in/b.csv": (20, 6)}
    assert rows.handed_file(store, 1, "/in/a.csv") == (10, 5)
    assert rows.handed_file(store, 1, "/in/c.csv") is None
    [queued] = events(store, "pipeline.queued")
    assert json.loads(queued["data"]) == {"pipeline": pipeline_id, "files": list(found.files)}
    assert [p.id for p in rows.unfinished(store)] == [pipeline_id]
    assert rows.recent_ids(store, 1) == [pipeline_id] and rows.recent_ids(store, 2) == []


def test_only_one_owner_claims_a_pipeline(store):
    pipeline_id = rows.create(store, 1, "cli", [("/in/a.csv", 1, 1)], 1.0)
    alive = lambda pid, started: False  # noqa: E731 - every other owner is alive
    assert rows.claim(store, pipeline_id, me(), alive, 2.0) is True
    assert rows.claim(store, pipeline_id, me(), alive, 3.0) is True  # its owner resumes it
    assert rows.claim(store, pipeline_id, (1, 1.0), alive, 3.0) is False  # another is refused
    gone = lambda pid, started: True  # noqa: E731 - the owner died
    assert rows.claim(store, pipeline_id, (1, 1.0), gone, 4.0) is True
    taken = rows.get(store, pipeline_id)
    assert taken is not None and taken.owner_pid == 1 and taken.started_at == 2.0
    assert rows.claim(store, 999, me(), alive, 5.0) is None


def test_steps_are_recorded_once_and_end_with_their_event(store):
    pipeline_id = rows.create(store, 1, "cli", [("/in/a.csv", 1, 1)], 1.0)
    rows.start_step(store, pipeline_id, "register", "/in/a.csv", 2.0)
    rows.start_step(store, pipeline_id, "register", "/in/a.csv", 3.0)  # kept as started
    assert rows.ended_step(store, pipeline_id, "register", "/in/a.csv") is None
    note = rows.Note("pipeline.step", "registered", 1, {"pipeline": pipeline_id})
    detail = {"version": 7, "size": 1}
    rows.end_step(
        store, pipeline_id, "register", "/in/a.csv",
        status="ok", summary="registered", detail=detail, now=4.0, note=note,
    )  # fmt: skip
    done = rows.ended_step(store, pipeline_id, "register", "/in/a.csv")
    assert done is not None and done.status == "ok" and done.detail == detail
    assert (done.started_at, done.ended_at) == (2.0, 4.0)
    assert [s.step for s in rows.registrations(store, pipeline_id=pipeline_id)] == ["register"]
    later = rows.create(store, 1, "cli", [("/in/a.csv", 2, 2)], 5.0)
    older = rows.registrations(store, project_id=1, file="/in/a.csv", before=later)
    assert [s.pipeline_id for s in older] == [pipeline_id]
    assert [e["message"] for e in events(store, "pipeline.step")] == ["registered"]


def test_a_batch_is_retired_once_with_its_event(store):
    pipeline_id = rows.create(store, 1, "cli", [("/in/a.csv", 1, 1)], 1.0)
    with store.write() as conn:
        conn.execute(
            "INSERT INTO dataset_versions (project_id, sha256, path, format, rows, columns,"
            " size_bytes, mtime_ns, created_at) VALUES (1, 'abc', '/in/a.csv', 'csv', 3, '[]',"
            " 1, 1, 0)"
        )
    rows.add_verdict(
        store, 1, 1, "accepted", labelled=True, stored="/s.parquet", pipeline_id=pipeline_id,
        now=2.0,
    )  # fmt: skip
    rows.add_verdict(
        store, 1, 1, "rejected", labelled=False, stored=None, pipeline_id=pipeline_id, now=3.0
    )  # the first verdict stands
    verdict = rows.verdict(store, 1, 1, accepted=True)
    assert verdict is not None and verdict.labelled and verdict.stored == "/s.parquet"
    assert [b.dataset_version_id for b in rows.training_batches(store, 1)] == [1]
    note = rows.Note("data.superseded", "retired", 1, {"version": 1})
    assert rows.retire_batch(store, 1, 1, pipeline_id, 4.0, note) is True
    assert rows.retire_batch(store, 1, 1, pipeline_id, 5.0, note) is False
    assert rows.verdict(store, 1, 1) is None
    assert len(events(store, "data.superseded")) == 1


def test_a_sweep_run_is_created_taken_over_and_ended_through_the_runs_aggregate(store):
    owner = sweep_rows.Owner(*me(), "here")
    spec = {"_trials": 3, "_objective": "f1"}
    sweep_id = sweep_rows.create(
        store, 1, spec, owner, time.time(), message="sweep {id} started", data={"space": {}}
    )
    run = get(store, sweep_id)
    assert run is not None and run.status is RunStatus.RUNNING and run.trainer == "sweep"
    assert sweep_rows.params(store, sweep_id) == spec
    assert events(store, "run.running")[0]["message"] == f"sweep {sweep_id} started"
    sweep_rows.end(store, sweep_id, "stopped", "interrupted", time.time())
    assert get(store, sweep_id).status is RunStatus.STOPPED
    # Taken over only from the status it was judged in.
    assert not sweep_rows.take_over(store, sweep_id, "failed", owner, time.time(), {})
    assert sweep_rows.take_over(store, sweep_id, "stopped", owner, time.time(), {"_trials": 5})
    resumed = get(store, sweep_id)
    assert resumed.status is RunStatus.RUNNING and resumed.ended_at is None
    assert sweep_rows.params(store, sweep_id)["_trials"] == 5
    assert events(store, "run.running")[-1]["message"] == f"sweep {sweep_id} resumed"
    assert sweep_rows.latest_unfinished(store, 1) == sweep_id
    assert sweep_rows.project_sweeps(store, 1) == [sweep_id]


SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE)\b")


@pytest.mark.parametrize("package", ["automation", "sweeps"])
def test_the_automation_and_sweeps_packages_hold_no_sql(package):
    found = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for path in sorted((PACKAGE / package).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if SQL.search(line)
    ]
    assert found == [], "SQL belongs in workbench/store: " + ", ".join(found)
