"""What users add to runs and take away: tags, a note, the archive, and
deleting runs with their rows.

Tags are rows of `run_tags` (many per run); the note and `archived_at` are
columns of `runs`. Deleting a run removes its rows (params, metrics, samples,
artifacts, events and tags go with it by `ON DELETE CASCADE`); which files go
with it is decided here too, since only the store knows which blobs other runs
and model versions still point at.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.store.events import add_event

if TYPE_CHECKING:
    from workbench.store.db import Store

_IDS = "SELECT value FROM json_each(?)"  # a JSON array of ids, as a subquery


def _ids(ids: Iterable[int]) -> str:
    return json.dumps([int(i) for i in ids])


@dataclass(frozen=True, slots=True)
class RunNotes:
    """A run's tags (sorted), note and when it was archived (None: not archived)."""

    run_id: int
    tags: tuple[str, ...] = ()
    note: str | None = None
    archived_at: float | None = None

    @property
    def archived(self) -> bool:
        return self.archived_at is not None


def notes_of(store: Store, run_ids: Sequence[int]) -> dict[int, RunNotes]:
    """Tags, note and archive time of many runs, in two queries; a run that
    does not exist is left out."""
    if not run_ids:
        return {}
    tags = tags_of(store, run_ids)
    where, args = _among(run_ids, "id")
    out = {}
    wanted = set(run_ids)
    for run_id, note, archived_at in store.conn.execute(
        f"SELECT id, note, archived_at FROM runs WHERE {where}", args
    ):
        if run_id not in wanted:
            continue
        out[run_id] = RunNotes(
            run_id,
            tuple(tags.get(run_id, ())),
            note if isinstance(note, str) else None,
            float(archived_at) if type(archived_at) in (int, float) else None,
        )
    return out


# Past this many ids, a range of ids is read and the rows filtered here: a
# listing's ids are a dense range, and a JSON array of 50,000 ids costs more
# to build and search than the few rows outside the range.
_RANGE_FROM = 500


def _among(run_ids: Sequence[int], column: str) -> tuple[str, tuple[Any, ...]]:
    """A WHERE term selecting `column` among `run_ids` (or a range holding them)."""
    if len(run_ids) > _RANGE_FROM:
        return f"{column} BETWEEN ? AND ?", (min(run_ids), max(run_ids))
    return f"{column} IN ({_IDS})", (_ids(run_ids),)


def tags_of(store: Store, run_ids: Sequence[int]) -> dict[int, list[str]]:
    """The tags of many runs, sorted, in one query (runs without tags left out)."""
    out: dict[int, list[str]] = {}
    if not run_ids:
        return out
    where, args = _among(run_ids, "run_id")
    wanted = set(run_ids)
    for run_id, tag in store.conn.execute(
        f"SELECT run_id, tag FROM run_tags WHERE {where} ORDER BY run_id, tag", args
    ):
        if run_id in wanted:
            out.setdefault(run_id, []).append(str(tag))
    return out


def _project_of(store: Store, run_id: int) -> int | None:
    value = store.scalar("SELECT project_id FROM runs WHERE id = ?", (run_id,))
    return int(value) if value is not None else None


def add_tags(store: Store, run_id: int, tags: Iterable[str]) -> list[str]:
    """Tag a run (a tag it has already is kept as it is); returns its tags now."""
    now = time.time()
    with store.write() as conn:
        conn.executemany(
            "INSERT OR IGNORE INTO run_tags (run_id, tag, created_at) VALUES (?, ?, ?)",
            [(run_id, tag, now) for tag in tags],
        )
    return tags_of(store, [run_id]).get(run_id, [])


def remove_tags(store: Store, run_id: int, tags: Iterable[str]) -> list[str]:
    """Take tags off a run (one it does not have is no error); returns its tags now."""
    with store.write() as conn:
        conn.executemany(
            "DELETE FROM run_tags WHERE run_id = ? AND tag = ?", [(run_id, t) for t in tags]
        )
    return tags_of(store, [run_id]).get(run_id, [])


def set_tags_and_note(store: Store, run_id: int, tags: Iterable[str], note: str | None) -> None:
    """Replace a run's tags with `tags` and its note with `note`, in one
    transaction (what the TUI's tag/note form saves)."""
    wanted = list(tags)
    now = time.time()
    with store.write() as conn:
        conn.execute(
            f"DELETE FROM run_tags WHERE run_id = ? AND tag NOT IN ({_IDS})",
            (run_id, json.dumps(wanted)),
        )
        conn.executemany(
            "INSERT OR IGNORE INTO run_tags (run_id, tag, created_at) VALUES (?, ?, ?)",
            [(run_id, tag, now) for tag in wanted],
        )
        conn.execute("UPDATE runs SET note = ? WHERE id = ?", (note or None, run_id))


def set_note(store: Store, run_id: int, note: str | None) -> bool:
    """Set (None or "": clear) a run's note; returns whether the run exists."""
    with store.write() as conn:
        return (
            conn.execute(
                "UPDATE runs SET note = ? WHERE id = ?", (note or None, run_id)
            ).rowcount
            > 0
        )


def set_archived(store: Store, run_ids: Sequence[int], archived: bool) -> list[int]:
    """Archive (or unarchive) runs, with a `run.archived` (`run.unarchived`)
    event each; returns the runs that changed (an archived run stays archived
    since its first archiving)."""
    now = time.time()
    kind = "run.archived" if archived else "run.unarchived"
    changed = []
    with store.write() as conn:
        for run_id in run_ids:
            sql = (
                "UPDATE runs SET archived_at = ? WHERE id = ? AND archived_at IS NULL"
                if archived
                else "UPDATE runs SET archived_at = NULL WHERE id = ?"
                " AND archived_at IS NOT NULL"
            )
            args: tuple[Any, ...] = (now, run_id) if archived else (run_id,)
            if conn.execute(sql, args).rowcount:
                changed.append(run_id)
                add_event(
                    conn,
                    kind,
                    f"run {run_id} {kind.removeprefix('run.')}",
                    ts=now,
                    project_id=_project_of(store, run_id),
                    run_id=run_id,
                )
    return changed


# --- deleting runs ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Blocker:
    """Why a run cannot be deleted."""

    run_id: int
    reason: str


def delete_blockers(store: Store, run_ids: Sequence[int]) -> list[Blocker]:
    """Why any of these runs cannot be deleted now: it is queued or running, a
    model version was registered from it, or it is the parent (a sweep) of runs
    that are not being deleted with it."""
    encoded = _ids(run_ids)
    found = []
    for run_id, status in store.conn.execute(
        f"SELECT id, status FROM runs WHERE id IN ({_IDS}) AND status IN ('queued', 'running')"
        " ORDER BY id",
        (encoded,),
    ):
        found.append(Blocker(run_id, f"it is {status}; stop it first (`workbench run stop`)"))
    for run_id, project, version in store.conn.execute(
        "SELECT v.run_id, p.name, v.version FROM model_versions v"
        f" JOIN projects p ON p.id = v.project_id WHERE v.run_id IN ({_IDS}) ORDER BY v.run_id",
        (encoded,),
    ):
        found.append(
            Blocker(
                run_id,
                f"model version {version} of {project} was registered from it and needs it;"
                " archive the run instead",
            )
        )
    for parent, children in store.conn.execute(
        f"SELECT parent_id, COUNT(*) FROM runs WHERE parent_id IN ({_IDS})"
        f" AND id NOT IN ({_IDS}) GROUP BY parent_id ORDER BY parent_id",
        (encoded, encoded),
    ):
        found.append(
            Blocker(parent, f"{children} run(s) of it (its trials) would be left; delete them too")
        )
    return found


@dataclass(frozen=True, slots=True)
class BlobUse:
    """An artifact blob of the runs being deleted, and whether anything else needs it."""

    sha256: str
    size: int
    needed: bool


def blobs_of(store: Store, run_ids: Sequence[int]) -> list[BlobUse]:
    """The artifact blobs these runs logged (each once), and for each whether a
    run not in `run_ids` logged the same content or a model version needs it
    (its model, feature schema or hold-out): those stay when the runs go."""
    encoded = _ids(run_ids)
    rows = store.conn.execute(
        f"SELECT sha256, MAX(size) FROM artifacts WHERE run_id IN ({_IDS})"
        " GROUP BY sha256 ORDER BY sha256",
        (encoded,),
    ).fetchall()
    if not rows:
        return []
    shas = json.dumps([str(sha) for sha, _ in rows])
    needed = {
        str(sha)
        for (sha,) in store.conn.execute(
            f"SELECT sha256 FROM artifacts WHERE sha256 IN ({_IDS}) AND run_id NOT IN ({_IDS})"
            f" UNION SELECT model_sha256 FROM model_versions WHERE model_sha256 IN ({_IDS})"
            f" UNION SELECT schema_sha256 FROM model_versions WHERE schema_sha256 IN ({_IDS})"
            f" UNION SELECT holdout_sha256 FROM model_versions WHERE holdout_sha256 IN ({_IDS})",
            (shas, encoded, shas, shas, shas),
        )
    }
    return [
        BlobUse(str(sha), int(size) if type(size) is int else 0, str(sha) in needed)
        for sha, size in rows
    ]


def existing(store: Store, run_ids: Sequence[int]) -> list[int]:
    """Which of these runs exist, in id order."""
    return [
        int(run_id)
        for (run_id,) in store.conn.execute(
            f"SELECT id FROM runs WHERE id IN ({_IDS}) ORDER BY id", (_ids(run_ids),)
        )
    ]


def delete_runs(store: Store, run_ids: Sequence[int]) -> tuple[list[int], list[str]]:
    """Delete runs and every row that belongs to them, with a `run.deleted`
    event each, in one transaction that checks `delete_blockers` again (a run
    started or registered meanwhile raises ValueError naming it). Returns the
    deleted run ids and the artifact blobs (SHA-256) nothing needs any more,
    for the caller to remove once the rows are gone."""
    with store.write() as conn:
        blockers = delete_blockers(store, run_ids)
        if blockers:
            raise ValueError(f"run {blockers[0].run_id} cannot be deleted: {blockers[0].reason}")
        ids = existing(store, run_ids)
        unneeded = [b.sha256 for b in blobs_of(store, ids) if not b.needed]
        projects = {
            int(run_id): project_id
            for run_id, project_id in conn.execute(
                f"SELECT id, project_id FROM runs WHERE id IN ({_IDS})", (_ids(ids),)
            )
        }
        # Trials (children) first: a run's parent must outlive it.
        for run_id in sorted(ids, key=lambda rid: _depth(store, rid), reverse=True):
            conn.execute("DELETE FROM metric_series WHERE run_id = ?", (run_id,))
            conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))
            add_event(
                conn,
                "run.deleted",
                f"run {run_id} deleted",
                ts=time.time(),
                project_id=projects.get(run_id),
                data={"run": run_id},
            )
    return ids, unneeded


def _depth(store: Store, run_id: int) -> int:
    """How many parents a run has above it (a trial of a sweep: 1)."""
    depth, current = 0, run_id
    while depth < 100:
        parent = store.scalar("SELECT parent_id FROM runs WHERE id = ?", (current,))
        if parent is None:
            break
        depth, current = depth + 1, int(parent)
    return depth
