"""`workbench fsck`: check the store end to end, and repair what can be repaired.

Checks: the identity file against the database, SQLite's integrity check, the
schema version, runs stuck as running whose supervisor is gone, run logs and
model files that are missing, and artifact files nothing refers to (or that
are referred to but gone).

Repairs never work in place: a damaged database is recovered into a NEW file
(SQLite's own `.recover` when the `sqlite3` program is installed, else a
row-by-row salvage in Python), which is checked, and only then swapped in,
the old file kept beside it as a backup.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import sqlite3
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.core import paths
from workbench.core.errors import StoreError
from workbench.core.files import exclusive_lock
from workbench.store import identity
from workbench.store import runs as run_store
from workbench.store.runs import Run
from workbench.store.schema import STEPS

MAX_PROBES = 1_000_000  # rowids tried one by one past a damaged page
ORPHAN_MIN_AGE_S = 3600.0  # younger files may be an artifact being written right now
_SHA256 = re.compile(r"[0-9a-f]{64}")


# Whether a running run's owner is gone: the runs layer knows processes; the
# store does not, so whoever calls fsck passes it (see workbench.runs.liveness).
OwnerGone = Callable[[Run], bool]


def check(db: Path | None = None, *, owner_gone: OwnerGone) -> dict[str, Any]:
    """Every check, as one document; `problems` holds one line per finding.
    `owner_gone` tells a run marked running whose owner is gone (stuck)."""
    db = db or paths.db_path()
    report: dict[str, Any] = {
        "database": str(db),
        "identity_file": str(identity.identity_path(db)),
        "store_id": None,
        "integrity": None,
        "schema": None,
        "stuck_runs": [],
        "missing_logs": [],
        "missing_artifacts": [],
        "missing_models": [],
        "orphan_artifacts": [],
        "exposed": [],
        "problems": [],
        "repairs": [],
    }
    problems = report["problems"]
    try:
        known = identity.read_identity(db)
    except StoreError as exc:
        known = None
        report["identity_problem"] = "damaged"
        problems.append(exc.message)
    report["exposed"] = exposed = _exposed(db.parent)
    if exposed:
        problems.append(
            f"{len(exposed)} file(s) or folder(s) in {db.parent} can be read by other users"
            f" (e.g. {exposed[0]}); `workbench fsck --repair` makes them private"
        )
    header = identity.header_problem(db) if db.exists() else "is missing"
    if header:
        report["database_problem"] = header
        if known or header not in ("is missing", "is empty"):
            problems.append(
                identity.missing_message(db, known, header)
                if known
                else f"the store database {db} {header}"
            )
        if header in ("is missing", "is empty"):
            report["ok"] = not problems
            return report
    conn = _open_readonly(db)
    try:
        report["integrity"] = _integrity(conn)
        if report["integrity"] != ["ok"]:
            problems.append(
                f"integrity check failed: {report['integrity'][0]}"
                + (
                    f" (and {len(report['integrity']) - 1} more)"
                    if len(report["integrity"]) > 1
                    else ""
                )
            )
        with contextlib.suppress(sqlite3.DatabaseError):
            report["store_id"] = identity.database_id(conn)
        if known and report["store_id"] != known["store_id"]:
            report["identity_problem"] = "mismatch"
            problems.append(
                f"the database belongs to store {report['store_id']}, but the identity file"
                f" names store {known['store_id']} (which held {identity.held(known)})"
            )
        _schema(conn, report)
        _contents(conn, db, report, owner_gone)
    finally:
        conn.close()
    report["ok"] = not problems
    return report


def _exposed(home: Path) -> list[str]:
    """Files and folders of the store that others may read (group or other bits).
    Inside a store folder only its owner may enter, nothing is reachable."""
    try:
        if not stat.S_IMODE(home.stat().st_mode) & 0o077:
            return []
    except OSError:
        return []
    found = []
    for path in [home, *sorted(home.rglob("*"))]:
        try:
            mode = path.lstat().st_mode
        except OSError:
            continue
        if not stat.S_ISLNK(mode) and stat.S_IMODE(mode) & 0o077:
            found.append(str(path))
    return found


def _open_readonly(db: Path) -> sqlite3.Connection:
    from workbench.store.db import _connect

    return _connect(db, readonly=True, create=False)


def _integrity(conn: sqlite3.Connection) -> list[str]:
    try:
        return [row[0] for row in conn.execute("PRAGMA integrity_check(100)")]
    except sqlite3.DatabaseError as exc:
        return [str(exc)]


def _schema(conn: sqlite3.Connection, report: dict[str, Any]) -> None:
    try:
        applied = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM _sqlite_migrations WHERE migration_set = 'workbench'"
            )
        ]
    except sqlite3.DatabaseError as exc:
        report["schema"] = {"problem": str(exc)}
        report["problems"].append(f"cannot read the schema version: {exc}")
        return
    unknown = [n for n in applied if n not in STEPS]
    report["schema"] = {"applied": len(applied), "known": len(STEPS), "unknown": unknown}
    if unknown:
        report["problems"].append(
            f"the store was written by a newer workbench (schema version {len(applied)};"
            f" this workbench knows version {len(STEPS)})"
        )


def _contents(
    conn: sqlite3.Connection, db: Path, report: dict[str, Any], owner_gone: OwnerGone
) -> None:
    """Runs, logs and artifact files; each part skipped (and said) if unreadable."""
    problems = report["problems"]
    try:
        _runs(conn, db, report, owner_gone)
    except sqlite3.DatabaseError as exc:
        problems.append(f"cannot read the runs: {exc}")
    try:
        _artifacts(conn, report)
    except sqlite3.DatabaseError as exc:
        problems.append(f"cannot read the artifacts: {exc}")


def _runs(
    conn: sqlite3.Connection, db: Path, report: dict[str, Any], owner_gone: OwnerGone
) -> None:
    from workbench.store.db import Store

    view = Store.__new__(Store)  # read-only helpers over this connection, no pragmas
    view.path, view.conn, view.readonly = db, conn, True
    stuck = [run.id for run in run_store.running(view) if owner_gone(run)]
    report["stuck_runs"] = stuck
    if stuck:
        report["problems"].append(
            f"{len(stuck)} run(s) marked running whose supervisor is gone: "
            + ", ".join(map(str, stuck[:10]))
        )
    here = socket.gethostname()
    missing = [
        rid
        for rid, host in conn.execute(
            "SELECT id, hostname FROM runs WHERE supervisor_pid IS NOT NULL AND status != 'queued'"
        )
        if (not host or host == here)
        and not paths.run_log(rid).exists()
        and not paths.rotated_run_log(rid).exists()
    ]
    report["missing_logs"] = missing
    if missing:
        report["problems"].append(
            f"{len(missing)} run log(s) missing: runs " + ", ".join(map(str, missing[:10]))
        )


def _artifacts(conn: sqlite3.Connection, report: dict[str, Any]) -> None:
    referenced: dict[str, dict[str, Any]] = {}
    for run_id, name, sha in conn.execute("SELECT run_id, name, sha256 FROM artifacts"):
        referenced.setdefault(sha, {"run_id": run_id, "name": name, "sha256": sha})
    models = []
    with contextlib.suppress(sqlite3.OperationalError):  # a store before the registry
        models = conn.execute(
            "SELECT p.name, v.version, v.model_sha256 FROM model_versions v"
            " JOIN projects p ON p.id = v.project_id"
        ).fetchall()
    missing = [ref for sha, ref in referenced.items() if not paths.artifact_file(sha).exists()]
    report["missing_artifacts"] = missing
    report["missing_models"] = [
        {"project": project, "version": version, "sha256": sha}
        for project, version, sha in models
        if not paths.artifact_file(sha).exists()
    ]
    known = set(referenced) | {sha for _, _, sha in models}
    orphans = []
    folder = paths.artifacts_dir()
    if folder.is_dir():
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not (_SHA256.fullmatch(path.name) and path.name in known):
                orphans.append(str(path))
    report["orphan_artifacts"] = orphans
    problems = report["problems"]
    if missing:
        problems.append(
            f"{len(missing)} artifact file(s) missing: "
            + ", ".join(f"run {m['run_id']} {m['name']}" for m in missing[:5])
        )
    if report["missing_models"]:
        problems.append(
            f"{len(report['missing_models'])} model file(s) missing: "
            + ", ".join(f"{m['project']}@{m['version']}" for m in report["missing_models"][:5])
        )
    if orphans:
        problems.append(f"{len(orphans)} file(s) in {folder} that no run refers to")


# --- repair -----------------------------------------------------------------------


def repair(
    db: Path | None = None, *, owner_gone: OwnerGone, use_cli: bool = True
) -> dict[str, Any]:
    """Repair what `check` finds, then check again; returns the second report
    with `repairs` saying what was done and `problems` what is left."""
    db = db or paths.db_path()
    first = check(db, owner_gone=owner_gone)
    done: list[str] = []
    stamp = time.strftime("%Y%m%d-%H%M%S")
    if (first["schema"] or {}).get("unknown"):
        raise StoreError(
            f"the store at {db} was written by a newer workbench; upgrade workbench to repair it"
        )
    done.append(_make_private(first))
    header = first.get("database_problem")
    if header in ("is missing", "is empty"):
        if identity.identity_path(db).exists():  # a store was here: begin a new one
            done.append(_start_fresh(db, stamp))
    else:
        damaged = header is not None or first["integrity"] != ["ok"]
        if damaged:
            done.append(_recover_and_swap(db, stamp, use_cli=use_cli))
        if first.get("identity_problem") or damaged:
            done.append(_adopt_identity(db, stamp))
        done += _repair_contents(db, first, owner_gone)
    second = check(db, owner_gone=owner_gone)
    second["repairs"] = [d for d in done if d]
    return second


def _start_fresh(db: Path, stamp: str) -> str:
    from workbench.store.db import open_store

    old = identity.identity_path(db)
    kept = old.with_name(f"{old.name}.orphaned-{stamp}")
    os.replace(old, kept)
    if db.exists():  # an empty file
        os.replace(db, db.with_name(f"{db.name}.empty-{stamp}"))
    open_store(db).close()
    return f"started a new, empty store; the old identity file is kept as {kept}"


def _adopt_identity(db: Path, stamp: str) -> str:
    old = identity.identity_path(db)
    conn = _open_readonly(db)
    try:
        store_id = identity.database_id(conn)
        projects, runs = identity.counts(conn)
    finally:
        conn.close()
    if store_id is None:
        return ""
    if old.exists():
        with contextlib.suppress(StoreError):
            if (identity.read_identity(db) or {}).get("store_id") == store_id:
                identity.write_identity(db, store_id, projects, runs)
                return ""
        shutil.copy2(old, old.with_name(f"{old.name}.replaced-{stamp}"))
    identity.write_identity(db, store_id, projects, runs)
    return f"the identity file now names the database's store {store_id}"


def _make_private(report: dict[str, Any]) -> str:
    private = 0
    for name in report["exposed"]:
        with contextlib.suppress(OSError):
            path = Path(name)
            os.chmod(path, stat.S_IMODE(path.lstat().st_mode) & 0o700)
            private += 1
    return f"made {private} file(s) and folder(s) private to their owner" if private else ""


def _repair_contents(db: Path, report: dict[str, Any], owner_gone: OwnerGone) -> list[str]:
    done = []
    if report["stuck_runs"]:
        from workbench.store.db import open_store

        store = open_store(db)
        try:
            marked = sum(
                run_store.mark_lost(store, run)
                for run in run_store.running(store)
                if owner_gone(run)
            )
        finally:
            store.close()
        if marked:
            done.append(f"marked {marked} run(s) lost: their supervisor is gone")
    moved = 0
    target = paths.lost_and_found_dir() / "artifacts"
    for name in report["orphan_artifacts"]:
        path = Path(name)
        try:
            if time.time() - path.stat().st_mtime < ORPHAN_MIN_AGE_S:
                continue  # perhaps being written by a run right now
            target.mkdir(parents=True, exist_ok=True)
            os.replace(path, target / path.name)
            moved += 1
        except OSError:
            continue
    if moved:
        done.append(f"moved {moved} unreferenced artifact file(s) to {target}")
    return done


def _recover_and_swap(db: Path, stamp: str, *, use_cli: bool) -> str:
    others = _other_users(db)
    if others:
        raise StoreError(
            f"processes {', '.join(map(str, others))} have the store open; stop them"
            " (`workbench run stop`, `workbench watch stop`) before repairing it"
        )
    new = db.with_name(f"{db.name}.recovered-{stamp}")
    method = _recover(db, new, use_cli=use_cli)
    conn = sqlite3.connect(new)
    try:
        verdict = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if verdict == "ok":
            conn.execute("SELECT COUNT(*) FROM runs").fetchone()
    except sqlite3.DatabaseError as exc:
        verdict = str(exc)
    finally:
        conn.close()
    if verdict == "ok":
        _keep_store_id(db, new)
    if verdict != "ok":
        raise StoreError(
            f"the recovered copy {new} is not sound either ({verdict}); the store was not"
            " changed: restore it from a backup"
        )
    os.chmod(new, 0o600)
    backup = db.with_name(f"{db.name}.damaged-{stamp}")
    lock_path = db.with_name(db.name + ".migrate.lock")
    with exclusive_lock(lock_path):
        os.replace(db, backup)
        for suffix in ("-wal", "-shm"):
            side = db.with_name(db.name + suffix)
            if side.exists():
                os.replace(side, backup.with_name(backup.name + suffix))
        os.replace(new, db)
    return f"recovered the database ({method}) into a new file; the damaged one is kept as {backup}"


def _keep_store_id(db: Path, new: Path) -> None:
    """A recovery that lost the store's id gets it back from the identity file."""
    with contextlib.suppress(StoreError):
        known = identity.read_identity(db)
        conn = sqlite3.connect(new, isolation_level=None)
        try:
            if known and identity.database_id(conn) is None:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS store_meta"
                    " (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID"
                )
                conn.execute(
                    "INSERT OR REPLACE INTO store_meta (key, value) VALUES ('store_id', ?)",
                    (known["store_id"],),
                )
        finally:
            conn.close()


def _recover(db: Path, new: Path, *, use_cli: bool) -> str:
    for stale in (new, new.with_name(new.name + "-journal")):
        stale.unlink(missing_ok=True)
    program = shutil.which("sqlite3") if use_cli else None
    if program:
        with subprocess.Popen(
            [program, "-readonly", str(db), ".recover"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        ) as dump:
            load = subprocess.run(
                [program, str(new)],
                stdin=dump.stdout,
                capture_output=True,
                check=False,
            )
        if load.returncode == 0 and dump.returncode == 0 and _has_runs(new):
            _drop_empty_lost_and_found(new)
            return "sqlite3 .recover"
        new.unlink(missing_ok=True)
    _salvage(db, new)
    return "a row-by-row salvage"


def _has_runs(new: Path) -> bool:
    conn = sqlite3.connect(new)
    try:
        return (
            conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'"
            ).fetchone()
            is not None
        )
    except sqlite3.DatabaseError:
        return False
    finally:
        conn.close()


def _drop_empty_lost_and_found(new: Path) -> None:
    conn = sqlite3.connect(new, isolation_level=None)
    try:
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'lost_and_found%'"
        ).fetchall():
            if not conn.execute(f'SELECT 1 FROM "{name}" LIMIT 1').fetchone():
                conn.execute(f'DROP TABLE "{name}"')
    finally:
        conn.close()


def _salvage(db: Path, new: Path) -> None:
    """The schema made fresh by the migrations, then every row that can still be
    read copied over, table by table; past a damaged page, the copy resumes at
    the next readable rowid."""
    from workbench.store import migrations

    dst = sqlite3.connect(new, isolation_level=None)
    migrations.apply(dst)
    src = _open_readonly(db)
    try:
        dst.execute("PRAGMA foreign_keys=OFF")
        dst.execute("BEGIN")
        dst.execute("DELETE FROM store_meta")
        tables = [
            r[0]
            for r in dst.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                " AND name NOT LIKE 'sqlite_%' AND name != '_sqlite_migrations'"
            )
        ]
        for table in tables:
            columns = [r[1] for r in dst.execute(f'PRAGMA table_info("{table}")')]
            _copy_table(src, dst, table, columns)
        dst.execute("COMMIT")
    finally:
        src.close()
        dst.close()


def _copy_table(
    src: sqlite3.Connection, dst: sqlite3.Connection, table: str, columns: list[str]
) -> None:
    names = ", ".join(f'"{c}"' for c in columns)
    insert = f'INSERT OR IGNORE INTO "{table}" ({names}) VALUES ({", ".join("?" * len(columns))})'
    try:
        has_rowid = src.execute(f'SELECT rowid FROM "{table}" LIMIT 1') is not None
    except sqlite3.DatabaseError:
        has_rowid = False
    if not has_rowid:
        try:
            for row in src.execute(f'SELECT {names} FROM "{table}"'):
                dst.execute(insert, row)
        except sqlite3.DatabaseError:
            pass  # rows before the damaged page are kept
        return
    try:
        top = src.execute(f'SELECT MAX(rowid) FROM "{table}"').fetchone()[0] or 0
    except sqlite3.DatabaseError:
        top = 1 << 62
    select = f'SELECT rowid, {names} FROM "{table}"'
    after = -(1 << 62)
    while after < top:
        try:
            for row in src.execute(f"{select} WHERE rowid > ? ORDER BY rowid", (after,)):
                dst.execute(insert, row[1:])
                after = row[0]
            return
        except sqlite3.DatabaseError:
            after = _step_over(src, dst, select, insert, after, top)


def _step_over(src, dst, select: str, insert: str, after: int, top: int) -> int:
    """Past a damaged page: look rowids up one by one (each lookup reaches its
    own page) until one can be read; returns it, or `top` when none can."""
    probe = max(after, 0) + 1
    for _ in range(MAX_PROBES):
        if probe > top:
            break
        try:
            row = src.execute(f"{select} WHERE rowid = ?", (probe,)).fetchone()
        except sqlite3.DatabaseError:
            row = None
        if row is not None:
            dst.execute(insert, row[1:])
            return probe
        probe += 1
    return top


def _other_users(db: Path) -> list[int]:
    """Other processes that have the database (or its WAL) open."""
    import psutil

    targets = {str(db), str(db) + "-wal"}
    found = []
    for proc in psutil.process_iter(["pid"]):
        if proc.pid == os.getpid():
            continue
        try:
            if any(f.path in targets for f in proc.open_files()):
                found.append(proc.pid)
        except (psutil.Error, OSError):
            continue
    return found
