"""The automation pipelines' rows: pipelines, their steps, the files handed to
them and the batches they accepted for training.

Every statement the pipeline and the watcher run against the store lives here;
callers get typed records (`Pipeline`, `Step`, `Verdict`) and never see SQL.
A write that has a matching activity-log entry writes it in the same
transaction, so the log never says what the tables do not hold.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.store.db import Store

# A pipeline's life: queued, claimed by a process, ended.
PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"


@dataclass(frozen=True, slots=True)
class Pipeline:
    """One pipeline over a set of new files of a project."""

    id: int
    project_id: int
    project: str
    trigger: str  # watch, rescan, cli
    files: tuple[str, ...]
    state: str  # pending, running, done, failed
    outcome: str | None
    exit_code: int | None
    owner_pid: int | None
    owner_started_at: float | None
    created_at: float
    started_at: float | None
    ended_at: float | None
    error: str | None


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a pipeline (per file for the data steps, else `file` is "")."""

    pipeline_id: int
    step: str
    file: str
    status: str  # running, ok, alert, rejected, skipped, kept, failed
    summary: str | None
    detail: dict[str, Any] | None
    started_at: float
    ended_at: float | None


@dataclass(frozen=True, slots=True)
class Verdict:
    """An accepted or rejected batch (a dataset version) of a project."""

    dataset_version_id: int
    verdict: str  # accepted, rejected
    labelled: bool
    stored: str | None  # the accepted rows as Parquet in the store
    pipeline_id: int | None


@dataclass(frozen=True, slots=True)
class Note:
    """An activity-log entry to write with a change."""

    kind: str
    message: str
    project_id: int
    data: dict[str, Any]
    run_id: int | None = None


def _add(store: Store, note: Note, ts: float) -> None:
    store.add_event(
        note.kind,
        note.message,
        ts=ts,
        project_id=note.project_id,
        run_id=note.run_id,
        data=note.data,
    )


_PIPELINE = (
    "SELECT p.*, pr.name AS project FROM pipelines p JOIN projects pr"
    " ON pr.id = p.project_id"
)


def _pipeline(row: dict[str, Any]) -> Pipeline:
    return Pipeline(
        id=row["id"],
        project_id=row["project_id"],
        project=row["project"],
        trigger=row["trigger"],
        files=tuple(json.loads(row["files"])),
        state=row["state"],
        outcome=row["outcome"],
        exit_code=row["exit_code"],
        owner_pid=row["owner_pid"],
        owner_started_at=row["owner_started_at"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        error=row["error"],
    )


def _step(row: dict[str, Any]) -> Step:
    return Step(
        pipeline_id=row["pipeline_id"],
        step=row["step"],
        file=row["file"],
        status=row["status"],
        summary=row["summary"],
        detail=json.loads(row["detail"]) if row["detail"] else None,
        started_at=row["started_at"],
        ended_at=row["ended_at"],
    )


# -- pipelines -------------------------------------------------------------------


def get(store: Store, pipeline_id: int) -> Pipeline | None:
    row = store.row(f"{_PIPELINE} WHERE p.id = ?", (pipeline_id,))
    return _pipeline(row) if row else None


def recent_ids(store: Store, project_id: int | None = None, limit: int = 50) -> list[int]:
    """Pipeline ids, newest first (of one project when given)."""
    where, params = ("WHERE project_id = ?", (project_id,)) if project_id is not None else ("", ())
    return [
        r["id"]
        for r in store.rows(
            f"SELECT id FROM pipelines {where} ORDER BY id DESC LIMIT ?", (*params, limit)
        )
    ]


def unfinished(store: Store, project_id: int | None = None) -> list[Pipeline]:
    """Pending and running pipelines, oldest first."""
    only, params = (" AND p.project_id = ?", (project_id,)) if project_id is not None else ("", ())
    return [
        _pipeline(r)
        for r in store.rows(
            f"{_PIPELINE} WHERE p.state IN ('pending', 'running'){only} ORDER BY p.id", params
        )
    ]


def create(
    store: Store,
    project_id: int,
    trigger: str,
    files: Sequence[tuple[str, int, int]],
    now: float,
) -> int:
    """A pending pipeline over `files` ((path, size, mtime_ns) each), the files
    recorded as handed to it, and its `pipeline.queued` event."""
    with store.write() as conn:
        pipeline_id = conn.execute(
            "INSERT INTO pipelines (project_id, trigger, files, state, created_at)"
            " VALUES (?, ?, ?, 'pending', ?)",
            (project_id, trigger, json.dumps([p for p, _, _ in files]), now),
        ).lastrowid
        assert pipeline_id is not None
        conn.executemany(
            "INSERT OR REPLACE INTO watched_files (project_id, path, size, mtime_ns, pipeline_id)"
            " VALUES (?, ?, ?, ?, ?)",
            [(project_id, p, size, mtime, pipeline_id) for p, size, mtime in files],
        )
        _add(
            store,
            Note(
                "pipeline.queued",
                f"pipeline {pipeline_id} queued for {len(files)} new file(s)",
                project_id,
                {"pipeline": pipeline_id, "files": [p for p, _, _ in files]},
            ),
            now,
        )
    return pipeline_id


def claim(
    store: Store,
    pipeline_id: int,
    owner: tuple[int, float],
    orphaned: Callable[[int | None, float | None], bool],
    now: float,
) -> bool | None:
    """Make `owner` (pid, process start time) run the pipeline: one that is
    pending, or running under `owner` already or under a process that is gone
    (`orphaned(pid, started)`). False when another process has it; None when
    there is no such pipeline."""
    with store.write() as conn:
        row = conn.execute(
            "SELECT state, owner_pid, owner_started_at FROM pipelines WHERE id = ?",
            (pipeline_id,),
        ).fetchone()
        if row is None:
            return None
        state, pid, started = row
        mine = (pid, started) == owner
        resumable = state == RUNNING and (mine or orphaned(pid, started))
        if state != PENDING and not resumable:
            return False
        conn.execute(
            "UPDATE pipelines SET state = 'running', owner_pid = ?, owner_started_at = ?,"
            " started_at = COALESCE(started_at, ?) WHERE id = ?",
            (*owner, now, pipeline_id),
        )
    return True


def end(
    store: Store,
    pipeline_id: int,
    *,
    state: str,
    outcome: str,
    exit_code: int,
    error: str | None,
    now: float,
    note: Note,
) -> None:
    """Record how the pipeline ended, with its event."""
    with store.write() as conn:
        conn.execute(
            "UPDATE pipelines SET state = ?, outcome = ?, exit_code = ?, ended_at = ?, error = ?"
            " WHERE id = ?",
            (state, outcome, exit_code, now, error, pipeline_id),
        )
        _add(store, note, now)


# -- steps -----------------------------------------------------------------------


def steps(store: Store, pipeline_id: int) -> list[Step]:
    """A pipeline's steps in the order they started."""
    return [
        _step(r)
        for r in store.rows(
            "SELECT * FROM pipeline_steps WHERE pipeline_id = ? ORDER BY id", (pipeline_id,)
        )
    ]


def ended_step(store: Store, pipeline_id: int, step: str, file: str) -> Step | None:
    """The step if it has ended (any status but running)."""
    row = store.row(
        "SELECT * FROM pipeline_steps WHERE pipeline_id = ? AND step = ?"
        " AND file = ? AND status != 'running'",
        (pipeline_id, step, file),
    )
    return _step(row) if row else None


def start_step(store: Store, pipeline_id: int, step: str, file: str, now: float) -> None:
    """Record a step as running (kept as it is when it was started before)."""
    with store.write() as conn:
        conn.execute(
            "INSERT INTO pipeline_steps (pipeline_id, step, file, status, started_at)"
            " VALUES (?, ?, ?, 'running', ?) ON CONFLICT (pipeline_id, step, file)"
            " DO NOTHING",
            (pipeline_id, step, file, now),
        )


def end_step(
    store: Store,
    pipeline_id: int,
    step: str,
    file: str,
    *,
    status: str,
    summary: str,
    detail: dict[str, Any],
    now: float,
    note: Note,
) -> None:
    """Record how a step ended, with its event."""
    with store.write() as conn:
        conn.execute(
            "UPDATE pipeline_steps SET status = ?, summary = ?, detail = ?, ended_at = ?"
            " WHERE pipeline_id = ? AND step = ? AND file = ?",
            (status, summary, json.dumps(detail, default=str), now, pipeline_id, step, file),
        )
        _add(store, note, now)


def registrations(
    store: Store,
    *,
    pipeline_id: int | None = None,
    project_id: int | None = None,
    file: str | None = None,
    before: int | None = None,
) -> list[Step]:
    """The `register` steps that ended ok: of one pipeline, or of a project's
    pipelines older than `before` that took `file`."""
    if pipeline_id is not None:
        where, params = "s.pipeline_id = ?", (pipeline_id,)
    else:
        where = "p.project_id = ? AND s.file = ? AND s.pipeline_id < ?"
        params = (project_id, file, before)  # type: ignore[assignment]
    return [
        _step(r)
        for r in store.rows(
            "SELECT s.* FROM pipeline_steps s JOIN pipelines p ON p.id = s.pipeline_id"
            f" WHERE {where} AND s.step = 'register' AND s.status = 'ok' ORDER BY s.id",
            params,
        )
    ]


# -- files handed to pipelines -------------------------------------------------


def handed_files(store: Store, project_id: int) -> dict[str, tuple[int, int]]:
    """path -> (size, mtime_ns) of every file handed to a pipeline of the project."""
    return {
        r["path"]: (r["size"], r["mtime_ns"])
        for r in store.rows(
            "SELECT path, size, mtime_ns FROM watched_files WHERE project_id = ?", (project_id,)
        )
    }


def handed_file(store: Store, project_id: int, path: str) -> tuple[int, int] | None:
    """(size, mtime_ns) of `path` when it was last handed to a pipeline."""
    row = store.row(
        "SELECT size, mtime_ns FROM watched_files WHERE project_id = ? AND path = ?",
        (project_id, path),
    )
    return (row["size"], row["mtime_ns"]) if row else None


# -- batches (data verdicts) ---------------------------------------------------


def _verdict(row: dict[str, Any]) -> Verdict:
    return Verdict(
        dataset_version_id=row["dataset_version_id"],
        verdict=row["verdict"],
        labelled=bool(row["labelled"]),
        stored=row["stored"],
        pipeline_id=row["pipeline_id"],
    )


def verdict(
    store: Store, project_id: int, version_id: int, *, accepted: bool = False
) -> Verdict | None:
    """The verdict on a dataset version (only an accepted one when `accepted`)."""
    only = " AND verdict = 'accepted'" if accepted else ""
    row = store.row(
        "SELECT * FROM data_verdicts WHERE project_id = ? AND dataset_version_id = ?" + only,
        (project_id, version_id),
    )
    return _verdict(row) if row else None


def add_verdict(
    store: Store,
    project_id: int,
    version_id: int,
    verdict: str,
    *,
    labelled: bool,
    stored: str | None,
    pipeline_id: int,
    now: float,
) -> None:
    """Record a batch's verdict; the first verdict on a version stands."""
    with store.write() as conn:
        conn.execute(
            "INSERT OR IGNORE INTO data_verdicts (project_id, dataset_version_id, verdict,"
            " labelled, stored, pipeline_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (project_id, version_id, verdict, int(labelled), stored, pipeline_id, now),
        )


def training_batches(store: Store, project_id: int) -> list[Verdict]:
    """The accepted labelled batches kept in the store, oldest first."""
    return [
        _verdict(r)
        for r in store.rows(
            "SELECT * FROM data_verdicts WHERE project_id = ?"
            " AND verdict = 'accepted' AND labelled = 1 AND stored IS NOT NULL"
            " ORDER BY created_at",
            (project_id,),
        )
    ]


def retire_batch(
    store: Store, project_id: int, version_id: int, pipeline_id: int, now: float, note: Note
) -> bool:
    """Take the batch `pipeline_id` accepted as `version_id` out of the
    retraining set, with its event; false when there was none (rejected, or
    retired already)."""
    with store.write() as conn:
        gone = conn.execute(
            # Only the batch that pipeline accepted: the same content may have
            # come from another file too.
            "DELETE FROM data_verdicts WHERE project_id = ? AND dataset_version_id = ?"
            " AND verdict = 'accepted' AND pipeline_id = ?",
            (project_id, version_id, pipeline_id),
        ).rowcount
        if gone:
            _add(store, note, now)
    return bool(gone)


def add_note(store: Store, note: Note, now: float) -> None:
    """An activity-log entry on its own."""
    with store.write():
        _add(store, note, now)


# -- what a pipeline reads of other aggregates ------------------------------------


def pipeline_run(store: Store, pipeline_id: int, project_id: int) -> int | None:
    """The retraining run a pipeline created (its `_pipeline` param)."""
    found = store.scalar(
        "SELECT p.run_id FROM params p JOIN runs r ON r.id = p.run_id"
        " WHERE p.key = '_pipeline' AND p.value = ? AND r.project_id = ?",
        (json.dumps(pipeline_id), project_id),
    )
    return int(found) if found is not None else None


def was_promoted_over_champion(store: Store, version_id: int, alias: str) -> bool:
    """Whether the version won `alias` from an earlier holder (not as the first version)."""
    return bool(
        store.scalar(
            "SELECT COUNT(*) FROM promotions WHERE challenger_id = ? AND alias = ?"
            " AND promoted = 1 AND champion_id IS NOT NULL",
            (version_id, alias),
        )
    )
