"""The store's identity: a random id kept both in the database (`store_meta`) and
in a small file next to it (`store.json`), with how many projects and runs the
store held when last opened.

With both, a database that was deleted, truncated or swapped for another
store's is an error that says what happened, instead of a fresh empty store
quietly taking its place.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import struct
import tempfile
import time
from pathlib import Path
from typing import Any

from workbench.core.errors import StoreError

MAX_IDENTITY_BYTES = 64 * 1024
SQLITE_MAGIC = b"SQLite format 3\x00"
HEADER_BYTES = 100


def identity_path(db: Path) -> Path:
    """`store.json` beside the default `workbench.db`; `<name>.store.json` beside any other."""
    return db.with_name("store.json" if db.name == "workbench.db" else db.name + ".store.json")


def read_identity(db: Path) -> dict[str, Any] | None:
    """The identity file's content, None when there is none; a damaged file is an error."""
    path = identity_path(db)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_IDENTITY_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"cannot read the store's identity file {path}: {exc.strerror}") from None
    problem = None
    if len(raw) > MAX_IDENTITY_BYTES:
        problem = f"larger than {MAX_IDENTITY_BYTES} bytes"
    else:
        try:
            document = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            problem = "not valid JSON"
        else:
            if isinstance(document, dict) and isinstance(document.get("store_id"), str):
                return document
            problem = 'expected a JSON object with a "store_id" string'
    raise StoreError(
        f"the store's identity file {path} is damaged ({problem}); "
        "run `workbench fsck --repair` to rewrite it from the database"
    )


def write_identity(db: Path, store_id: str, projects: int, runs: int) -> None:
    """Replace the identity file atomically; readable by this user only."""
    path = identity_path(db)
    document = {
        "store_id": store_id,
        "database": db.name,
        "projects": projects,
        "runs": runs,
        "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    # Not files.atomic_write_text(mode=0o600), which adds an fsync this write never had.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".store.json.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(document, fh, indent=2)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def database_id(conn: sqlite3.Connection) -> str | None:
    """The id recorded in the database, None when it has none (an older store)."""
    try:
        row = conn.execute("SELECT value FROM store_meta WHERE key = 'store_id'").fetchone()
    except sqlite3.OperationalError:  # no such table
        return None
    return row[0] if row else None


def counts(conn: sqlite3.Connection) -> tuple[int, int]:
    projects = conn.execute("SELECT COUNT(*) FROM projects").fetchone()[0]
    runs = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    return projects, runs


def held(identity: dict[str, Any]) -> str:
    """'3 projects and 12 runs', as the identity file last recorded them."""
    return f"{identity.get('projects', '?')} projects and {identity.get('runs', '?')} runs"


def missing_message(db: Path, identity: dict[str, Any], what: str) -> str:
    return (
        f"the store database {db} {what}, but its identity file {identity_path(db)} says "
        f"it held {held(identity)}; restore the database from a backup, run "
        f"`workbench fsck --repair`, or move {db.parent} away to start a fresh store"
    )


# POSIX record locks belong to a process and a file: closing *any* descriptor of
# the database drops every lock this process's SQLite connections hold on it, and
# another process closing its last connection then deletes the WAL under them
# (their writes are lost to everyone else). So when this process has the
# database open already, the header is read through that descriptor (pread
# neither moves nor closes it); only otherwise is the file opened and closed.
def _read_header(db: Path) -> tuple[int, bytes]:
    st = os.stat(db)
    try:
        fds = os.listdir("/dev/fd")
    except OSError:
        fds = []
    for name in fds:
        try:
            fd = int(name)
            held = os.fstat(fd)
            if (held.st_dev, held.st_ino) == (st.st_dev, st.st_ino):
                return st.st_size, os.pread(fd, HEADER_BYTES, 0)
        except (OSError, ValueError):
            continue
    with open(db, "rb") as fh:
        return st.st_size, fh.read(HEADER_BYTES)


def header_problem(db: Path) -> str | None:
    """What is wrong with the database file's header, without opening it with SQLite:
    not a database at all, or shorter than the size its header records."""
    try:
        size, header = _read_header(db)
    except OSError:
        return None  # SQLite will say what is wrong
    if size == 0:
        return "is empty"
    if len(header) < HEADER_BYTES or not header.startswith(SQLITE_MAGIC):
        return "is not a SQLite database"
    page_size = struct.unpack(">H", header[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    change_counter, pages, valid_for = (
        struct.unpack(">I", header[24:28])[0],
        struct.unpack(">I", header[28:32])[0],
        struct.unpack(">I", header[92:96])[0],
    )
    if change_counter != valid_for or not pages:
        return None  # the header's page count is not reliable
    wal = db.with_name(db.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        # A checkpoint may be copying pages in right now; SQLite itself will
        # find a database that is really short.
        return None
    if size < pages * page_size:
        return f"is truncated ({size} bytes; its header says {pages * page_size})"
    return None
