"""The runs aggregate: typed rows of the `runs` table and the run state machine.

`transition` is the only writer of `runs.status` after a run is created: one
conditional UPDATE of the status and the given columns, and the matching
`run.<status>` event, in one transaction. Whoever loses a race (a supervisor
finishing while `run stop` marks the run, two dispatchers taking one queued
run) sees `False` and leaves the winner's outcome alone.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, fields
from enum import Enum
from typing import TYPE_CHECKING, Any

from workbench.store.events import add_event

if TYPE_CHECKING:
    from workbench.store.db import Store


class RunStatus(str, Enum):
    """A run's lifecycle: queued → running → succeeded | failed | stopped | lost
    (a queued run may also go straight to failed or stopped)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"
    LOST = "lost"

    def __str__(self) -> str:
        return self.value

    @property
    def finished(self) -> bool:
        """Whether the run has ended (lost included: its owner is gone)."""
        return self not in (RunStatus.QUEUED, RunStatus.RUNNING)


FINISHED: tuple[RunStatus, ...] = tuple(s for s in RunStatus if s.finished)


@dataclass(frozen=True, slots=True)
class Run:
    """One row of `runs`, with its project's name (and folder) where joined."""

    id: int
    project_id: int
    status: RunStatus
    trainer: str
    created_at: float
    parent_id: int | None = None
    priority: int = 0
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    supervisor_pid: int | None = None
    supervisor_started_at: float | None = None
    pid: int | None = None
    pid_started_at: float | None = None
    heartbeat_at: float | None = None
    stop_requested_at: float | None = None
    dispatched_at: float | None = None
    hostname: str | None = None
    cpu_time_s: float | None = None
    max_rss_bytes: int | None = None
    message: str | None = None
    environment: str | None = None  # JSON, as stored
    project: str | None = None
    project_path: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The row as a plain dict (status as its string), for code that reads dicts."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["status"] = self.status.value
        return out

    def duration(self, now: float | None = None) -> float | None:
        """Seconds from start to end (to `now` while it runs); None before it starts."""
        if self.started_at is None:
            return None
        end = self.ended_at if self.ended_at is not None else (now or time.time())
        return round(end - self.started_at, 3)


# The columns of `runs`, in the record's order; `transition` may set any but id and status.
COLUMNS: tuple[str, ...] = tuple(
    f.name for f in fields(Run) if f.name not in ("project", "project_path")
)
SETTABLE = frozenset(COLUMNS) - {"id", "status", "project_id"}

_SELECT = (
    "SELECT "
    + ", ".join(f"r.{c}" for c in COLUMNS)
    + ", p.name AS project, p.path AS project_path"
    + " FROM runs r JOIN projects p ON p.id = r.project_id"
)


_INTS = frozenset({"parent_id", "exit_code", "supervisor_pid", "pid", "max_rss_bytes"})
_TIMES = frozenset(
    {
        "started_at",
        "ended_at",
        "supervisor_started_at",
        "pid_started_at",
        "heartbeat_at",
        "stop_requested_at",
        "dispatched_at",
        "cpu_time_s",
    }
)
_TEXTS = frozenset({"hostname", "message", "environment", "project_path"})


def _run(row: tuple[Any, ...]) -> Run:
    """A record from a row, each value of the type its column declares: a value
    of another type (a row written by hand or by another tool) reads as None,
    so that nothing downstream does arithmetic on text."""
    values = dict(zip((*COLUMNS, "project", "project_path"), row, strict=True))
    values["status"] = RunStatus(values["status"])
    for name in _INTS:
        if type(values[name]) is not int:
            values[name] = None
    for name in _TIMES:
        value = values[name]
        finite = type(value) in (int, float) and math.isfinite(value)
        values[name] = float(value) if finite else None
    if type(values["priority"]) is not int:
        values["priority"] = 0
    if type(values["created_at"]) not in (int, float) or not math.isfinite(values["created_at"]):
        values["created_at"] = 0.0
    for name in (*_TEXTS, "trainer", "project"):
        value = values[name]
        if isinstance(value, bytes):
            values[name] = value.decode("utf-8", "replace")
        elif value is not None and not isinstance(value, str):
            values[name] = str(value)
    return Run(**values)


def _select(store: Store, where: str = "", args: tuple[Any, ...] = (), tail: str = "") -> list[Run]:
    sql = _SELECT + (f" WHERE {where}" if where else "") + (f" {tail}" if tail else "")
    return [_run(row) for row in store.conn.execute(sql, args).fetchall()]


class IfNull:
    """A `transition` field value that only fills the column when it is NULL
    (`started_at=IfNull(now)`: a run that never started ends with a start time)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _statuses(expect: RunStatus | str | Iterable[RunStatus | str]) -> list[str]:
    if isinstance(expect, (RunStatus, str)):
        return [RunStatus(expect).value]
    return [RunStatus(s).value for s in expect]


def _update_sql(
    run_id: int,
    fields: dict[str, Any],
    expect: RunStatus | str | Iterable[RunStatus | str] | None,
) -> tuple[str, list[Any]]:
    """The conditional UPDATE of `fields` (column names already checked) of one run,
    while its status is one of `expect` when given; `IfNull` fills only a NULL."""
    sets: list[str] = []
    args: list[Any] = []
    for column, value in fields.items():
        if isinstance(value, IfNull):
            sets.append(f"{column} = COALESCE({column}, ?)")
            value = value.value
        else:
            sets.append(f"{column} = ?")
        args.append(value)
    sql = f"UPDATE runs SET {', '.join(sets)} WHERE id = ?"
    args.append(run_id)
    if expect is not None:
        allowed = _statuses(expect)
        sql += f" AND status IN ({', '.join('?' * len(allowed))})"
        args.extend(allowed)
    return sql, args


def transition(
    store: Store,
    run_id: int,
    to: RunStatus | str,
    *,
    expect: RunStatus | str | Iterable[RunStatus | str] | None = None,
    event: bool = True,
    event_message: str | None = None,
    event_data: dict[str, Any] | None = None,
    **fields: Any,
) -> bool:
    """Set run `run_id`'s status to `to` and the given columns, in one UPDATE
    that applies only while the status is one of `expect` (any status when
    None), with the `run.<to>` event in the same transaction; returns whether
    the run changed.

    The event's message defaults to "run N <status>[: <message>]" and its data
    to {"exit_code": ...} when `exit_code` is given. Called inside an open
    `store.write()` transaction it joins it (so a caller can check and change
    more in the same transaction); otherwise it opens its own.
    """
    status = RunStatus(to)
    unknown = sorted(set(fields) - SETTABLE)
    if unknown:
        raise ValueError(f"transition: not a settable column of runs: {', '.join(unknown)}")
    sql, args = _update_sql(run_id, {"status": status.value, **fields}, expect)
    if store.conn.in_transaction:
        return _apply(store, run_id, status, sql, args, event, event_message, event_data, fields)
    with store.write():
        return _apply(store, run_id, status, sql, args, event, event_message, event_data, fields)


def _apply(
    store: Store,
    run_id: int,
    status: RunStatus,
    sql: str,
    args: list[Any],
    event: bool,
    event_message: str | None,
    event_data: dict[str, Any] | None,
    fields: dict[str, Any],
) -> bool:
    changed = store.conn.execute(sql, args).rowcount > 0
    if changed and event:
        message = fields.get("message")
        if isinstance(message, IfNull):
            message = message.value
        if event_message is None:
            event_message = f"run {run_id} {status.value}" + (f": {message}" if message else "")
        if event_data is None and "exit_code" in fields:
            event_data = {"exit_code": fields["exit_code"]}
        add_event(
            store.conn,
            f"run.{status.value}",
            event_message,
            ts=time.time(),
            project_id=store.scalar("SELECT project_id FROM runs WHERE id = ?", (run_id,)),
            run_id=run_id,
            data=event_data,
        )
    return changed


LOST_MESSAGE = "its supervisor stopped without recording an outcome"


def mark_lost(store: Store, run: Run, now: float | None = None) -> bool:
    """Record that a running run's owner is gone: lost, ended at its last
    heartbeat, with its `run.lost` event; only if it is still running, so a
    supervisor that finished meanwhile keeps its real outcome."""
    return transition(
        store,
        run.id,
        RunStatus.LOST,
        expect=RunStatus.RUNNING,
        event_message=f"run {run.id} lost",
        ended_at=run.heartbeat_at if run.heartbeat_at is not None else (now or time.time()),
        message=LOST_MESSAGE,
    )


def get(store: Store, run_id: int) -> Run | None:
    """Run `run_id` with its project, or None."""
    found = _select(store, "r.id = ?", (run_id,))
    return found[0] if found else None


def status_of(store: Store, run_id: int) -> RunStatus | None:
    """Run `run_id`'s status as stored (None: no such run)."""
    value = store.scalar("SELECT status FROM runs WHERE id = ?", (run_id,))
    return None if value is None else RunStatus(value)


def insert_queued(
    store: Store,
    project_id: int,
    trainer: str,
    params: dict[str, Any],
    *,
    project_name: str,
    priority: int = 0,
    parent_id: int | None = None,
) -> int:
    """Record a new queued run with its params and its `run.queued` event."""
    return create(
        store,
        project_id,
        trainer,
        params=params,
        priority=priority,
        parent_id=parent_id,
        event_message="run {id} queued for " + project_name,
        event_data={"params": params},
    )


def create(
    store: Store,
    project_id: int,
    trainer: str,
    *,
    event_message: str,
    status: RunStatus | str = RunStatus.QUEUED,
    params: dict[str, Any] | None = None,
    event_data: dict[str, Any] | None = None,
    **columns: Any,
) -> int:
    """Record a new run (queued unless `status` says otherwise) with its params
    and its `run.<status>` event; returns its id. "{id}" in `event_message`
    becomes the new run's id. Joins an open transaction."""
    status = RunStatus(status)
    unknown = sorted(set(columns) - SETTABLE - {"created_at"})
    if unknown:
        raise ValueError(f"create: not a column of runs: {', '.join(unknown)}")
    values = {"created_at": time.time(), **columns}
    names = ["project_id", "status", "trainer", "uuid", *values]
    sql = f"INSERT INTO runs ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"

    def insert() -> int:
        conn = store.conn
        cursor = conn.execute(
            sql, (project_id, status.value, trainer, uuid.uuid4().hex, *values.values())
        )
        run_id = int(cursor.lastrowid or 0)
        if params:
            put_params(conn, run_id, {k: json.dumps(v) for k, v in params.items()})
        add_event(
            conn,
            f"run.{status.value}",
            event_message.replace("{id}", str(run_id)),
            ts=values["created_at"],
            project_id=project_id,
            run_id=run_id,
            data=event_data,
        )
        return run_id

    if store.conn.in_transaction:
        return insert()
    with store.write():
        return insert()


def update(
    store: Store,
    run_id: int,
    *,
    expect: RunStatus | str | Iterable[RunStatus | str] | None = None,
    **fields: Any,
) -> bool:
    """Set columns of run `run_id` other than its status (a heartbeat, the
    trainer's pid, a stop request), while its status is one of `expect` when
    given; returns whether the run changed. Joins an open transaction."""
    if "status" in fields:
        raise ValueError("update: a run's status changes only through transition()")
    unknown = sorted(set(fields) - SETTABLE)
    if unknown or not fields:
        raise ValueError(f"update: not a settable column of runs: {', '.join(unknown) or 'none'}")
    sql, args = _update_sql(run_id, fields, expect)
    if store.conn.in_transaction:
        return store.conn.execute(sql, args).rowcount > 0
    with store.write() as conn:
        return conn.execute(sql, args).rowcount > 0


def put_params(conn: Any, run_id: int, encoded: dict[str, str]) -> None:
    """Set params of a run (values already JSON), replacing keys already there;
    call inside a write transaction."""
    conn.executemany(
        "INSERT OR REPLACE INTO params (run_id, key, value) VALUES (?, ?, ?)",
        [(run_id, key, value) for key, value in encoded.items()],
    )


def put_artifacts(conn: Any, rows: Iterable[tuple[Any, ...]]) -> None:
    """Record artifacts: (run_id, name, sha256, size, kind, created_at) rows, a
    name logged again replacing the older one; call inside a write transaction."""
    conn.executemany(
        "INSERT OR REPLACE INTO artifacts (run_id, name, sha256, size, kind, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )


def params(store: Store, run_id: int) -> dict[str, Any]:
    """The run's params, decoded, by key (a value that is not JSON as its text)."""
    return {
        str(key): _json_or_text(value)
        for key, value in store.conn.execute(
            "SELECT key, value FROM params WHERE run_id = ? ORDER BY key", (run_id,)
        )
    }


def _json_or_text(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    try:
        return json.loads(value)
    except (TypeError, ValueError, RecursionError):
        return value


@dataclass(frozen=True, slots=True)
class Artifact:
    """A file a run logged, stored by content."""

    name: str
    sha256: str
    size: int
    kind: str | None


def artifacts(store: Store, run_id: int) -> list[Artifact]:
    """The run's artifacts, by name."""
    return [
        Artifact(*row)
        for row in store.conn.execute(
            "SELECT name, sha256, size, kind FROM artifacts WHERE run_id = ? ORDER BY name",
            (run_id,),
        )
    ]


def listing(
    store: Store,
    project: str | None = None,
    limit: int | None = None,
    *,
    status: RunStatus | str | None = None,
    before: int | None = None,
) -> list[Run]:
    """Runs newest first (of one project, and of one status, when given), at most
    `limit`; with `before`, only runs whose id is below it (the next page after
    a page that ended at run `before`)."""
    where: list[str] = []
    args: list[Any] = []
    if project:
        where.append("p.name = ?")
        args.append(project)
    if status is not None:
        where.append("r.status = ?")
        args.append(RunStatus(status).value)
    if before is not None:
        where.append("r.id < ?")
        args.append(int(before))
    tail = "ORDER BY r.id DESC" + (" LIMIT ?" if limit is not None else "")
    if limit is not None:
        args.append(int(limit))
    return _select(store, " AND ".join(where), tuple(args), tail)


@dataclass(frozen=True, slots=True)
class ListedRun:
    """What a listing shows of a run: its row's listed columns and its project's name."""

    id: int
    project: str
    status: RunStatus
    trainer: str
    exit_code: int | None
    created_at: float
    started_at: float | None
    ended_at: float | None

    def duration(self, now: float | None = None) -> float | None:
        """Seconds from start to end (to `now` while it runs); None before it starts."""
        if self.started_at is None:
            return None
        end = self.ended_at if self.ended_at is not None else (now or time.time())
        return round(end - self.started_at, 3)


def _finite(column: str) -> str:
    # A time of another type, or not finite, reads as NULL (as `_run` reads it),
    # checked by SQLite rather than per row in Python.
    return (
        f"CASE WHEN typeof({column}) IN ('integer', 'real')"
        f" AND abs({column}) <= 1.7976931348623157e308 THEN CAST({column} AS REAL) END"
    )


_LISTED_SELECT = (
    "SELECT r.id, p.name, r.status, r.trainer,"
    " CASE WHEN typeof(r.exit_code) = 'integer' THEN r.exit_code END, "
    f"COALESCE({_finite('r.created_at')}, 0.0), {_finite('r.started_at')}, "
    f"{_finite('r.ended_at')} FROM runs r JOIN projects p ON p.id = r.project_id"
)
_STATUS_OF: dict[Any, RunStatus] = {s.value: s for s in RunStatus}


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def page(
    store: Store,
    project: str | None = None,
    limit: int | None = None,
    *,
    before: int | None = None,
    tag: str | None = None,
    archived: bool | None = False,
) -> list[ListedRun]:
    """What `listing` returns, as the lighter records a long listing needs: one
    query, newest first, at most `limit`, only ids below `before` when given;
    only runs tagged `tag` when given; not archived runs (`archived=False`),
    only archived ones (True) or both (None)."""
    where, args = _filters(project, tag, archived)
    if before is not None:
        where.append("r.id < ?")
        args.append(int(before))
    sql = _LISTED_SELECT + (f" WHERE {' AND '.join(where)}" if where else "")
    sql += " ORDER BY r.id DESC"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(int(limit))
    status_of_value = _STATUS_OF
    out = []
    for rid, name, status, trainer, exit_code, created, started, ended in store.conn.execute(
        sql, args
    ):
        found = status_of_value.get(status)
        out.append(
            ListedRun(
                rid,
                name if type(name) is str else _text(name),
                found if found is not None else RunStatus(status),
                trainer if type(trainer) is str else _text(trainer),
                exit_code,
                created,
                started,
                ended,
            )
        )
    return out


def _filters(
    project: str | None, tag: str | None, archived: bool | None
) -> tuple[list[str], list[Any]]:
    """WHERE terms (on runs r joined to projects p) for a project, a tag and the archive."""
    where: list[str] = []
    args: list[Any] = []
    if project:
        where.append("p.name = ?")
        args.append(project)
    if tag is not None:
        where.append("EXISTS (SELECT 1 FROM run_tags t WHERE t.run_id = r.id AND t.tag = ?)")
        args.append(tag)
    if archived is not None:
        where.append(f"r.archived_at IS {'NOT ' if archived else ''}NULL")
    return where, args


def count(
    store: Store,
    project: str | None = None,
    *,
    tag: str | None = None,
    archived: bool | None = None,
) -> int:
    """How many runs there are (of one project, or all; with a tag; archived
    or not, or both when None)."""
    if archived is False and tag is None:
        # All runs less the archived ones: the count of all is cheap, and the
        # archived ones are found through their partial index.
        return count(store, project) - count(store, project, archived=True)
    if project or tag is not None or archived is not None:
        where, args = _filters(project, tag, archived)
        return int(
            store.scalar(
                "SELECT COUNT(*) FROM runs r JOIN projects p ON p.id = r.project_id"
                " WHERE " + " AND ".join(where),
                tuple(args),
            )
        )
    return int(store.scalar("SELECT COUNT(*) FROM runs"))


def running(store: Store, run_id: int | None = None) -> list[Run]:
    """Runs marked running (only `run_id`, when given)."""
    if run_id is None:
        return _select(store, "r.status = 'running'")
    return _select(store, "r.status = 'running' AND r.id = ?", (run_id,))


# --- the queue --------------------------------------------------------------------


def any_queued(store: Store) -> bool:
    """Whether any run waits in the queue."""
    return store.scalar("SELECT 1 FROM runs WHERE status = 'queued' LIMIT 1") is not None


def taking_slots(store: Store) -> int:
    """Runs that take a run slot: running (a sweep only waits on its trials, which
    take theirs) or queued and handed to a supervisor already."""
    return int(
        store.scalar(
            "SELECT COUNT(*) FROM runs WHERE (status = 'running' AND trainer != 'sweep')"
            " OR (status = 'queued' AND dispatched_at IS NOT NULL)"
        )
    )


def due(store: Store, limit: int) -> list[int]:
    """Queued runs nobody has taken or stopped, next first (priority, then age)."""
    return [
        row[0]
        for row in store.conn.execute(
            "SELECT id FROM runs WHERE status = 'queued' AND dispatched_at IS NULL"
            " AND stop_requested_at IS NULL ORDER BY priority DESC, id LIMIT ?",
            (limit,),
        )
    ]


def dispatched(store: Store) -> list[Run]:
    """Queued runs already handed to a supervisor that has not started them yet."""
    return _select(store, "r.status = 'queued' AND r.dispatched_at IS NOT NULL")


def lost_with_trainer(store: Store) -> list[Run]:
    """Lost runs (of a supervised trainer) that recorded a trainer process."""
    return _select(
        store,
        "r.status = 'lost' AND r.pid IS NOT NULL AND r.trainer NOT IN ('sweep', 'inline')",
    )


# --- resources ------------------------------------------------------------------------

_SAMPLE_SQL = """
INSERT INTO resource_samples (run_id, ts, cpu_percent, rss_bytes, num_threads, num_procs,
    read_bytes, write_bytes, sys_cpu_percent, sys_mem_percent, sys_mem_used, gpu)
VALUES (:run_id, :ts, :cpu_percent, :rss_bytes, :num_threads, :num_procs,
    :read_bytes, :write_bytes, :sys_cpu_percent, :sys_mem_percent, :sys_mem_used, :gpu)
"""


def add_samples(conn: Any, samples: Iterable[dict[str, Any]]) -> None:
    """Insert resource samples (dicts keyed by column, `gpu` as JSON text);
    call inside a write transaction."""
    conn.executemany(_SAMPLE_SQL, samples)


def resource_totals(store: Store, run_id: int) -> dict[str, Any]:
    """Counts and peaks over the run's resource samples."""
    row = store.row(
        """SELECT COUNT(*) AS samples, MAX(cpu_percent) AS cpu_percent_max,
              AVG(cpu_percent) AS cpu_percent_mean, MAX(rss_bytes) AS rss_bytes_max,
              MAX(num_threads) AS threads_max, MAX(num_procs) AS procs_max,
              MAX(read_bytes) AS read_bytes, MAX(write_bytes) AS write_bytes
       FROM resource_samples WHERE run_id = ?""",
        (run_id,),
    )
    # SQLite's MAX prefers text to any number: a sample written by another tool
    # must not turn a peak into a string.
    return {
        key: value if type(value) in (int, float) else None for key, value in (row or {}).items()
    }


def gpu_readings(store: Store, run_id: int) -> list[list[dict[str, Any]]]:
    """The GPU readings of each of the run's samples that has them (one list per
    sample, one dict per device); a reading that is not such JSON is left out."""
    found = []
    for (blob,) in store.conn.execute(
        "SELECT gpu FROM resource_samples WHERE run_id = ? AND gpu IS NOT NULL", (run_id,)
    ):
        readings = _json_or_text(blob)
        if isinstance(readings, list):
            found.append([r for r in readings if isinstance(r, dict)])
    return found
