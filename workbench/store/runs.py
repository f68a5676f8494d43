"""The runs aggregate: typed rows of the `runs` table and the run state machine.

`transition` is the only writer of `runs.status` after a run is created: one
conditional UPDATE of the status and the given columns, and the matching
`run.<status>` event, in one transaction. Whoever loses a race (a supervisor
finishing while `run stop` marks the run, two dispatchers taking one queued
run) sees `False` and leaves the winner's outcome alone.
"""

from __future__ import annotations

import json
import time
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


def _run(row: tuple[Any, ...]) -> Run:
    values = dict(zip((*COLUMNS, "project", "project_path"), row, strict=True))
    values["status"] = RunStatus(values["status"])
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
    sets: list[str] = ["status = ?"]
    args: list[Any] = [status.value]
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
    now = time.time()
    with store.write() as conn:
        run_id = int(
            conn.execute(
                "INSERT INTO runs (project_id, parent_id, status, trainer, priority, created_at)"
                " VALUES (?, ?, 'queued', ?, ?, ?)",
                (project_id, parent_id, trainer, priority, now),
            ).lastrowid
            or 0
        )
        conn.executemany(
            "INSERT INTO params (run_id, key, value) VALUES (?, ?, ?)",
            [(run_id, key, json.dumps(value)) for key, value in params.items()],
        )
        add_event(
            conn,
            "run.queued",
            f"run {run_id} queued for {project_name}",
            ts=now,
            project_id=project_id,
            run_id=run_id,
            data={"params": params},
        )
    return run_id
