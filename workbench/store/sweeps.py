"""The sweeps' rows: a sweep is a run (trainer "sweep") owned by the process
driving it, and each trial a child run with a `_trial` param.

Every statement the sweep engine runs against the store lives here or in
`store.runs` (whose `transition` is the only writer of a run's status); the
engine gets typed records and never sees SQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from workbench.store import runs
from workbench.store.db import Store
from workbench.store.metrics import append_points, read_columns, series_id
from workbench.store.runs import RunStatus, transition

SWEEP_TRAINER = "sweep"


@dataclass(frozen=True, slots=True)
class TrialRun:
    """A trial's run as the sweep follows it."""

    id: int
    status: RunStatus
    started_at: float | None
    message: str | None
    trial: int | None  # the trial number (its `_trial` param)


@dataclass(frozen=True, slots=True)
class Owner:
    """The process driving a sweep, recorded like a run's supervisor."""

    pid: int
    started_at: float
    hostname: str

    def columns(self) -> dict[str, Any]:
        """The run columns that name this process as the sweep's owner."""
        return {
            "supervisor_pid": self.pid,
            "supervisor_started_at": self.started_at,
            "hostname": self.hostname,
        }


def _trial_run(row: dict[str, Any]) -> TrialRun:
    trial = row.get("trial")
    return TrialRun(
        id=row["id"],
        status=RunStatus(row["status"]),
        started_at=row["started_at"],
        message=row["message"],
        trial=json.loads(trial) if trial is not None else None,
    )


# -- a sweep and its trials ------------------------------------------------------


def params(store: Store, run_id: int) -> dict[str, Any]:
    """A run's params, decoded, by key."""
    return runs.params(store, run_id)


def trial_runs(store: Store, sweep_id: int) -> dict[int, TrialRun]:
    """Trial number -> the latest run made for it."""
    found = store.rows(
        "SELECT r.id, r.status, r.started_at, r.message, p.value AS trial FROM runs r"
        " JOIN params p ON p.run_id = r.id AND p.key = '_trial'"
        " WHERE r.parent_id = ? ORDER BY r.id",
        (sweep_id,),
    )
    out: dict[int, TrialRun] = {}
    for row in found:
        run = _trial_run(row)
        if run.trial is not None:
            out[run.trial] = run
    return out


def runs_by_id(store: Store, ids: Iterable[int]) -> dict[int, TrialRun]:
    """The given runs by id (trial numbers are not read)."""
    wanted = tuple(ids)
    if not wanted:
        return {}
    found = store.rows(
        "SELECT id, status, started_at, message FROM runs"
        f" WHERE id IN ({','.join('?' * len(wanted))})",
        wanted,
    )
    return {r["id"]: _trial_run(r) for r in found}


def active_trials(store: Store, sweep_id: int) -> int:
    """How many of the sweep's trial runs are queued or running."""
    return int(
        store.scalar(
            "SELECT COUNT(*) FROM runs WHERE parent_id = ? AND status IN ('running', 'queued')",
            (sweep_id,),
        )
    )


def trial_counts(store: Store, sweep_id: int) -> dict[str, int]:
    """status -> how many of the sweep's trial runs have it."""
    return dict(
        store.conn.execute(
            "SELECT status, COUNT(*) FROM runs WHERE parent_id = ? GROUP BY status", (sweep_id,)
        ).fetchall()
    )


def project_sweeps(store: Store, project_id: int) -> list[int]:
    """The project's sweep run ids, newest first."""
    return [
        r["id"]
        for r in store.rows(
            "SELECT id FROM runs WHERE project_id = ? AND trainer = ? ORDER BY id DESC",
            (project_id, SWEEP_TRAINER),
        )
    ]


def latest_unfinished(store: Store, project_id: int) -> int | None:
    """The project's newest sweep that has not succeeded."""
    found = store.scalar(
        "SELECT id FROM runs WHERE project_id = ? AND trainer = ? AND status != 'succeeded'"
        " ORDER BY id DESC LIMIT 1",
        (project_id, SWEEP_TRAINER),
    )
    return int(found) if found is not None else None


# -- metrics the sweep reads and writes ------------------------------------------


def series_since(store: Store, run_id: int, key: str, start: int) -> list[tuple[int, Any, Any]]:
    """(idx, step, value) of a run's metric series from point `start` on."""
    found = series_id(store.conn, run_id, key)
    if found is None:
        return []
    steps, _, values, _ = read_columns(store.conn, found[0], start)
    return list(zip(range(start, start + len(steps)), steps, values, strict=True))


def first_series(store: Store, run_id: int, prefixes: Iterable[str]) -> str | None:
    """The run's first metric key (in order) starting with `<prefix>_`."""
    wanted = tuple(prefixes)
    like = " OR ".join("key LIKE ? ESCAPE '\\'" for _ in wanted)
    found = store.scalar(
        f"SELECT key FROM metric_series WHERE run_id = ? AND ({like}) ORDER BY key LIMIT 1",
        (run_id, *(p.replace("_", "\\_") + "_%" for p in wanted)),
    )
    return str(found) if found is not None else None


def latest_value(store: Store, run_id: int, key: str | None) -> float | None:
    """The latest value of a run's metric (None when it has none)."""
    return store.scalar(
        "SELECT value FROM metric_series WHERE run_id = ? AND key = ?", (run_id, key)
    )


def add_points(store: Store, run_id: int, points: Mapping[str, list]) -> None:
    """Append metric points ((step, ts, value) per key) to a run."""
    with store.write() as conn:
        append_points(conn, run_id, dict(points))


def record_best(
    store: Store, sweep_id: int, best: Mapping[str, Any], points: Mapping[str, list]
) -> None:
    """The best trial's params and the final metrics on the sweep run, together."""
    with store.write() as conn:
        runs.put_params(conn, sweep_id, _encoded(best))
        append_points(conn, sweep_id, dict(points))


# -- the sweep run's life ----------------------------------------------------------


def create(
    store: Store,
    project_id: int,
    spec: Mapping[str, Any],
    owner: Owner,
    now: float,
    *,
    message: str,
    data: dict[str, Any],
) -> int:
    """A running sweep run owned by `owner`, with its spec as params and its
    `run.running` event ("{id}" in `message` becomes the run's id)."""
    return runs.create(
        store,
        project_id,
        SWEEP_TRAINER,
        status=RunStatus.RUNNING,
        params=dict(spec),
        event_message=message,
        event_data=data,
        created_at=now,
        started_at=now,
        heartbeat_at=now,
        **owner.columns(),
    )


def take_over(
    store: Store,
    sweep_id: int,
    was: RunStatus | str,
    owner: Owner,
    now: float,
    changes: Mapping[str, Any],
) -> bool:
    """Make an interrupted sweep running again under `owner`, while its status
    is still `was`, replacing the params in `changes`; false when another
    process took it first."""
    with store.write():
        taken = transition(
            store,
            sweep_id,
            RunStatus.RUNNING,
            expect=was,
            event_message=f"sweep {sweep_id} resumed",
            event_data={},
            exit_code=None,
            message=None,
            ended_at=None,
            stop_requested_at=None,
            heartbeat_at=now,
            **owner.columns(),
        )
        if not taken:
            return False
        runs.put_params(store.conn, sweep_id, _encoded(changes))
    return True


def end(store: Store, sweep_id: int, status: RunStatus | str, message: str, now: float) -> None:
    """The sweep run ends with `status`, with its `run.<status>` event."""
    status = RunStatus(status)
    transition(
        store,
        sweep_id,
        status,
        event_message=f"sweep {sweep_id} {status.value}: {message}",
        event_data={},
        exit_code=0 if status is RunStatus.SUCCEEDED else 1,
        message=message,
        ended_at=now,
        heartbeat_at=now,
    )


def heartbeat(store: Store, sweep_id: int, now: float) -> None:
    """The sweep's process is alive."""
    runs.update(store, sweep_id, heartbeat_at=now)


def _encoded(values: Mapping[str, Any]) -> dict[str, str]:
    return {k: json.dumps(v) for k, v in values.items()}
