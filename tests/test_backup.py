"""`workbench backup` and `workbench restore`: a consistent copy while runs write,
and a restore that only ever fills an empty home."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from wbtest import wait_until, wb
from wbtest import wb_inprocess as wbi

from workbench.core import paths

WRITERS = 4
# Each writer logs into its own run, flushes every BATCH points, and after each
# flush records (atomically) its run id and how many points are in the store.
WRITER = r"""
import json, os, sys
from pathlib import Path
import workbench as wb

project, report, stop = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
BATCH = 200
with wb.start_run(project=project) as run:
    n = 0
    while not stop.exists() and n < 2_000_000:
        for _ in range(BATCH):
            wb.log_metric("loss", 1.0 / (n + 1), step=n)
            n += 1
        wb.flush()
        tmp = report.with_suffix(".tmp")
        tmp.write_text(json.dumps({"run": run.id, "flushed": n}))
        os.replace(tmp, report)
"""


def _flushed(report: Path) -> dict | None:
    try:
        return json.loads(report.read_text())
    except (FileNotFoundError, ValueError):
        return None


def _points_per_run(db: Path) -> dict[int, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT s.run_id, COUNT(*) FROM metrics m JOIN metric_series s"
            " ON s.id = m.series_id GROUP BY s.run_id"
        ).fetchall()
    finally:
        conn.close()
    return dict(rows)


def _init_project(tmp_path: Path) -> Path:
    from workbench.templates import init_project

    return init_project(tmp_path / "p", "lightgbm")


@pytest.mark.slow
def test_a_backup_taken_while_four_runs_write_restores_every_flushed_point(
    tmp_path, monkeypatch
):
    project = _init_project(tmp_path)
    wb("project", "add", str(project), check=True)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    stop = tmp_path / "stop"
    reports = [tmp_path / f"writer{i}.json" for i in range(WRITERS)]
    writers = [
        subprocess.Popen(
            [sys.executable, str(script), str(project), str(report), str(stop)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for report in reports
    ]
    try:
        wait_until(
            lambda: all((_flushed(r) or {}).get("flushed", 0) >= 1000 for r in reports),
            what="every writer to flush 1,000 points",
        )
        before = {doc["run"]: doc["flushed"] for doc in map(_flushed, reports) if doc}
        backup = tmp_path / "store.zip"
        made = wb("backup", "-o", str(backup), "--json", check=True)
        assert json.loads(made.stdout)["file"] == str(backup)
        # The writers were still writing: each has flushed more since.
        wait_until(
            lambda: all(_flushed(r)["flushed"] > before[_flushed(r)["run"]] for r in reports),
            what="the writers to go on flushing after the backup",
        )
    finally:
        stop.touch()
        for process in writers:
            process.wait(timeout=120)
    for process in writers:
        assert process.returncode == 0, process.stderr.read().decode()[-2000:]
    assert len(before) == WRITERS

    original = json.loads(wb("fsck", "--json").stdout)
    restored_home = tmp_path / "restored"
    monkeypatch.setenv("WORKBENCH_HOME", str(restored_home))
    done = wb("restore", str(backup), "--json", check=True)
    assert json.loads(done.stdout)["integrity"] == "ok"
    conn = sqlite3.connect(restored_home / "workbench.db")
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()
    conn = sqlite3.connect(restored_home / "workbench.db")
    torn = conn.execute(
        "SELECT s.id, s.count, (SELECT COUNT(*) FROM metrics m WHERE m.series_id = s.id)"
        " FROM metric_series s"
    ).fetchall()
    conn.close()
    # One transaction's view: every series summary agrees with its points.
    assert torn and all(count == stored for _, count, stored in torn), torn
    points = _points_per_run(restored_home / "workbench.db")
    for run_id, flushed in before.items():
        assert points.get(run_id, 0) >= flushed, (run_id, points.get(run_id), flushed)
    # The restored store opens as the same store, and fsck finds in it only what
    # it finds in the original (inline runs keep no log file), and that the runs
    # caught running have no process any more (the next command marks them lost).
    restored = json.loads(wb("fsck", "--json").stdout)
    assert restored["store_id"] == original["store_id"]
    assert restored["integrity"][0] == "ok"
    for problem in restored["problems"]:
        assert problem in original["problems"] or "supervisor is gone" in problem, problem


def _small_store(tmp_path: Path) -> Path:
    """A store with a project, one run with metrics, an artifact and a log."""
    import workbench as wb_api

    project = _init_project(tmp_path)
    note = tmp_path / "note.txt"
    note.write_text("an artifact\n")
    with wb_api.start_run(project=project) as run:
        for i in range(50):
            wb_api.log_metric("acc", i / 50, step=i)
        wb_api.log_artifact(note)
        run_id = run.id
    paths.run_dir(run_id).mkdir(parents=True, exist_ok=True)
    paths.run_log(run_id).write_text("line\n" * 100)
    return paths.home()


def test_backup_and_restore_round_trip(tmp_path, monkeypatch):
    home = _small_store(tmp_path)
    backup = tmp_path / "b.zip"
    made = wbi("backup", "-o", str(backup), "--json", check=True)
    document = json.loads(made.stdout)
    with zipfile.ZipFile(backup) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        names = set(zf.namelist())
    assert manifest["format_version"] == 1
    assert manifest["store_id"] == json.loads((home / "store.json").read_text())["store_id"]
    listed = {m["name"] for m in manifest["members"]}
    assert listed | {"manifest.json"} == names
    assert {"workbench.db", "store.json"} <= listed
    assert any(name.startswith("artifacts/") for name in listed)
    assert any(name.startswith("runs/") and name.endswith("output.log") for name in listed)
    assert document["members"] == len(listed)

    target = tmp_path / "restored"
    monkeypatch.setenv("WORKBENCH_HOME", str(target))
    done = wbi("restore", str(backup), check=True)
    assert "integrity ok" in done.stderr
    for name in listed - {"store.json"}:
        assert (target / name).read_bytes() == (home / name).read_bytes() or name == "workbench.db"
    listing = wbi("run", "list", "--json", check=True)
    assert len(json.loads(listing.stdout)) == 1
    assert [p.name for p in target.iterdir() if p.name.startswith(".")] == []


def test_backup_refuses_to_overwrite_without_force(tmp_path):
    _small_store(tmp_path)
    backup = tmp_path / "b.zip"
    backup.write_bytes(b"keep me")
    refused = wbi("backup", "-o", str(backup))
    assert refused.returncode == 2
    assert "--force" in refused.stderr and str(backup) in refused.stderr
    assert backup.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    wbi("backup", "-o", str(backup), "--force", check=True)
    assert zipfile.is_zipfile(backup)


def test_backup_of_no_store_is_refused(tmp_path):
    refused = wbi("backup", "-o", str(tmp_path / "b.zip"))
    assert refused.returncode == 2
    assert "no store to back up" in refused.stderr
    assert not (tmp_path / "b.zip").exists()


def test_restore_into_a_non_empty_home_is_refused_and_writes_nothing(tmp_path, monkeypatch):
    _small_store(tmp_path)
    backup = tmp_path / "b.zip"
    wbi("backup", "-o", str(backup), check=True)
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    monkeypatch.setenv("WORKBENCH_HOME", str(other))
    refused = wbi("restore", str(backup))
    assert refused.returncode == 2
    assert str(other) in refused.stderr and "not empty" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert sorted(p.name for p in other.iterdir()) == ["keep.txt"]
    assert (other / "keep.txt").read_text() == "mine"


def test_an_interrupted_backup_leaves_no_file(tmp_path, monkeypatch):
    """A failure halfway (here: a file that cannot be read) leaves neither the
    backup nor its temporary file."""
    home = _small_store(tmp_path)
    from workbench.store import backup as backup_module

    real = backup_module._add
    calls = []

    def failing(zf, name, path, method, advance):
        calls.append(name)
        if len(calls) == 3:
            raise OSError(5, "Input/output error")
        return real(zf, name, path, method, advance)

    monkeypatch.setattr(backup_module, "_add", failing)
    out = tmp_path / "out" / "b.zip"
    out.parent.mkdir()
    with pytest.raises(OSError):
        backup_module.create_backup(out)
    assert list(out.parent.iterdir()) == []
    assert (home / "workbench.db").exists()


def test_progress_is_reported_for_the_database_and_the_files(tmp_path):
    _small_store(tmp_path)
    from workbench.store.backup import create_backup

    seen: list[tuple[str, int, int]] = []
    create_backup(tmp_path / "b.zip", progress=lambda *a: seen.append(a))
    phases = {what for what, _, _ in seen}
    assert phases == {"copying the database", "writing the backup"}
    last = [s for s in seen if s[0] == "writing the backup"][-1]
    assert last[1] == last[2] > 0


def test_restore_cleans_up_when_the_database_fails_its_integrity_check(tmp_path, monkeypatch):
    """A backup whose database is damaged (hashes recomputed, so only SQLite can
    tell) is refused after extraction, and the home is left empty."""
    _small_store(tmp_path)
    good = tmp_path / "b.zip"
    wbi("backup", "-o", str(good), check=True)
    with zipfile.ZipFile(good) as zf:
        contents = {n: zf.read(n) for n in zf.namelist()}
    db = bytearray(contents["workbench.db"])
    page = 4096
    for offset in range(2 * page, len(db) - page, page):  # scribble on inner pages' headers
        db[offset : offset + 8] = b"\xff" * 8
    contents["workbench.db"] = bytes(db)
    manifest = json.loads(contents["manifest.json"])
    import hashlib

    for member in manifest["members"]:
        if member["name"] == "workbench.db":
            member["sha256"] = hashlib.sha256(db).hexdigest()
    contents["manifest.json"] = json.dumps(manifest).encode()
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        for name, data in contents.items():
            zf.writestr(name, data)
    target = tmp_path / "restored"
    monkeypatch.setenv("WORKBENCH_HOME", str(target))
    refused = wbi("restore", str(bad))
    assert refused.returncode == 2, refused.stderr
    assert "workbench.db" in refused.stderr
    assert list(target.iterdir()) == []
    assert os.access(target, os.W_OK)


def test_a_long_copy_prints_progress_lines_on_stderr(tmp_path, monkeypatch):
    """Off a terminal, progress is a plain line on stderr (here every copy counts as long)."""
    _small_store(tmp_path)
    import workbench.cli.backup as command

    monkeypatch.setattr(command, "QUIET_S", -1.0)
    made = wbi("backup", "-o", str(tmp_path / "b.zip"), "--json", check=True)
    assert "writing the backup: 100%" in made.stderr
    assert json.loads(made.stdout)["members"] >= 3  # stdout stays one JSON document
