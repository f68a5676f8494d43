"""Hostile job journals: a journal (and its blobs) lives on a shared filesystem,
where another user or a broken job may write anything. Ingestion skips what is
not a record, refuses blobs that are links, devices or lies about their bytes,
never loops on a line it cannot finish, and bounds what it stores."""

from __future__ import annotations

import hashlib
import json
import os
import textwrap

import pytest

from workbench.core import paths
from workbench.runs.executors import journal
from workbench.runs.executors.journal import ingest
from workbench.store import jobs as job_store
from workbench.store import metrics as metric_store
from workbench.store import open_store
from workbench.store import runs as run_store
from workbench.store.runs import RunStatus


@pytest.fixture
def job(tmp_path):
    from workbench.projects import add_project

    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
    (root / "data" / "train.csv").write_text("x,y\n1,0\n2,1\n")
    (root / "train.py").write_text("print('hi')\n")
    (root / "workbench.toml").write_text(
        textwrap.dedent("""\
        [project]
        name = "hostile"
        [data]
        train = "data/train.csv"
        target = "y"
        [train]
        trainer = "script"
        script = "train.py"
        """)
    )
    store = open_store()
    row = add_project(store, root)
    rid = run_store.insert_queued(store, row["id"], "script", {}, project_name="hostile")
    folder = tmp_path / "job"
    (folder / "blobs").mkdir(parents=True)
    job_store.mark_submitted(
        store, rid, executor="slurm", job_id="9", journal_path=str(folder / "journal.jsonl")
    )
    yield store, job_store.job_of(store, rid), folder
    store.close()


def lines(*records: object) -> bytes:
    return b"".join(
        (r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records
    )


def test_records_that_are_not_records_are_skipped(job):
    store, found, folder = job
    (folder / "journal.jsonl").write_bytes(
        lines(
            b"[" * 100_000 + b"]" * 100_000,  # nesting past the parser's recursion limit
            b"\xff\xfe not utf-8",
            {"t": 5},
            {"t": "m", "k": "a", "s": [True], "ts": [1.0], "v": [1.0]},  # a bool step
            {"t": "m", "k": "a", "s": [1, 2], "ts": [1.0], "v": [1.0]},  # ragged columns
            {"t": "m", "k": "x" * 300, "s": [1], "ts": [1.0], "v": [1.0]},  # key too long
            {"t": "m", "k": "a", "s": [1], "ts": ["now"], "v": [1.0]},
            {"t": "params", "v": {"lr": 0.1}},  # values must be JSON text
            {"t": "res", "ts": "later"},
            {"t": "unknown-kind"},
            {"t": "m", "k": "ok", "s": [1], "ts": [1.0], "v": [2.0]},
        )
    )
    result = ingest(store, found)
    assert result.skipped == 3
    latest = metric_store.latest_values(store.conn, [found.run_id])[found.run_id]
    assert latest == {"ok": 2.0}
    assert run_store.params(store, found.run_id) == {}
    assert run_store.resource_totals(store, found.run_id)["samples"] == 0


def test_a_line_longer_than_a_read_is_never_a_loop(job, monkeypatch):
    store, found, folder = job
    monkeypatch.setattr(journal, "READ_CHUNK", 1024)
    (folder / "journal.jsonl").write_bytes(b"x" * 5000)  # no newline, ever
    assert ingest(store, found).records == 0
    assert job_store.journal_offset(store, found.run_id) == 0


def test_nan_and_infinity_tokens_are_points_without_a_value(job):
    store, found, folder = job
    (folder / "journal.jsonl").write_bytes(
        b'{"t": "m", "k": "loss", "s": [0, 1, 2], "ts": [1.0, 2.0, 3.0],'
        b' "v": [NaN, Infinity, -Infinity]}\n'
    )
    ingest(store, found)
    series = {s["key"]: s for s in metric_store.series_list(store.conn, found.run_id)}
    assert series["loss"]["count"] == 3
    assert metric_store.latest_values(store.conn, [found.run_id])[found.run_id]["loss"] is None


def _blob_record(sha: str, size: int) -> dict:
    return {"t": "a", "name": "model.bin", "sha256": sha, "size": size, "kind": "model", "ts": 1.0}


@pytest.mark.parametrize("how", ["symlink", "fifo", "wrong size", "traversal"])
def test_blobs_that_are_not_what_they_claim_are_refused(job, tmp_path, how):
    store, found, folder = job
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"someone else's data")
    sha = hashlib.sha256(secret.read_bytes()).hexdigest()
    size = secret.stat().st_size
    blob = folder / "blobs" / sha
    if how == "symlink":
        blob.symlink_to(secret)  # the right bytes, through a link: refused unread
    elif how == "fifo":
        os.mkfifo(blob)  # reading would block forever
    elif how == "wrong size":
        blob.write_bytes(secret.read_bytes())
        size = 5
    else:
        sha = "../../" + sha[6:]
    (folder / "journal.jsonl").write_bytes(lines(_blob_record(sha, size)))
    ingest(store, found)
    assert run_store.artifacts(store, found.run_id) == []
    stored = list(paths.artifacts_dir().rglob("*")) if paths.artifacts_dir().exists() else []
    assert [p for p in stored if p.is_file()] == []


def test_an_exit_record_with_odd_fields_ends_the_run_failed_with_bounded_text(job):
    store, found, folder = job
    (folder / "journal.jsonl").write_bytes(
        lines(
            {"t": "start", "ts": 1.0, "node": "n" * 10_000},
            {"t": "exit", "ts": 2.0, "status": "pwned", "code": "zero", "message": "m" * 100_000},
        )
    )
    ingest(store, found)
    run = run_store.get(store, found.run_id)
    assert run.status is RunStatus.FAILED
    assert run.exit_code is None
    assert len(run.message or "") <= 2000
    assert len(job_store.job_of(store, found.run_id).node or "") <= 255
    # Once ended, nothing the journal says later changes it.
    with open(folder / "journal.jsonl", "ab") as f:
        f.write(lines({"t": "exit", "ts": 3.0, "status": "succeeded", "code": 0}))
    ingest(store, found)
    assert run_store.get(store, found.run_id).status is RunStatus.FAILED


def test_a_missing_journal_is_nothing_yet(job):
    store, found, _ = job
    assert ingest(store, found).records == 0
    assert run_store.get(store, found.run_id).status is RunStatus.QUEUED


def test_an_unreadable_journal_never_fails_the_command_that_polls(job, caplog):
    from workbench.runs import executors

    store, found, folder = job
    (folder / "journal.jsonl").mkdir()  # reading it raises IsADirectoryError
    executors.poll(store, run_id=found.run_id)
    assert "cannot read a slurm job's files" in caplog.text
    assert run_store.get(store, found.run_id).status is RunStatus.QUEUED
