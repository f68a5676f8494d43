"""The SQLite store: pragmas, migrations, transactions and concurrent processes."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from workbench.core import paths
from workbench.core.errors import StoreError
from workbench.store import Store, open_store
from workbench.store.metrics import series
from workbench.store.migrations import statements
from workbench.store.schema import STEPS

TABLES = {"projects", "runs", "params", "metric_chunks", "resource_samples", "artifacts", "events"}


def tables(store) -> set[str]:
    return {r["name"] for r in store.rows("SELECT name FROM sqlite_master WHERE type = 'table'")}


def applied_migrations(store) -> list[str]:
    return [
        r["name"]
        for r in store.rows(
            "SELECT name FROM _sqlite_migrations WHERE migration_set = 'workbench' ORDER BY id"
        )
    ]


def add_project_and_run(store) -> int:
    with store.write() as conn:
        project = conn.execute(
            "INSERT INTO projects (name, path, created_at) VALUES ('p', '/p', 0)"
        ).lastrowid
        return conn.execute(
            "INSERT INTO runs (project_id, status, trainer, created_at)"
            " VALUES (?, 'running', 'lightgbm', 0)",
            (project,),
        ).lastrowid


# --- opening ---------------------------------------------------------------------


def test_a_fresh_store_is_ready_to_use(wb_home):
    store = open_store()
    try:
        assert store.path == wb_home / "workbench.db"
        assert store.path.is_file()
        assert store.journal_mode == "wal"
        assert store.scalar("PRAGMA journal_mode") == "wal"
        assert store.scalar("PRAGMA busy_timeout") >= 1000
        assert store.scalar("PRAGMA foreign_keys") == 1
        assert tables(store) >= TABLES
        assert store.pending_migrations() == []
        assert applied_migrations(store) == list(STEPS)
    finally:
        store.close()


def test_foreign_keys_are_enforced():
    store = open_store()
    try:
        with pytest.raises(sqlite3.IntegrityError), store.write() as conn:
            conn.execute(
                "INSERT INTO runs (project_id, status, trainer, created_at)"
                " VALUES (999, 'queued', 'lightgbm', 0)"
            )
        assert store.scalar("SELECT COUNT(*) FROM runs") == 0
    finally:
        store.close()


def test_opening_twice_applies_nothing_twice():
    first = open_store()
    run_id = add_project_and_run(first)
    first.close()

    second = open_store()
    try:
        assert applied_migrations(second) == list(STEPS)
        assert second.scalar("SELECT COUNT(*) FROM _sqlite_migrations") == len(STEPS)
        assert second.scalar("SELECT id FROM runs") == run_id  # the data is still there
        assert second.pending_migrations() == []
    finally:
        second.close()


def test_children_refuse_a_store_that_was_never_migrated(wb_home):
    with pytest.raises(StoreError) as caught:
        open_store(migrate=False)

    assert str(paths.db_path()) in caught.value.message
    assert "migrated" in caught.value.message


def test_children_open_a_migrated_store_without_migrating():
    open_store().close()

    store = open_store(migrate=False)
    try:
        assert store.pending_migrations() == []
        assert store.scalar("PRAGMA foreign_keys") == 1
    finally:
        store.close()


def test_a_store_at_an_explicit_path(tmp_path):
    store = open_store(tmp_path / "elsewhere" / "my.db")
    try:
        assert store.path.is_file()
        assert tables(store) >= TABLES
    finally:
        store.close()


# --- transactions -------------------------------------------------------------------


def test_write_commits_for_every_connection():
    writer, reader = open_store(), open_store()
    try:
        add_project_and_run(writer)
        assert reader.scalar("SELECT COUNT(*) FROM runs") == 1
    finally:
        writer.close()
        reader.close()


def test_write_rolls_back_when_the_block_raises():
    store = open_store()
    try:
        with pytest.raises(RuntimeError, match="halfway"), store.write() as conn:
            conn.execute("INSERT INTO projects (name, path, created_at) VALUES ('a', '/a', 0)")
            raise RuntimeError("halfway")
        assert store.scalar("SELECT COUNT(*) FROM projects") == 0
        assert not store.conn.in_transaction

        # the connection is still usable for the next transaction
        add_project_and_run(store)
        assert store.scalar("SELECT COUNT(*) FROM projects") == 1
    finally:
        store.close()


def test_write_rolls_back_earlier_statements_when_a_later_one_fails():
    store = open_store()
    try:
        with pytest.raises(sqlite3.IntegrityError), store.write() as conn:
            conn.execute("INSERT INTO projects (name, path, created_at) VALUES ('a', '/a', 0)")
            conn.execute("INSERT INTO projects (name, path, created_at) VALUES ('a', '/b', 0)")
        assert store.scalar("SELECT COUNT(*) FROM projects") == 0
    finally:
        store.close()


class _InterruptAfterBegin:
    """A connection on which Ctrl-C (or any signal handler that raises) lands
    right after BEGIN IMMEDIATE returns: the first point where Python runs it."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.armed = False

    def execute(self, sql: str, *args):
        cursor = self._conn.execute(sql, *args)
        if self.armed and sql.strip().upper().startswith("BEGIN"):
            self.armed = False
            raise KeyboardInterrupt
        return cursor

    def __getattr__(self, name: str):
        return getattr(self._conn, name)


def test_an_interrupt_right_after_begin_leaves_no_transaction_open():
    # A notebook user pressing Ctrl-C during a flush must not leave the store's
    # write lock held by their kernel, blocking every other writer.
    open_store().close()
    raw = sqlite3.connect(paths.db_path(), isolation_level=None, timeout=10)
    conn = _InterruptAfterBegin(raw)
    store = Store(paths.db_path(), conn)
    other = open_store()
    try:
        conn.armed = True
        with pytest.raises(KeyboardInterrupt), store.write() as c:
            c.execute("INSERT INTO projects (name, path, created_at) VALUES ('a', '/a', 0)")

        assert not raw.in_transaction
        raw.execute("PRAGMA busy_timeout=100")
        other.conn.execute("PRAGMA busy_timeout=100")
        add_project_and_run(other)  # would fail with "database is locked"
        with store.write() as c:  # and this connection can write again
            c.execute("INSERT INTO projects (name, path, created_at) VALUES ('b', '/b', 0)")
        assert other.scalar("SELECT COUNT(*) FROM projects") == 2
    finally:
        other.close()
        raw.close()


def test_rows_row_and_scalar_helpers():
    store = open_store()
    try:
        add_project_and_run(store)
        assert store.rows("SELECT name, path FROM projects") == [{"name": "p", "path": "/p"}]
        assert store.row("SELECT name FROM projects WHERE name = ?", ("nope",)) is None
        assert store.scalar("SELECT name FROM projects WHERE name = ?", ("nope",)) is None
    finally:
        store.close()


# --- splitting migration scripts -------------------------------------------------------


def test_statements_ignores_semicolons_in_comments_and_strings():
    script = textwrap.dedent("""\
        -- first; a comment with semicolons; in it
        CREATE TABLE a (
            x TEXT DEFAULT 'semi;colon',  -- trailing; comment
            y INTEGER /* block; comment */
        );
        /* a block comment; alone */
        CREATE TABLE b (z INTEGER);
        CREATE TRIGGER a_insert AFTER INSERT ON a BEGIN
            INSERT INTO b (z) VALUES (1);
        END;
        """)

    found = statements(script)

    assert len(found) == 3
    assert found[0].endswith(");") and "CREATE TABLE a" in found[0]
    assert "CREATE TABLE b" in found[1]
    assert found[2].startswith("CREATE TRIGGER") and found[2].endswith("END;")
    conn = sqlite3.connect(":memory:")
    for statement in found:  # each is one statement that SQLite accepts on its own
        conn.execute(statement)
    conn.execute("INSERT INTO a (y) VALUES (2)")
    assert conn.execute("SELECT x FROM a").fetchone() == ("semi;colon",)
    assert conn.execute("SELECT z FROM b").fetchone() == (1,)


def test_statements_splits_statements_that_share_a_line():
    found = statements("CREATE TABLE a (x); CREATE TABLE b (y);\n")

    assert len(found) == 2
    conn = sqlite3.connect(":memory:")
    for statement in found:
        conn.execute(statement)


def test_statements_refuses_an_unfinished_statement():
    with pytest.raises(ValueError, match="incomplete"):
        statements("CREATE TABLE a (x);\nCREATE TABLE b (y)\n")


def test_every_schema_step_splits_into_executable_statements():
    conn = sqlite3.connect(":memory:")
    for script in STEPS.values():
        for statement in statements(script):
            conn.execute(statement)
    found = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert found >= TABLES


# --- several processes at once -----------------------------------------------------------

# Each child says "ready", waits for the parent to create the go file, then works.
_BARRIER = """
import pathlib, sys, time
go = pathlib.Path(sys.argv[1])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
"""


def run_together(tmp_path: Path, body: str, n: int, timeout: float = 60) -> list[tuple]:
    """Start `n` Python processes running `body`, release them at the same moment,
    and return (returncode, stdout, stderr) for each."""
    go = tmp_path / "go"
    script = _BARRIER + textwrap.dedent(body)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready"
        go.touch()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            results.append((proc.returncode, out, err))
        return results
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def test_processes_migrating_a_fresh_store_at_once_all_succeed(tmp_path):
    results = run_together(
        tmp_path,
        """
        from workbench.store import open_store
        store = open_store()
        print(len(store.pending_migrations()))
        store.close()
    """,
        n=4,
    )

    for returncode, out, err in results:
        assert returncode == 0, err
        assert out.split() == ["0"]
    store = open_store(migrate=False)
    try:
        assert applied_migrations(store) == list(STEPS)
        assert tables(store) >= TABLES
    finally:
        store.close()


def test_concurrent_writers_never_see_a_locked_database(tmp_path):
    store = open_store()
    run_id = add_project_and_run(store)
    rows_each = 500

    # All four append to the same series, one point per transaction, so the
    # point numbering is contended too.
    results = run_together(
        tmp_path,
        f"""
        import time
        from workbench.store import open_store
        from workbench.store.metrics import append_points
        store = open_store(migrate=False)
        for i in range({rows_each}):
            with store.write() as conn:
                append_points(conn, {run_id}, {{"loss": [(i, time.time(), i / 10)]}})
        store.close()
        print("done")
    """,
        n=4,
        timeout=120,
    )

    for returncode, out, err in results:
        assert returncode == 0, err
        assert "locked" not in err
        assert out.split() == ["done"]
    try:
        loss = series(store.conn, run_id, "loss", max_points=10_000)
        assert loss["count"] == 4 * rows_each
        assert len(loss["points"]) == 4 * rows_each
        steps = sorted(p["x"] for p in loss["points"])
        assert steps == sorted(list(range(rows_each)) * 4)
    finally:
        store.close()


def test_a_reader_sees_the_last_committed_state_while_a_write_is_open():
    writer, reader = open_store(), open_store()
    try:
        add_project_and_run(writer)
        with writer.write() as conn:
            conn.execute("INSERT INTO projects (name, path, created_at) VALUES ('q', '/q', 0)")
            assert reader.scalar("SELECT COUNT(*) FROM projects") == 1
        assert reader.scalar("SELECT COUNT(*) FROM projects") == 2
    finally:
        writer.close()
        reader.close()


# --- identity and the file's header -------------------------------------------------------


def test_the_identity_file_sits_beside_the_database(tmp_path):
    from workbench.store.identity import identity_path

    assert identity_path(tmp_path / "workbench.db") == tmp_path / "store.json"
    assert identity_path(tmp_path / "my.db") == tmp_path / "my.db.store.json"
    store = open_store(tmp_path / "my.db")
    store.close()
    assert (tmp_path / "my.db.store.json").is_file()


def test_header_problem_reads_only_the_header(tmp_path):
    from workbench.store.identity import header_problem

    db = tmp_path / "x.db"
    open_store(db).close()
    assert header_problem(db) is None
    size = db.stat().st_size
    os.truncate(db, size - 4096)
    assert header_problem(db) == f"is truncated ({size - 4096} bytes; its header says {size})"
    db.write_bytes(b"")
    assert header_problem(db) == "is empty"
    db.write_bytes(b"SQLite format 2\x00" + bytes(200))
    assert header_problem(db) == "is not a SQLite database"


def test_a_child_never_creates_a_store(wb_home):
    with pytest.raises(StoreError, match="not been created"):
        open_store(migrate=False)
    assert not paths.db_path().exists()


def test_every_step_is_known_and_the_store_records_its_id():
    assert "m007_store_meta" in STEPS
    store = open_store()
    try:
        store_id = store.scalar("SELECT value FROM store_meta WHERE key = 'store_id'")
        assert len(store_id) == 32 and int(store_id, 16) >= 0
        assert not store.readonly
    finally:
        store.close()


# --- tailing logs ----------------------------------------------------------------------------


def test_tail_start_counts_lines_back_across_files(tmp_path):
    from workbench.runs.logs import read_from, tail_start

    older, newer = tmp_path / "log.1", tmp_path / "log"
    older.write_bytes(b"a\nb\nc\n")
    newer.write_bytes(b"d\ne\n")
    files = [older, newer]

    def tail(n: int) -> bytes:
        return b"".join(read_from(files, *tail_start(files, n)))

    assert tail(1) == b"e\n"
    assert tail(2) == b"d\ne\n"
    assert tail(3) == b"c\nd\ne\n"
    assert tail(5) == tail(50) == b"a\nb\nc\nd\ne\n"
    assert tail(0) == b""
    newer.write_bytes(b"")
    assert tail(1) == b"c\n"
    assert tail_start([], 3) == (0, 0)


def test_tail_start_finds_lines_longer_than_a_block(tmp_path):
    from workbench.runs.logs import CHUNK, read_from, tail_start

    log = tmp_path / "log"
    long_line = b"y" * (3 * CHUNK + 7) + b"\n"
    log.write_bytes(b"first\n" + long_line + b"last")
    assert b"".join(read_from([log], *tail_start([log], 2))) == long_line + b"last"
