"""Store integrity: the identity file, damaged and replaced databases, newer
schemas, read-only stores and full disks, and private file modes.

The commands on damaged, replaced, read-only and full stores run in this process
(`wb_auto`: what they print and how they exit is the point, not the process); the
private-modes test starts a real run, whose processes write the run's files."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from wbtest import wb, wb_auto

from workbench.core import paths
from workbench.core.errors import StoreError
from workbench.store import open_store
from workbench.store.identity import identity_path
from workbench.store.schema import STEPS


def populate(runs: int = 30, *, lost: bool = False) -> None:
    """A project and `runs` finished runs (plus one whose supervisor is gone)."""
    store = open_store()
    try:
        with store.write() as conn:
            project = conn.execute(
                "INSERT INTO projects (name, path, created_at) VALUES ('p', '/p', 0)"
            ).lastrowid
            for i in range(runs):
                conn.execute(
                    "INSERT INTO runs (project_id, status, trainer, created_at, message)"
                    " VALUES (?, 'succeeded', 'lightgbm', ?, ?)",
                    (project, i, "m" * 200),
                )
            if lost:
                conn.execute(
                    "INSERT INTO runs (project_id, status, trainer, created_at, supervisor_pid,"
                    " supervisor_started_at) VALUES (?, 'running', 'lightgbm', 0, 999999999, 1)",
                    (project,),
                )
    finally:
        store.close()
    open_store().close()  # the identity file records the counts


def one_line_error(result: subprocess.CompletedProcess, code: int = 1) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def checkpoint(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def corrupt_a_runs_page(db: Path) -> int:
    """Garbage over one leaf page of the runs table; returns how many runs it held."""
    checkpoint(db)
    conn = sqlite3.connect(db)
    leaves = [
        (page, cells)
        for page, cells in conn.execute(
            "SELECT pageno, ncell FROM dbstat WHERE name = 'runs' AND pagetype = 'leaf'"
            " ORDER BY pageno"
        )
    ]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    page, cells = leaves[len(leaves) // 2]
    with open(db, "r+b") as fh:
        fh.seek((page - 1) * size)
        fh.write(b"\xde\xad\xbe\xef" * (size // 4))
    return cells


# --- identity ---------------------------------------------------------------------------


def test_a_new_store_records_its_identity_in_the_database_and_beside_it(wb_home):
    populate(3)
    document = json.loads(identity_path(paths.db_path()).read_text())
    store = open_store()
    try:
        assert (
            store.scalar("SELECT value FROM store_meta WHERE key = 'store_id'")
            == (document["store_id"])
        )
    finally:
        store.close()
    assert len(document["store_id"]) == 32
    assert (document["projects"], document["runs"]) == (1, 3)


def test_a_deleted_database_is_an_error_not_a_new_empty_store(wb_home):
    populate(12)
    db = paths.db_path()
    db.unlink()
    for command in (("run", "list"), ("project", "list"), ("run", "show", "1")):
        line = one_line_error(wb_auto(*command))
        assert "is missing" in line and "12 runs" in line and "fsck --repair" in line
    assert not db.exists()  # nothing was made in its place
    doctor = wb_auto("doctor", "--json")
    assert doctor.returncode == 1
    report = json.loads(doctor.stdout)
    assert report["store_ok"] is False and "is missing" in report["store"]["error"]
    assert not db.exists()


def test_a_database_emptied_or_truncated_is_an_error(wb_home):
    populate(200)
    db = paths.db_path()
    checkpoint(db)
    size = db.stat().st_size
    os.truncate(db, size // 2)
    assert "is truncated" in one_line_error(wb_auto("run", "list"))
    assert db.stat().st_size == size // 2  # left as it was found
    os.truncate(db, 0)
    line = one_line_error(wb_auto("run", "list"))
    assert "is empty" in line and "200 runs" in line
    assert db.stat().st_size == 0


def test_another_stores_database_in_its_place_is_refused_until_adopted(wb_home, tmp_path):
    populate(5)
    db = paths.db_path()
    mine = json.loads(identity_path(db).read_text())["store_id"]
    other_db = tmp_path / "other" / "workbench.db"
    open_store(other_db).close()
    checkpoint(other_db)
    shutil.copy(other_db, db)
    for side in ("-wal", "-shm"):
        db.with_name(db.name + side).unlink(missing_ok=True)
    line = one_line_error(wb_auto("run", "list"))
    assert "belongs to store" in line and mine in line and "was replaced" in line
    assert wb_auto("fsck").returncode == 1
    repaired = wb_auto("fsck", "--repair")
    assert repaired.returncode == 0, repaired.stderr
    assert "identity file now names" in repaired.stderr
    assert wb_auto("run", "list", "--json", check=True).stdout.strip() == "[]"
    assert list(db.parent.glob("store.json.replaced-*"))  # the old identity is kept


def test_an_older_store_without_an_identity_file_is_adopted(wb_home):
    populate(2)
    identity_path(paths.db_path()).unlink()
    assert json.loads(wb_auto("run", "list", "--json", check=True).stdout)[0]["id"] == 2
    assert json.loads(identity_path(paths.db_path()).read_text())["runs"] == 2


def test_a_damaged_identity_file_names_itself(wb_home):
    populate(1)
    identity_path(paths.db_path()).write_text("{not json")
    line = one_line_error(wb_auto("run", "list"))
    assert "store.json" in line and "not valid JSON" in line


# --- damaged pages --------------------------------------------------------------------------


def test_a_corrupted_page_is_reported_in_one_line_and_repaired_into_a_new_file(wb_home):
    populate(600)
    db = paths.db_path()
    lost_rows = corrupt_a_runs_page(db)
    damaged = db.read_bytes()

    doctor = wb_auto("doctor")
    assert doctor.returncode == 1 and "Traceback" not in doctor.stderr
    warnings = [line for line in doctor.stderr.splitlines() if "integrity" in line]
    assert len(warnings) == 1 and "malformed" in warnings[0] and "fsck" in warnings[0]

    line = one_line_error(wb_auto("run", "list", "--all"))
    assert "damaged" in line and "workbench fsck" in line

    check = wb_auto("fsck", "--json")
    assert check.returncode == 1
    assert json.loads(check.stdout)["integrity"] != ["ok"]
    assert db.read_bytes() == damaged  # checking changes nothing

    repaired = wb_auto("fsck", "--repair", "--json")
    assert repaired.returncode == 0, repaired.stderr
    report = json.loads(repaired.stdout)
    assert report["integrity"] == ["ok"] and report["ok"]
    backups = list(db.parent.glob("workbench.db.damaged-*[0-9]"))
    assert len(backups) == 1 and backups[0].read_bytes() == damaged  # the old file, untouched
    runs = json.loads(wb_auto("run", "list", "--all", "--json", check=True).stdout)
    assert 600 - lost_rows <= len(runs) < 600  # every intact row, nothing invented
    assert runs[0]["id"] == 600
    assert wb_auto("doctor").returncode == 0


def test_repair_salvages_rows_without_the_sqlite3_program(wb_home):
    from workbench.runs.liveness import owner_gone
    from workbench.store import fsck

    populate(400)
    db = paths.db_path()
    lost_rows = corrupt_a_runs_page(db)
    report = fsck.repair(owner_gone=owner_gone, use_cli=False)
    assert report["ok"], report["problems"]
    assert any("row-by-row salvage" in line for line in report["repairs"])
    store = open_store()
    try:
        assert store.scalar("SELECT COUNT(*) FROM runs") == 400 - lost_rows
    finally:
        store.close()


def test_fsck_finds_stuck_runs_missing_logs_and_orphan_artifacts(wb_home):
    populate(2, lost=True)
    store = open_store()
    try:
        with store.write() as conn:
            conn.execute("UPDATE runs SET supervisor_pid = 1 WHERE id = 1")  # it had a log
            conn.execute(
                "INSERT INTO artifacts (run_id, name, sha256, size, created_at)"
                " VALUES (2, 'model.txt', ?, 3, 0)",
                ("a" * 64,),
            )
    finally:
        store.close()
    orphan = paths.artifacts_dir() / "bb" / ("b" * 64)
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"nobody's")
    os.utime(orphan, (0, 0))  # old enough not to be a write in progress
    report = json.loads(wb_auto("fsck", "--json").stdout)
    assert report["stuck_runs"] == [3]
    assert report["missing_logs"] == [1, 3]  # both had a supervisor
    assert report["missing_artifacts"] == [{"run_id": 2, "name": "model.txt", "sha256": "a" * 64}]
    assert report["orphan_artifacts"] == [str(orphan)]
    repaired = json.loads(wb_auto("fsck", "--repair", "--json").stdout)
    assert repaired["stuck_runs"] == [] and repaired["orphan_artifacts"] == []
    assert (paths.lost_and_found_dir() / "artifacts" / orphan.name).read_bytes() == b"nobody's"
    assert repaired["missing_logs"] == [1, 3]  # what is gone stays reported
    assert json.loads(wb_auto("run", "show", "3", "--json", check=True).stdout)["status"] == "lost"


def test_fsck_repair_of_a_deleted_database_starts_fresh_and_keeps_the_identity(wb_home):
    populate(4)
    paths.db_path().unlink()
    repaired = wb_auto("fsck", "--repair")
    assert repaired.returncode == 0 and "new, empty store" in repaired.stderr
    kept = list(paths.home().glob("store.json.orphaned-*"))
    assert json.loads(kept[0].read_text())["runs"] == 4
    assert wb_auto("run", "list", "--json", check=True).stdout.strip() == "[]"


# --- versions --------------------------------------------------------------------------------


def test_a_store_from_a_newer_schema_is_refused_with_both_versions(wb_home):
    populate(1)
    store = open_store()
    try:
        with store.write() as conn:
            conn.execute(
                "INSERT INTO _sqlite_migrations (migration_set, name, applied_at)"
                " VALUES ('workbench', 'm999_from_the_future', '2030-01-01')"
            )
    finally:
        store.close()
    line = one_line_error(wb_auto("run", "list"))
    assert f"schema version {len(STEPS) + 1}" in line
    assert f"knows version {len(STEPS)}" in line
    with pytest.raises(StoreError, match="newer workbench"):
        open_store(migrate=False)  # children refuse it too
    assert json.loads(wb_auto("doctor", "--json").stdout)["store_ok"] is False


# --- read-only stores and full disks ------------------------------------------------------


def _mount(*args: str) -> None:
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a filesystem needs root")
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"mount not permitted here: {done.stderr.strip()}")


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _read_commands_work(lost_run: int | None = None) -> None:
    runs = json.loads(wb_auto("run", "list", "--json", check=True).stdout)
    assert len(runs) == 8 + (1 if lost_run else 0)
    if lost_run:
        assert runs[0]["status"] == "lost"  # shown as lost though it cannot be recorded
        assert (
            json.loads(wb_auto("run", "show", str(lost_run), "--json", check=True).stdout)["status"]
            == "lost"
        )
    assert json.loads(wb_auto("run", "show", "1", "--json", check=True).stdout)["id"] == 1
    assert "p" in wb_auto("project", "list", check=True).stdout
    models = wb_auto("model", "list", "p")
    assert models.returncode == 0 and "Traceback" not in models.stderr


def test_a_store_on_a_read_only_filesystem_can_be_listed(wb_home):
    populate(8, lost=True)
    home = paths.home()
    before = {p.name: p.read_bytes() for p in home.iterdir() if p.is_file()}
    _mount("--bind", str(home), str(home))
    try:
        _mount("-o", "remount,bind,ro", str(home))
        assert not os.access(home, os.W_OK)  # even for root
        _read_commands_work(lost_run=9)
        doctor = json.loads(wb_auto("doctor", "--json").stdout)
        assert doctor["store"]["readonly"] is True
        write = wb_auto("project", "add", str(home))
        assert write.returncode != 0 and "Traceback" not in write.stderr
    finally:
        _umount(home)
    assert {p.name: p.read_bytes() for p in home.iterdir() if p.is_file()} == before


def test_the_read_only_decision_can_be_forced(wb_home, monkeypatch):
    populate(8, lost=True)
    monkeypatch.setenv("WORKBENCH_READ_ONLY", "1")
    _read_commands_work(lost_run=9)
    store = open_store()
    try:
        assert store.readonly
        with pytest.raises(sqlite3.OperationalError, match="readonly"), store.write() as conn:
            conn.execute("DELETE FROM runs")
    finally:
        store.close()
    monkeypatch.delenv("WORKBENCH_READ_ONLY")
    assert json.loads(wb_auto("run", "show", "9", "--json", check=True).stdout)["status"] == "lost"
    store = open_store()
    try:  # `run show` only reads: it shows the run lost without recording it
        assert store.scalar("SELECT status FROM runs WHERE id = 9") == "running"
    finally:
        store.close()
    assert "p" in wb_auto("project", "list", check=True).stdout  # a command that reconciles
    store = open_store()
    try:
        assert store.scalar("SELECT status FROM runs WHERE id = 9") == "lost"
    finally:
        store.close()


def test_a_store_that_other_users_cannot_write_is_listed_read_only(tmp_path, monkeypatch):
    """As a user without write permission (root drops to nobody for this)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to act as another user")
    shared = Path("/tmp") / f"wb-ro-{uuid.uuid4().hex}"
    home = shared / "home"
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    try:
        populate(8)
        shared.chmod(0o755)
        home.chmod(0o755)
        for path in home.iterdir():
            path.chmod(0o644)
        try:
            as_nobody = subprocess.run(
                [sys.executable, "-m", "workbench", "run", "list", "--json"],
                capture_output=True,
                text=True,
                user=65534,
                group=65534,
                timeout=120,
            )
        except PermissionError:
            pytest.skip("this Python cannot be run by another user here")
        if "No module named" in as_nobody.stderr or "Permission denied" in as_nobody.stderr:
            pytest.skip("this Python's packages cannot be read by another user here")
        assert as_nobody.returncode == 0, as_nobody.stderr
        assert len(json.loads(as_nobody.stdout)) == 8
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_read_commands_work_on_a_full_disk(tmp_path, monkeypatch):
    disk = tmp_path / "disk"
    disk.mkdir()
    _mount("-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk))
    try:
        monkeypatch.setenv("WORKBENCH_HOME", str(disk / "home"))
        populate(8, lost=True)
        with open(disk / "filler", "wb") as fh, pytest.raises(OSError):
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        _read_commands_work(lost_run=9)
        logs = wb_auto("run", "logs", "1")
        assert logs.returncode == 0 and "Traceback" not in logs.stderr
    finally:
        _umount(disk)


# --- permissions ---------------------------------------------------------------------------------


def test_the_store_and_its_files_are_private(wb_home, tmp_path):
    folder = tmp_path / "proj"
    wb_auto("project", "init", str(folder), "--template", "script", check=True)
    wb("run", "start", "proj", "--set", "epochs=2", "--wait", check=True)
    assert paths.run_log(1).stat().st_size > 0
    assert list(paths.artifacts_dir().rglob("*"))  # the run logged its model
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(wb_home) == 0o700
    for name in ("workbench.db", "store.json"):
        assert mode(wb_home / name) == 0o600, name
    for path in wb_home.rglob("*"):
        assert mode(path) & 0o077 == 0, path
