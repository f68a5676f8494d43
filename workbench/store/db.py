"""Connections, pragmas and short write transactions.

Every process (CLI, supervisor, trainer, UI) opens its own connection through
`open_store`. Only a parent process migrates (`migrate=True`); children open
with `migrate=False` and refuse a store that is behind, so no child ever races
a schema change.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workbench import paths
from workbench.errors import StoreError
from workbench.store.schema import STEPS

BUSY_TIMEOUT_MS = 10_000


class Store:
    """One SQLite connection with the workbench's pragmas and helpers."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self.conn = conn
        self.journal_mode = self._enable_wal()

    @property
    def db(self) -> Any:
        """The same connection as a `sqlite_utils.Database`, imported on first use
        (sqlite-utils pulls in pandas, too slow for every process start)."""
        from sqlite_utils import Database

        return Database(self.conn, execute_plugins=False)

    def pending_migrations(self) -> list[str]:
        try:
            applied = {
                row[0]
                for row in self.conn.execute(
                    "SELECT name FROM _sqlite_migrations WHERE migration_set = 'workbench'"
                )
            }
        except sqlite3.OperationalError:  # no migrations table: a new store
            applied = set()
        return [name for name in STEPS if name not in applied]

    def _enable_wal(self) -> str:
        mode = self.conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            # Some filesystems (network mounts) cannot do WAL; SQLite stays on a
            # rollback journal, which is slower but correct. `doctor` reports it.
            mode = self.conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
        return str(mode).lower()

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A short `BEGIN IMMEDIATE` transaction: takes the write lock up front,
        so it waits on `busy_timeout` instead of failing halfway."""
        try:
            # Inside the try: an interrupt landing right after BEGIN must not
            # leave the transaction, and the write lock, held.
            self.conn.execute("BEGIN IMMEDIATE")
            yield self.conn
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    def rows(self, sql: str, params: tuple | dict = ()) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def row(self, sql: str, params: tuple | dict = ()) -> dict[str, Any] | None:
        found = self.rows(sql, params)
        return found[0] if found else None

    def scalar(self, sql: str, params: tuple | dict = ()) -> Any:
        found = self.conn.execute(sql, params).fetchone()
        return found[0] if found else None

    def add_event(
        self,
        kind: str,
        message: str,
        *,
        ts: float,
        project_id: int | None = None,
        run_id: int | None = None,
        data: dict | None = None,
    ) -> None:
        """Append to the activity log; call inside `write()`."""
        self.conn.execute(
            "INSERT INTO events (ts, kind, project_id, run_id, message, data)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (ts, kind, project_id, run_id, message, json.dumps(data) if data else None),
        )

    def close(self) -> None:
        self.conn.close()


def _connect(path: Path) -> sqlite3.Connection:
    try:
        # isolation_level=None: no implicit transactions; `Store.write` opens them.
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the store at {path}: {exc}") from exc
    return conn


def open_store(path: Path | None = None, *, migrate: bool = True) -> Store:
    """Open the store, applying pending migrations when `migrate` is true."""
    path = path or paths.db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    store = Store(path, _connect(path))
    if migrate:
        _migrate(store)
    elif store.pending_migrations():
        store.close()
        raise StoreError(
            f"the store at {path} has not been migrated; run any workbench command to upgrade it"
        )
    return store


def _migrate(store: Store) -> None:
    if not store.pending_migrations():
        return
    from workbench.store import migrations

    # Two parents starting on a fresh store must not both create the schema.
    lock_path = store.path.with_name(store.path.name + ".migrate.lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if store.pending_migrations():  # another process may have just done it
                migrations.apply(store.db)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot migrate the store at {store.path}: {exc}") from exc
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
