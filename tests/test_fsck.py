"""`workbench fsck`: the recovery paths one by one, and what repair refuses."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from wbtest import wb

from workbench.core import paths
from workbench.core.errors import StoreError
from workbench.runs.liveness import owner_gone
from workbench.store import fsck, open_store


def _store_with(runs: int) -> None:
    store = open_store()
    try:
        with store.write() as conn:
            project = conn.execute(
                "INSERT INTO projects (name, path, created_at) VALUES ('p', '/p', 0)"
            ).lastrowid
            for i in range(runs):
                run = conn.execute(
                    "INSERT INTO runs (project_id, status, trainer, created_at, message)"
                    " VALUES (?, 'succeeded', 'lightgbm', ?, ?)",
                    (project, i, "m" * 300),
                ).lastrowid
                conn.execute(  # params is a WITHOUT ROWID table
                    "INSERT INTO params (run_id, key, value) VALUES (?, 'lr', ?)",
                    (run, json.dumps(i / 1000)),
                )
    finally:
        store.close()
    open_store().close()
    conn = sqlite3.connect(paths.db_path())
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def _smash(table: str, which: int) -> int:
    """Random bytes over leaf page number `which` of `table`; returns its cell count."""
    db = paths.db_path()
    conn = sqlite3.connect(db)
    leaves = conn.execute(
        "SELECT pageno, ncell FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno",
        (table,),
    ).fetchall()
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    page, cells = leaves[which]
    with open(db, "r+b") as fh:
        fh.seek((page - 1) * size)
        fh.write(b"\xff" * size)
    return cells


def test_a_sound_store_passes_and_repair_changes_nothing(wb_home):
    _store_with(5)
    db = paths.db_path()
    report = fsck.check(owner_gone=owner_gone)
    assert report["ok"] and report["problems"] == [] and report["integrity"] == ["ok"]
    assert report["schema"]["unknown"] == []
    before = db.read_bytes()
    repaired = fsck.repair(owner_gone=owner_gone)
    assert repaired["ok"] and repaired["repairs"] == []
    assert db.read_bytes() == before
    assert not list(db.parent.glob("workbench.db.*-2*"))  # no backup, no recovered copy
    result = wb("fsck")
    assert result.returncode == 0 and "no problems found" in result.stderr


def test_salvage_keeps_the_rows_around_two_damaged_pages(wb_home):
    _store_with(500)
    lost = _smash("runs", 3) + _smash("runs", 9)
    report = fsck.repair(owner_gone=owner_gone, use_cli=False)
    assert report["ok"], report["problems"]
    store = open_store()
    try:
        ids = [r[0] for r in store.conn.execute("SELECT id FROM runs ORDER BY id")]
        assert len(ids) == 500 - lost
        assert ids[0] == 1 and ids[-1] == 500  # rows after each damaged page kept
        assert store.scalar("SELECT COUNT(*) FROM params") == 500  # untouched table whole
        assert store.pending_migrations() == []
    finally:
        store.close()


def test_salvage_of_a_without_rowid_table_keeps_what_comes_before_the_damage(wb_home):
    _store_with(500)
    _smash("params", -1)  # the last page: everything before it is readable
    report = fsck.repair(owner_gone=owner_gone, use_cli=False)
    assert report["ok"], report["problems"]
    store = open_store()
    try:
        kept = store.scalar("SELECT COUNT(*) FROM params")
        assert 0 < kept < 500
        assert store.scalar("SELECT COUNT(*) FROM runs") == 500
    finally:
        store.close()


def test_a_failing_sqlite3_program_falls_back_to_the_salvage(wb_home, tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "sqlite3"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'sql error: SQL logic error (1)' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    _store_with(200)
    lost = _smash("runs", 2)
    report = fsck.repair(owner_gone=owner_gone)
    assert any("row-by-row salvage" in line for line in report["repairs"])
    store = open_store()
    try:
        assert store.scalar("SELECT COUNT(*) FROM runs") == 200 - lost
    finally:
        store.close()


def test_repair_refuses_while_another_process_has_the_store_open(wb_home, tmp_path):
    _store_with(200)
    _smash("runs", 1)
    db = paths.db_path()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent("""
                import sqlite3, sys, time
                conn = sqlite3.connect(sys.argv[1])
                print("open", flush=True)
                time.sleep(60)
            """),
            str(db),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        damaged = db.read_bytes()
        with pytest.raises(StoreError, match=f"processes {holder.pid}"):
            fsck.repair(owner_gone=owner_gone)
        assert db.read_bytes() == damaged  # nothing swapped
        assert not list(db.parent.glob("workbench.db.recovered-*"))
    finally:
        holder.kill()
        holder.wait()


def test_repair_leaves_a_store_from_a_newer_version_alone(wb_home):
    _store_with(1)
    store = open_store()
    try:
        with store.write() as conn:
            conn.execute(
                "INSERT INTO _sqlite_migrations (migration_set, name, applied_at)"
                " VALUES ('workbench', 'm999_later', 'soon')"
            )
    finally:
        store.close()
    report = fsck.check(owner_gone=owner_gone)
    assert not report["ok"] and report["schema"]["unknown"] == ["m999_later"]
    result = wb("fsck", "--repair")
    assert result.returncode == 1 and "newer workbench" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_damaged_identity_file_is_rewritten_from_the_database(wb_home):
    _store_with(3)
    ident = paths.identity_path()
    ident.write_text("garbage")
    assert not fsck.check(owner_gone=owner_gone)["ok"]
    report = fsck.repair(owner_gone=owner_gone)
    assert report["ok"], report["problems"]
    assert json.loads(ident.read_text())["runs"] == 3
    assert json.loads(wb("run", "list", "--json", check=True).stdout)[0]["id"] == 3


def test_fsck_json_is_one_document(wb_home):
    _store_with(1)
    document = json.loads(wb("fsck", "--json", check=True).stdout)
    assert set(document) >= {
        "database",
        "store_id",
        "integrity",
        "stuck_runs",
        "missing_logs",
        "missing_artifacts",
        "missing_models",
        "orphan_artifacts",
        "problems",
        "repairs",
        "ok",
    }
    assert Path(document["database"]) == paths.db_path()


def test_files_others_can_read_are_reported_and_made_private(wb_home):
    _store_with(1)
    log = paths.run_log(1)
    log.parent.mkdir(parents=True)
    log.write_text("hello\n")
    log.chmod(0o644)
    wb_home.chmod(0o755)
    report = fsck.check(owner_gone=owner_gone)
    assert str(log) in report["exposed"] and str(wb_home) in report["exposed"]
    assert any("other users" in line for line in report["problems"])
    repaired = fsck.repair(owner_gone=owner_gone)
    assert repaired["exposed"] == [] and repaired["ok"], repaired["problems"]
    assert (log.stat().st_mode & 0o777, wb_home.stat().st_mode & 0o777) == (0o600, 0o700)
    assert log.read_text() == "hello\n"
