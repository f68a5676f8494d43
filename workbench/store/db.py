"""Connections, pragmas and short write transactions.

Every process (CLI, supervisor, trainer, UI) opens its own connection through
`open_store`. Only a parent process migrates (`migrate=True`); children open
with `migrate=False` and refuse a store that is behind, so no child ever races
a schema change.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workbench.core import env, paths
from workbench.core.errors import StoreDamagedError, StoreError, StoreVersionError
from workbench.store import events, identity
from workbench.store.schema import STEPS

BUSY_TIMEOUT_MS = 10_000
READ_ONLY_ENV = env.READ_ONLY  # set: open the store read-only
# How long a write waits for the write lock, retrying past busy_timeout. A
# command gives up after this with a clear error; long-lived writers (a
# supervisor, a run's tracking thread) set `Store.patience = math.inf`, so a
# lock held for a while by someone else delays them but never fails their run.
WRITE_PATIENCE_S = 60.0


class Store:
    """One SQLite connection with the workbench's pragmas and helpers."""

    patience: float = WRITE_PATIENCE_S  # seconds a write waits for the lock

    def __init__(self, path: Path, conn: sqlite3.Connection, readonly: bool = False) -> None:
        self.path = path
        self.conn = conn
        # Read-only: opened with `mode=ro` (the file or its folder is not writable,
        # or WORKBENCH_READ_ONLY is set); listing works, writing raises.
        self.readonly = readonly
        self.journal_mode = (
            str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
            if readonly
            else self._enable_wal()
        )

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
    def write(self, patience: float | None = None) -> Iterator[sqlite3.Connection]:
        """A short `BEGIN IMMEDIATE` transaction: takes the write lock up front,
        so it waits for the lock instead of failing halfway. It waits up to
        `patience` seconds (default: `self.patience`), retrying with backoff
        while another process holds the lock; then raises StoreError."""
        patience = self.patience if patience is None else patience
        try:
            # Inside the try: an interrupt landing right after BEGIN must not
            # leave the transaction, and the write lock, held.
            self._retry_busy("BEGIN IMMEDIATE", patience)
            yield self.conn
            # Only a rollback journal can find COMMIT busy (readers hold SHARED
            # locks); the transaction stays open and COMMIT can be retried.
            self._retry_busy("COMMIT", patience)
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    def _retry_busy(self, statement: str, patience: float) -> None:
        deadline = time.monotonic() + patience
        short = patience * 1000 < BUSY_TIMEOUT_MS
        if short:  # each try waits busy_timeout inside SQLite: shorten it
            self.conn.execute(f"PRAGMA busy_timeout={max(0, int(patience * 1000))}")
        delay, told = 0.01, False
        try:
            while True:
                try:
                    self.conn.execute(statement)
                    return
                except sqlite3.OperationalError as exc:
                    left = deadline - time.monotonic()
                    if not is_busy(exc):
                        raise
                    if left <= 0:
                        raise StoreError(
                            f"the store at {self.path} is busy: another process has held"
                            f" its write lock for over {patience:g} s"
                        ) from exc
                    if not told and patience > BUSY_TIMEOUT_MS / 1000:
                        told = True
                        print(
                            "workbench: the store is locked by another process; waiting",
                            file=sys.stderr,
                            flush=True,
                        )
                    time.sleep(min(delay, left))
                    delay = min(delay * 2, 1.0)
        finally:
            if short:
                self.conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

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
        events.add_event(
            self.conn, kind, message, ts=ts, project_id=project_id, run_id=run_id, data=data
        )

    def close(self) -> None:
        self.conn.close()


def is_busy(exc: BaseException) -> bool:
    """Whether an SQLite error means "locked by someone else, try again"."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def _connect(path: Path, *, readonly: bool = False, create: bool = True) -> sqlite3.Connection:
    """A connection with the workbench's pragmas; `create=False` never makes a new file."""
    mode = "ro" if readonly else ("rwc" if create else "rw")
    uri = f"file:{urllib.parse.quote(str(path))}?mode={mode}"
    try:
        # isolation_level=None: no implicit transactions; `Store.write` opens them.
        conn = sqlite3.connect(
            uri,
            uri=True,
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        if readonly:
            conn = _readable(conn, path)
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys=ON")
        if not readonly:
            conn.execute("PRAGMA synchronous=NORMAL")
    except sqlite3.OperationalError as exc:
        raise StoreError(f"cannot open the store at {path}: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        raise StoreDamagedError(path, exc) from exc
    return conn


def _readable(conn: sqlite3.Connection, path: Path) -> sqlite3.Connection:
    """A WAL database in a folder nobody may write cannot make its shared-memory
    file, and `mode=ro` then fails on the first read; nothing can change such a
    database either, so it is opened as immutable instead."""
    try:
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:
        conn.close()
    uri = f"file:{urllib.parse.quote(str(path))}?mode=ro&immutable=1"
    return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)


def _writable(path: Path) -> bool:
    if os.environ.get(READ_ONLY_ENV, "") not in ("", "0"):
        return False
    folder_ok = os.access(path.parent, os.W_OK)
    return folder_ok and (not path.exists() or os.access(path, os.W_OK))


def open_store(path: Path | None = None, *, migrate: bool = True) -> Store:
    """Open the store, applying pending migrations when `migrate` is true.

    The database must match its identity file (see `workbench.store.identity`):
    one that is missing, emptied, truncated or another store's is an error, never
    a fresh empty store. A store this workbench cannot write (a read-only folder
    or filesystem, or WORKBENCH_READ_ONLY=1) is opened read-only.
    """
    path = path or paths.db_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    known = identity.read_identity(path)
    exists = path.exists()
    problem = identity.header_problem(path) if exists else "is missing"
    # Without an identity file, a missing or empty file is simply a new store.
    fresh = problem in ("is missing", "is empty") and known is None
    if problem and not fresh:
        raise StoreError(
            identity.missing_message(path, known, problem)
            if known
            else f"the store database {path} {problem}; run `workbench fsck` for details"
        )
    if not exists and not migrate:
        raise StoreError(
            f"the store at {path} has not been created and migrated yet;"
            " run any workbench command to set it up"
        )
    readonly = not _writable(path)
    if readonly and not exists:
        raise StoreError(f"cannot create the store at {path}: its folder is not writable")
    try:
        store = _open(path, readonly=readonly, create=migrate)
    except StoreError as exc:
        if readonly or not exists or not migrate or not _cannot_write(exc):
            raise
        # A full disk (or a store that turned read-only) still lets a command read.
        store = _open(path, readonly=True, create=False)
        print(
            f"workbench: the store cannot be written ({exc.__cause__}; is the disk full?);"
            " opened it read-only",
            file=sys.stderr,
        )
        readonly = True
    try:
        _check_version(store)
        if migrate and not readonly:
            _migrate(store)
        elif store.pending_migrations():
            raise StoreError(
                f"the store at {path} has not been migrated;"
                + (
                    " it is read-only, so this workbench cannot upgrade it"
                    if readonly
                    else " run any workbench command to upgrade it"
                )
            )
        _check_identity(store, known, adopt=migrate and not readonly)
        if not exists:
            with contextlib.suppress(OSError):
                os.chmod(path, 0o600)
    except sqlite3.DatabaseError as exc:
        store.close()
        if isinstance(exc, sqlite3.OperationalError) and not is_damage(exc):
            raise StoreError(f"cannot open the store at {path}: {exc}") from exc
        raise StoreDamagedError(path, exc) from exc
    except BaseException:
        store.close()
        raise
    return store


def _open(path: Path, *, readonly: bool, create: bool) -> Store:
    conn = _connect(path, readonly=readonly, create=create)
    try:
        return Store(path, conn, readonly=readonly)
    except sqlite3.OperationalError as exc:
        conn.close()
        raise StoreError(f"cannot open the store at {path}: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreDamagedError(path, exc) from exc


def _cannot_write(exc: StoreError) -> bool:
    text = str(exc.__cause__ or "").lower()
    return any(
        reason in text for reason in ("disk i/o error", "disk is full", "readonly", "read-only")
    )


def is_damage(exc: sqlite3.Error) -> bool:
    """Whether SQLite's error means the file is damaged, not merely busy or unwritable."""
    text = str(exc).lower()
    return (
        not isinstance(exc, sqlite3.OperationalError)
        or "malformed" in text
        or ("not a database" in text)
    )


def _check_version(store: Store) -> None:
    try:
        applied = [
            row[0]
            for row in store.conn.execute(
                "SELECT name FROM _sqlite_migrations WHERE migration_set = 'workbench'"
            )
        ]
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return  # a new store
        raise
    unknown = [name for name in applied if name not in STEPS]
    if unknown:
        raise StoreVersionError(
            f"the store at {store.path} was written by a newer workbench (schema version"
            f" {len(applied)}; this workbench knows version {len(STEPS)}, and not"
            f" {', '.join(unknown[:3])}); upgrade workbench to use this store"
        )


def _check_identity(store: Store, known: dict[str, Any] | None, *, adopt: bool) -> None:
    """The database's id must be the identity file's; a parent process writes
    the identity file (with the current counts) when it is missing or stale."""
    recorded = identity.database_id(store.conn)
    if known is not None and recorded != known["store_id"]:
        what = f"store {recorded}" if recorded else "a store without an id"
        raise StoreError(
            f"the store database {store.path} belongs to {what}, but its identity file"
            f" {identity.identity_path(store.path)} names store {known['store_id']}, which held"
            f" {identity.held(known)}: the database was replaced; put the right one back, or run"
            " `workbench fsck --repair` to adopt this one"
        )
    if not adopt or recorded is None:
        return
    projects, runs = identity.counts(store.conn)
    if known is None or (known.get("projects"), known.get("runs")) != (projects, runs):
        # A full disk must not stop a command that only reads.
        with contextlib.suppress(OSError):
            identity.write_identity(store.path, recorded, projects, runs)


def _migrate(store: Store) -> None:
    if not store.pending_migrations():
        return
    from workbench.store import migrations

    # Two parents starting on a fresh store must not both create the schema.
    lock_path = store.path.with_name(store.path.name + ".migrate.lock")
    # Not core.files.exclusive_lock: the lock file is created owner-only (0o600).
    with open(os.open(lock_path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            pending = store.pending_migrations()  # another process may have just done it
            # A store made by an earlier version (not a new one) may take a while to
            # upgrade (packing millions of metric points): say so, and how long it took.
            upgrading = bool(pending) and len(pending) < len(STEPS)
            if upgrading:
                print(
                    f"upgrading the store at {store.path} ({', '.join(pending)})…",
                    file=sys.stderr,
                    flush=True,
                )
            started = time.monotonic()
            if pending:
                migrations.apply(store.conn)
            if upgrading:
                print(f"store upgraded in {time.monotonic() - started:.1f} s", file=sys.stderr)
        except sqlite3.OperationalError as exc:
            raise StoreError(f"cannot migrate the store at {store.path}: {exc}") from exc
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
