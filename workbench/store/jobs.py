"""Runs handed to an executor other than the local supervisor (Slurm jobs):
where each job is, what the scheduler last said of it, and how far its journal
has been ingested.

The columns live on `runs` (migration m011_executor); a run's status still
changes only through `store.runs.transition`. The journal offset moves in the
same transaction as the rows read from the journal, so a journal read twice
adds nothing twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.store.runs import RunStatus

if TYPE_CHECKING:
    from workbench.store.db import Store

LOCAL = "local"


@dataclass(frozen=True, slots=True)
class Job:
    """A run's executor fields: the job id the scheduler gave it, the host it was
    submitted through (None: this machine), the node it runs on, the scheduler's
    last state and reason, and its journal with the bytes of it already read."""

    run_id: int
    status: RunStatus
    executor: str
    job_id: str | None
    job_host: str | None
    node: str | None
    slurm_state: str | None
    slurm_reason: str | None
    journal_path: str | None
    journal_offset: int
    stop_requested_at: float | None
    parent_id: int | None

    @property
    def finished(self) -> bool:
        return self.status.finished

    def as_dict(self) -> dict[str, Any]:
        """The fields `run show --json` adds."""
        return {
            "executor": self.executor,
            "job_id": self.job_id,
            "node": self.node,
            "slurm_state": self.slurm_state,
            "slurm_reason": self.slurm_reason,
            "journal": self.journal_path,
        }


_COLUMNS = (
    "id, status, executor, job_id, job_host, node, slurm_state, slurm_reason,"
    " journal_path, journal_offset, stop_requested_at, parent_id"
)
_SETTABLE = frozenset(
    {"executor", "job_id", "job_host", "node", "slurm_state", "slurm_reason", "journal_path"}
)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _job(row: tuple[Any, ...]) -> Job:
    rid, status, executor, job_id, host, node, state, reason, journal, offset, stop, parent = row
    return Job(
        run_id=int(rid),
        status=RunStatus(status),
        executor=_text(executor) or LOCAL,
        job_id=_text(job_id),
        job_host=_text(host),
        node=_text(node),
        slurm_state=_text(state),
        slurm_reason=_text(reason),
        journal_path=_text(journal),
        journal_offset=offset if type(offset) is int and offset >= 0 else 0,
        stop_requested_at=float(stop) if type(stop) in (int, float) else None,
        parent_id=parent if type(parent) is int else None,
    )


def job_of(store: Store, run_id: int) -> Job | None:
    """Run `run_id`'s executor fields, or None when it has no such run."""
    row = store.conn.execute(f"SELECT {_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
    return None if row is None else _job(row)


def is_job(store: Store, run_id: int) -> bool:
    """Whether run `run_id` was handed to an executor other than the local one."""
    value = store.scalar("SELECT executor FROM runs WHERE id = ?", (run_id,))
    return value is not None and value != LOCAL


def active(store: Store) -> list[Job]:
    """The queued and running runs of every non-local executor, oldest first (one
    query, through the partial index on executor)."""
    rows = store.conn.execute(
        f"SELECT {_COLUMNS} FROM runs WHERE executor != 'local'"
        " AND status IN ('queued', 'running') ORDER BY id"
    ).fetchall()
    return [_job(row) for row in rows]


def children(store: Store, parent_id: int) -> list[Job]:
    """The executor fields of a run's children (a sweep's trial runs), oldest first."""
    rows = store.conn.execute(
        f"SELECT {_COLUMNS} FROM runs WHERE parent_id = ? ORDER BY id", (parent_id,)
    ).fetchall()
    return [_job(row) for row in rows]


def page_jobs(store: Store, project_id: int, run_ids: list[int]) -> dict[int, Job] | None:
    """The executor fields of these runs of a project, for its run table; None
    when no run of the project ever went to another executor (its table then
    keeps no executor columns). Two indexed queries."""
    used = store.scalar(
        "SELECT EXISTS(SELECT 1 FROM runs WHERE project_id = ? AND executor != 'local')",
        (project_id,),
    )
    if not used:
        return None
    found: dict[int, Job] = {}
    for start in range(0, len(run_ids), 500):
        chunk = run_ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in store.conn.execute(
            f"SELECT {_COLUMNS} FROM runs WHERE id IN ({marks})", tuple(chunk)
        ):
            job = _job(row)
            found[job.run_id] = job
    return found


def active_ids(store: Store) -> set[int]:
    """The ids of `active()`."""
    return {
        int(row[0])
        for row in store.conn.execute(
            "SELECT id FROM runs WHERE executor != 'local' AND status IN ('queued', 'running')"
        )
    }


def taking_local_slots(store: Store) -> int:
    """Non-local runs that `store.runs.taking_slots` counts (running, or queued and
    handed off): they run elsewhere, so the local queue gives their slots back."""
    return int(
        store.scalar(
            "SELECT COUNT(*) FROM runs WHERE executor != 'local' AND trainer != 'sweep'"
            " AND (status = 'running' OR (status = 'queued' AND dispatched_at IS NOT NULL))"
        )
    )


def set_fields(store: Store, run_id: int, **fields: Any) -> bool:
    """Set executor fields of a run (never its status); joins an open transaction."""
    unknown = sorted(set(fields) - _SETTABLE)
    if unknown or not fields:
        raise ValueError(f"set_fields: not an executor column: {', '.join(unknown) or 'none'}")
    sets = ", ".join(f"{name} = ?" for name in fields)
    sql = f"UPDATE runs SET {sets} WHERE id = ?"
    args = (*fields.values(), run_id)
    if store.conn.in_transaction:
        return store.conn.execute(sql, args).rowcount > 0
    with store.write() as conn:
        return conn.execute(sql, args).rowcount > 0


def advance_journal(conn: Any, run_id: int, old: int, new: int) -> bool:
    """Move a run's journal offset from `old` to `new`; False when another reader
    moved it first (its transaction then rolls back what it read). Call inside
    the write transaction that holds the rows read."""
    return (
        conn.execute(
            "UPDATE runs SET journal_offset = ? WHERE id = ? AND journal_offset = ?",
            (new, run_id, old),
        ).rowcount
        > 0
    )


def journal_offset(store: Store, run_id: int) -> int:
    """How many bytes of the run's journal are in the store."""
    value = store.scalar("SELECT journal_offset FROM runs WHERE id = ?", (run_id,))
    return value if type(value) is int else 0


def mark_submitted(store: Store, run_id: int, **fields: Any) -> bool:
    """Record a queued run as handed to an executor (so the local queue never
    starts it): `dispatched_at` and the executor fields, in one transaction."""
    unknown = sorted(set(fields) - _SETTABLE)
    if unknown:
        raise ValueError(f"mark_submitted: not an executor column: {', '.join(unknown)}")
    names = ["dispatched_at", *fields]
    sql = f"UPDATE runs SET {', '.join(f'{n} = ?' for n in names)} WHERE id = ?"
    args = (time.time(), *fields.values(), run_id)
    if store.conn.in_transaction:
        return store.conn.execute(sql, args).rowcount > 0
    with store.write() as conn:
        return conn.execute(sql, args).rowcount > 0


def run_uuid(store: Store, run_id: int) -> str | None:
    """The run's global identity (names its job folder, unique across stores)."""
    value = store.scalar("SELECT uuid FROM runs WHERE id = ?", (run_id,))
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class QueueRow:
    """A queued or running run of another executor, for the TUI's queue view."""

    run_id: int
    project: str
    status: RunStatus
    executor: str
    job_id: str | None
    node: str | None
    slurm_state: str | None
    slurm_reason: str | None
    created_at: float


def queue(store: Store, limit: int = 1000) -> list[QueueRow]:
    """The store's queued and running jobs (Slurm's), oldest first, with their
    projects' names: one query."""
    rows = store.conn.execute(
        "SELECT r.id, p.name, r.status, r.executor, r.job_id, r.node, r.slurm_state,"
        " r.slurm_reason, r.created_at FROM runs r JOIN projects p ON p.id = r.project_id"
        " WHERE r.executor != 'local' AND r.status IN ('queued', 'running')"
        " ORDER BY r.id LIMIT ?",
        (limit,),
    ).fetchall()
    return [
        QueueRow(
            int(rid),
            _text(name) or "",
            RunStatus(status),
            _text(executor) or LOCAL,
            _text(job_id),
            _text(node),
            _text(state),
            _text(reason),
            float(created) if type(created) in (int, float) else 0.0,
        )
        for rid, name, status, executor, job_id, node, state, reason, created in rows
    ]
