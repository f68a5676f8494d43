"""Hostile store files: a damaged, replaced, emptied or foreign database, a
damaged identity file, a store folder that cannot be one.

Every case: exit 1 (a store problem), one line on stderr saying what is wrong
and what to do, no traceback, the database and identity files byte for byte
as they were, and no new store made in their place.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from wbtest import wb_inprocess as wb  # no case starts a process: run them in this one

from workbench.core import paths
from workbench.store import open_store


def _noise(size: int) -> bytes:
    """Random-looking bytes, the same on every run (a failure can be replayed)."""
    return random.Random(size).randbytes(size)


def _populate() -> None:
    store = open_store()
    try:
        with store.write() as conn:
            project = conn.execute(
                "INSERT INTO projects (name, path, created_at) VALUES ('p', '/p', 0)"
            ).lastrowid
            for i in range(300):
                conn.execute(
                    "INSERT INTO runs (project_id, status, trainer, created_at, message)"
                    " VALUES (?, 'succeeded', 'lightgbm', ?, ?)",
                    (project, i, "m" * 200),
                )
    finally:
        store.close()
    open_store().close()
    db = paths.db_path()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    for side in ("-wal", "-shm"):
        db.with_name(db.name + side).unlink(missing_ok=True)


def _db() -> Path:
    return paths.db_path()


def _identity() -> Path:
    return paths.identity_path()


def _write(path_of: Callable[[], Path], data: bytes) -> Callable[[], None]:
    return lambda: path_of().write_bytes(data)


def _truncate(fraction: float) -> Callable[[], None]:
    return lambda: os.truncate(_db(), int(_db().stat().st_size * fraction))


def _sql(*statements: str) -> Callable[[], None]:
    def run() -> None:
        conn = sqlite3.connect(_db(), isolation_level=None)
        for statement in statements:
            conn.execute(statement)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        for side in ("-wal", "-shm"):
            _db().with_name(_db().name + side).unlink(missing_ok=True)

    return run


def _garbage_page(table: str) -> Callable[[], None]:
    def run() -> None:
        conn = sqlite3.connect(_db())
        page = conn.execute(
            "SELECT pageno FROM dbstat WHERE name = ? ORDER BY pageno DESC LIMIT 1", (table,)
        ).fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        conn.close()
        with open(_db(), "r+b") as fh:
            fh.seek((page - 1) * size)
            fh.write(_noise(size))

    return run


def _garble_schema() -> None:
    """Page 1 keeps the file header but its table of tables is random bytes."""
    with open(_db(), "r+b") as fh:
        fh.seek(100)
        fh.write(_noise(3996))


def _header_pages(count: int) -> Callable[[], None]:
    def run() -> None:
        with open(_db(), "r+b") as fh:
            fh.seek(28)
            fh.write(struct.pack(">I", count))

    return run


def _other_store() -> None:
    other = _db().with_name("elsewhere.db")
    open_store(other).close()
    conn = sqlite3.connect(other)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    shutil.copy(other, _db())
    for path in _db().parent.glob("elsewhere.db*"):
        path.unlink()


def _replace_with_dir(path_of: Callable[[], Path]) -> Callable[[], None]:
    def run() -> None:
        path_of().unlink()
        path_of().mkdir()

    return run


def _symlink(path_of: Callable[[], Path], target: str) -> Callable[[], None]:
    def run() -> None:
        path_of().unlink()
        path_of().symlink_to(target)

    return run


# id -> (what to do to a populated store, a piece of the one-line error)
CASES: dict[str, tuple[Callable[[], None], str]] = {
    "db deleted": (lambda: _db().unlink(), "is missing"),
    "db emptied": (_write(_db, b""), "is empty"),
    "db 50 bytes of garbage": (_write(_db, _noise(50)), "not a SQLite database"),
    "db 8 KiB of random bytes": (_write(_db, _noise(8192)), "not a SQLite database"),
    "db a text file": (_write(_db, b"hello, I am a database\n" * 10), "not a SQLite database"),
    "db zeros": (_write(_db, b"\0" * 4096), "not a SQLite database"),
    "db cut in half": (_truncate(0.5), "is truncated"),
    "db cut to its header": (_truncate(0.0001), "not a SQLite database"),
    "db cut one byte short": (lambda: os.truncate(_db(), _db().stat().st_size - 1), "truncated"),
    "header claims a million pages": (_header_pages(1_000_000), "is truncated"),
    "a runs page of random bytes": (_garbage_page("runs"), "fsck"),
    "the schema page garbled after the header": (_garble_schema, "fsck"),
    "another store's database": (_other_store, "belongs to store"),
    "store id deleted from the db": (_sql("DELETE FROM store_meta"), "without an id"),
    "store id changed in the db": (
        _sql("UPDATE store_meta SET value = 'feedface' WHERE key = 'store_id'"),
        "feedface",
    ),
    "newer schema": (
        _sql(
            "INSERT INTO _sqlite_migrations (migration_set, name, applied_at)"
            " VALUES ('workbench', 'm900_next', 'soon')"
        ),
        "newer workbench",
    ),
    "db is a folder": (_replace_with_dir(_db), "cannot open the store"),
    "db links to /dev/null": (_symlink(_db, "/dev/null"), "is empty"),
    "identity not JSON": (_write(_identity, b"{store_id: 1"), "not valid JSON"),
    "identity a JSON list": (_write(_identity, b"[1, 2, 3]"), "store_id"),
    "identity id a number": (_write(_identity, b'{"store_id": 7}'), "store_id"),
    "identity empty": (_write(_identity, b""), "not valid JSON"),
    "identity binary": (_write(_identity, _noise(300)), "damaged"),
    "identity 100 KiB": (
        _write(_identity, json.dumps({"store_id": "x", "pad": "y" * 100_000}).encode()),
        "larger than",
    ),
    "identity another id": (
        _write(_identity, b'{"store_id": "0123456789abcdef", "runs": 3}'),
        "was replaced",
    ),
    "identity is a folder": (_replace_with_dir(_identity), "cannot read"),
}


def _snapshot(home: Path) -> dict[str, bytes | str]:
    """Every file's bytes (folders and links by name); SQLite's own -wal/-shm aside."""
    out: dict[str, bytes | str] = {}
    for path in sorted(home.rglob("*")):
        name = str(path.relative_to(home))
        if name.endswith(("-wal", "-shm", ".lock")):
            continue
        if path.is_symlink():
            out[name] = "link:" + os.readlink(path)
        elif path.is_dir():
            out[name] = "dir"
        else:
            out[name] = path.read_bytes()
    return out


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_hostile_store_is_refused_in_one_line(case: str, wb_home: Path):
    tamper, expected = CASES[case]
    _populate()
    tamper()
    before = _snapshot(wb_home)
    for args in (("run", "list", "--all"), ("project", "list")):
        result = wb(*args)
        assert result.returncode == 1, (args, result.returncode, result.stdout, result.stderr)
        assert "Traceback" not in result.stdout + result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("error:") and expected in lines[0], lines[0]
    assert _snapshot(wb_home) == before  # nothing changed, nothing made in its place
    doctor = wb("doctor", "--json")
    assert doctor.returncode == 1 and "Traceback" not in doctor.stderr
    assert json.loads(doctor.stdout)["store_ok"] is False
    assert _snapshot(wb_home) == before


@pytest.mark.parametrize("home", ["/etc/passwd", "/etc/passwd/below-a-file"])
def test_a_store_folder_that_cannot_be_made_is_one_line(home: str, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", home)
    result = wb("run", "list")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (
        result.stderr.strip().splitlines() == [result.stderr.strip()]
        and "WORKBENCH_HOME" in result.stderr
    )


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 25
