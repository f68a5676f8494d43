"""The SQL of project archives (`workbench.archive`): reading a project's records
with global identities (uuids) in place of local ids, and writing imported ones.

Records travel as `Table`s: a name, its columns, and rows of plain values, in
which every reference to a run, dataset version or model version is its uuid
and every reference to a project is its name. The importer maps them to the
local integer ids, which are assigned anew.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.store import metrics as metric_points
from workbench.store.db import Store

# Only finished runs travel: a queued or running run belongs to the machine it runs on.
FINISHED = ("succeeded", "failed", "stopped", "lost")


@dataclass(frozen=True, slots=True)
class Table:
    """Rows of one kind of record, as they travel in an archive."""

    name: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


@dataclass(frozen=True, slots=True)
class Series:
    """One metric series of a run: its points in logged order."""

    run_uuid: str
    key: str
    steps: tuple[int | None, ...]
    ts: tuple[float, ...]
    values: tuple[float | None, ...]


@dataclass(frozen=True, slots=True)
class Local:
    """A record already in this store, by uuid: its id and what identifies its content."""

    id: int
    uuid: str
    project_id: int
    fingerprint: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class ProjectRow:
    id: int
    name: str
    path: str
    created_at: float


# Columns of each table as exported (references by uuid / project name).
RUN_COLUMNS = (
    "uuid",
    "project",
    "parent_uuid",
    "status",
    "trainer",
    "priority",
    "created_at",
    "started_at",
    "ended_at",
    "exit_code",
    "hostname",
    "cpu_time_s",
    "max_rss_bytes",
    "message",
    "environment",
)
# What users add to a run (format version 2): its note and archive time travel
# in runs.jsonl beside RUN_COLUMNS, its tags in run_tags.jsonl.
RUN_NOTE_COLUMNS = ("note", "archived_at")
TAG_COLUMNS = ("run_uuid", "tag", "created_at")
# What makes two copies of a run the same run in the same state.
RUN_FINGERPRINT = ("status", "trainer", "created_at", "started_at", "ended_at", "exit_code")
DATASET_COLUMNS = (
    "uuid",
    "project",
    "sha256",
    "path",
    "format",
    "rows",
    "columns",
    "size_bytes",
    "mtime_ns",
    "created_at",
)
MODEL_COLUMNS = (
    "uuid",
    "project",
    "version",
    "run_uuid",
    "framework",
    "framework_version",
    "model_name",
    "model_sha256",
    "schema_sha256",
    "holdout_sha256",
    "task",
    "metric",
    "metrics",
    "created_at",
)
RESOURCE_COLUMNS = (
    "ts",
    "cpu_percent",
    "rss_bytes",
    "num_threads",
    "num_procs",
    "read_bytes",
    "write_bytes",
    "sys_cpu_percent",
    "sys_mem_percent",
    "sys_mem_used",
    "gpu",
)
PROMOTION_COLUMNS = (
    "metric",
    "challenger_score",
    "champion_score",
    "margin",
    "rescored",
    "promoted",
    "reason",
    "created_at",
    "method",
    "interval_low",
    "interval_high",
    "evaluation_rows",
)
PIPELINE_COLUMNS = (
    "trigger",
    "files",
    "state",
    "outcome",
    "exit_code",
    "created_at",
    "started_at",
    "ended_at",
    "error",
)
STEP_COLUMNS = ("step", "file", "status", "summary", "detail", "started_at", "ended_at")


def _table(store: Store, name: str, sql: str, args: Sequence[Any] = ()) -> Table:
    cursor = store.conn.execute(sql, tuple(args))
    columns = tuple(d[0] for d in cursor.description)
    return Table(name, columns, tuple(cursor.fetchall()))


def _ids(ids: Iterable[int]) -> str:
    return json.dumps(sorted(set(ids)))


# -- reading -----------------------------------------------------------------------


def projects(store: Store, names: Sequence[str]) -> list[ProjectRow]:
    rows = store.conn.execute(
        "SELECT id, name, path, created_at FROM projects WHERE name IN"
        " (SELECT value FROM json_each(?)) ORDER BY name",
        (json.dumps(list(names)),),
    ).fetchall()
    return [ProjectRow(*row) for row in rows]


def project_by_name(store: Store, name: str) -> ProjectRow | None:
    row = store.conn.execute(
        "SELECT id, name, path, created_at FROM projects WHERE name = ?", (name,)
    ).fetchone()
    return ProjectRow(*row) if row else None


def project_by_path(store: Store, path: str) -> ProjectRow | None:
    row = store.conn.execute(
        "SELECT id, name, path, created_at FROM projects WHERE path = ?", (path,)
    ).fetchone()
    return ProjectRow(*row) if row else None


def changed_run_ids(
    store: Store,
    project_ids: Sequence[int],
    *,
    since: float | None = None,
    run_ids: Sequence[int] | None = None,
) -> list[int]:
    """The finished runs of the projects to export: all of them, those changed
    after `since` (created, ended, a metric point, a model version or an
    artifact after it), or those of `run_ids`; plus the runs of model versions
    registered after `since`."""
    sql = (
        "SELECT r.id FROM runs r WHERE r.project_id IN (SELECT value FROM json_each(?))"
        " AND r.status IN ('succeeded', 'failed', 'stopped', 'lost')"
    )
    args: list[Any] = [_ids(project_ids)]
    if run_ids is not None:
        sql += " AND r.id IN (SELECT value FROM json_each(?))"
        args.append(_ids(run_ids))
    if since is not None:
        sql += (
            " AND (r.created_at > ? OR r.ended_at > ?"
            " OR EXISTS (SELECT 1 FROM metric_series s WHERE s.run_id = r.id AND s.ts > ?)"
            " OR EXISTS (SELECT 1 FROM artifacts a WHERE a.run_id = r.id AND a.created_at > ?)"
            " OR EXISTS (SELECT 1 FROM model_versions v WHERE v.run_id = r.id"
            " AND v.created_at > ?)"
            " OR r.archived_at > ? OR r.notes_changed_at > ?"
            " OR EXISTS (SELECT 1 FROM run_tags t WHERE t.run_id = r.id AND t.created_at > ?))"
        )
        args.extend([since] * 8)
    return [int(r[0]) for r in store.conn.execute(sql + " ORDER BY r.id", args)]


def export_tables(
    store: Store, project_ids: Sequence[int], run_ids: Sequence[int], since: float | None
) -> dict[str, Table]:
    """Every record of the export but the metric points, by table name."""
    pids, rids = _ids(project_ids), _ids(run_ids)
    in_runs = "IN (SELECT value FROM json_each(?))"
    since_v = -1.0 if since is None else since
    out: dict[str, Table] = {}
    out["projects"] = _table(
        store,
        "projects",
        f"SELECT name, path, created_at FROM projects WHERE id {in_runs} ORDER BY name",
        [pids],
    )
    run_cols = ", ".join(
        f"r.{c}" for c in (*RUN_COLUMNS, *RUN_NOTE_COLUMNS) if c not in ("project", "parent_uuid")
    )
    out["runs"] = _table(
        store,
        "runs",
        f"SELECT {run_cols}, p.name AS project, pr.uuid AS parent_uuid FROM runs r"
        " JOIN projects p ON p.id = r.project_id LEFT JOIN runs pr ON pr.id = r.parent_id"
        f" WHERE r.id {in_runs} ORDER BY r.id",
        [rids],
    )
    out["run_tags"] = _table(
        store,
        "run_tags",
        "SELECT r.uuid AS run_uuid, t.tag, t.created_at FROM run_tags t"
        f" JOIN runs r ON r.id = t.run_id WHERE t.run_id {in_runs} ORDER BY t.run_id, t.tag",
        [rids],
    )
    out["params"] = _table(
        store,
        "params",
        "SELECT r.uuid AS run_uuid, x.key, x.value FROM params x JOIN runs r ON r.id = x.run_id"
        f" WHERE x.run_id {in_runs} ORDER BY x.run_id, x.key",
        [rids],
    )
    out["artifacts"] = _table(
        store,
        "artifacts",
        "SELECT r.uuid AS run_uuid, a.name, a.sha256, a.size, a.kind, a.created_at"
        f" FROM artifacts a JOIN runs r ON r.id = a.run_id WHERE a.run_id {in_runs}"
        " ORDER BY a.run_id, a.name",
        [rids],
    )
    out["resources"] = _table(
        store,
        "resources",
        "SELECT r.uuid AS run_uuid, "
        + ", ".join(f"x.{c}" for c in RESOURCE_COLUMNS)
        + f" FROM resource_samples x JOIN runs r ON r.id = x.run_id WHERE x.run_id {in_runs}"
        " ORDER BY x.run_id, x.ts",
        [rids],
    )
    out["events"] = _table(
        store,
        "events",
        "SELECT r.uuid AS run_uuid, p.name AS project, e.ts, e.kind, e.message, e.data"
        " FROM events e JOIN runs r ON r.id = e.run_id LEFT JOIN projects p ON p.id = e.project_id"
        f" WHERE e.run_id {in_runs} ORDER BY e.id",
        [rids],
    )
    out["dataset_versions"] = _table(
        store,
        "dataset_versions",
        "SELECT v.uuid, p.name AS project, v.sha256, v.path, v.format, v.rows, v.columns,"
        " v.size_bytes, v.mtime_ns, v.created_at FROM dataset_versions v"
        f" JOIN projects p ON p.id = v.project_id WHERE v.project_id {in_runs}"
        " AND (v.created_at > ? OR v.id IN (SELECT dataset_version_id FROM run_datasets"
        f" WHERE run_id {in_runs})) ORDER BY v.id",
        [pids, since_v, rids],
    )
    out["run_datasets"] = _table(
        store,
        "run_datasets",
        "SELECT r.uuid AS run_uuid, v.uuid AS dataset_uuid, rd.role FROM run_datasets rd"
        " JOIN runs r ON r.id = rd.run_id JOIN dataset_versions v ON v.id = rd.dataset_version_id"
        f" WHERE rd.run_id {in_runs} ORDER BY rd.run_id",
        [rids],
    )
    out["model_versions"] = _table(
        store,
        "model_versions",
        "SELECT v.uuid, p.name AS project, v.version, r.uuid AS run_uuid, v.framework,"
        " v.framework_version, v.model_name, v.model_sha256, v.schema_sha256,"
        " v.holdout_sha256, v.task, v.metric, v.metrics, v.created_at FROM model_versions v"
        " JOIN projects p ON p.id = v.project_id JOIN runs r ON r.id = v.run_id"
        f" WHERE v.run_id {in_runs} ORDER BY v.id",
        [rids],
    )
    out["model_aliases"] = _table(
        store,
        "model_aliases",
        "SELECT p.name AS project, a.alias, v.uuid AS version_uuid, a.updated_at"
        " FROM model_aliases a JOIN projects p ON p.id = a.project_id"
        " JOIN model_versions v ON v.id = a.version_id"
        f" WHERE a.project_id {in_runs} AND (a.updated_at > ? OR v.run_id {in_runs})"
        " ORDER BY p.name, a.alias",
        [pids, since_v, rids],
    )
    out["promotions"] = _table(
        store,
        "promotions",
        "SELECT p.name AS project, x.alias, c.uuid AS challenger_uuid, h.uuid AS champion_uuid, "
        + ", ".join(f"x.{c}" for c in PROMOTION_COLUMNS)
        + " FROM promotions x JOIN projects p ON p.id = x.project_id"
        " JOIN model_versions c ON c.id = x.challenger_id"
        " LEFT JOIN model_versions h ON h.id = x.champion_id"
        f" WHERE c.run_id {in_runs} ORDER BY x.id",
        [rids],
    )
    pipelines = _table(
        store,
        "pipelines",
        "SELECT x.id, p.name AS project, "
        + ", ".join(f"x.{c}" for c in PIPELINE_COLUMNS)
        + " FROM pipelines x JOIN projects p ON p.id = x.project_id"
        f" WHERE x.project_id {in_runs} AND x.state IN ('done', 'failed')"
        " AND (x.created_at > ? OR x.ended_at > ?) ORDER BY x.id",
        [pids, since_v, since_v],
    )
    steps = _table(
        store,
        "pipeline_steps",
        "SELECT pipeline_id, " + ", ".join(STEP_COLUMNS) + " FROM pipeline_steps"
        " WHERE pipeline_id IN (SELECT value FROM json_each(?)) ORDER BY id",
        [_ids(row[0] for row in pipelines.rows)],
    )
    by_pipeline: dict[int, list[dict[str, Any]]] = {}
    for step in steps.dicts():
        by_pipeline.setdefault(step.pop("pipeline_id"), []).append(step)
    out["pipelines"] = Table(
        "pipelines",
        (*pipelines.columns[1:], "steps"),
        tuple((*row[1:], by_pipeline.get(row[0], [])) for row in pipelines.rows),
    )
    return out


def metric_series(store: Store, run_ids: Sequence[int]) -> Iterable[Series]:
    """Every metric series of the runs, points in logged order, one series at a time."""
    heads = store.conn.execute(
        "SELECT s.id, r.uuid, s.key FROM metric_series s JOIN runs r ON r.id = s.run_id"
        " WHERE s.run_id IN (SELECT value FROM json_each(?)) ORDER BY s.id",
        (_ids(run_ids),),
    ).fetchall()
    for series_id, run_uuid, key in heads:
        steps, stamps, values, _ = metric_points.read_columns(store.conn, series_id)
        yield Series(run_uuid, key, tuple(steps), tuple(stamps), tuple(values))


def referenced_blobs(store: Store, run_ids: Sequence[int], *, artifacts: bool) -> list[str]:
    """SHA-256 of the files the runs refer to: their model versions' files, and
    with `artifacts` every artifact of theirs."""
    rids = _ids(run_ids)
    found = {
        sha
        for row in store.conn.execute(
            "SELECT model_sha256, schema_sha256, holdout_sha256 FROM model_versions"
            " WHERE run_id IN (SELECT value FROM json_each(?))",
            (rids,),
        )
        for sha in row
        if sha
    }
    if artifacts:
        found.update(
            str(r[0])
            for r in store.conn.execute(
                "SELECT sha256 FROM artifacts WHERE run_id IN (SELECT value FROM json_each(?))",
                (rids,),
            )
        )
    return sorted(found)


def store_id(store: Store) -> str | None:
    row = store.conn.execute("SELECT value FROM store_meta WHERE key = 'store_id'").fetchone()
    return str(row[0]) if row else None


def watermark(store: Store, destination: str) -> float | None:
    row = store.conn.execute(
        "SELECT watermark FROM archive_exports WHERE destination = ?", (destination,)
    ).fetchone()
    return float(row[0]) if row else None


def set_watermark(store: Store, destination: str, value: float) -> None:
    with store.write() as conn:
        conn.execute(
            "INSERT OR REPLACE INTO archive_exports (destination, watermark, exported_at)"
            " VALUES (?, ?, ?)",
            (destination, value, time.time()),
        )


# -- what is here already ------------------------------------------------------------


def _by_uuid(store: Store, sql: str, uuids: Iterable[str]) -> dict[str, Local]:
    out: dict[str, Local] = {}
    for row in store.conn.execute(sql, (json.dumps(sorted(set(uuids))),)):
        out[row[1]] = Local(int(row[0]), str(row[1]), int(row[2]), tuple(row[3:]))
    return out


def local_runs(store: Store, uuids: Iterable[str]) -> dict[str, Local]:
    """Runs here by uuid; the fingerprint is RUN_FINGERPRINT's columns."""
    return _by_uuid(
        store,
        "SELECT id, uuid, project_id, " + ", ".join(RUN_FINGERPRINT) + " FROM runs"
        " WHERE uuid IN (SELECT value FROM json_each(?))",
        uuids,
    )


def local_models(store: Store, uuids: Iterable[str]) -> dict[str, Local]:
    """Model versions here by uuid; the fingerprint is (model_sha256, version)."""
    return _by_uuid(
        store,
        "SELECT id, uuid, project_id, model_sha256, version FROM model_versions"
        " WHERE uuid IN (SELECT value FROM json_each(?))",
        uuids,
    )


def local_datasets(store: Store, uuids: Iterable[str]) -> dict[str, Local]:
    return _by_uuid(
        store,
        "SELECT id, uuid, project_id, sha256 FROM dataset_versions"
        " WHERE uuid IN (SELECT value FROM json_each(?))",
        uuids,
    )


def dataset_by_sha(store: Store, project_id: int, sha256: str) -> int | None:
    row = store.conn.execute(
        "SELECT id FROM dataset_versions WHERE project_id = ? AND sha256 = ?",
        (project_id, sha256),
    ).fetchone()
    return int(row[0]) if row else None


def local_params(store: Store, run_id: int) -> dict[str, str]:
    return dict(
        store.conn.execute("SELECT key, value FROM params WHERE run_id = ?", (run_id,)).fetchall()
    )


def series_counts(store: Store, run_ids: Iterable[int]) -> dict[tuple[int, str], int]:
    """(run id, key) -> points, for the runs."""
    return {
        (int(r[0]), str(r[1])): int(r[2])
        for r in store.conn.execute(
            "SELECT run_id, key, count FROM metric_series"
            " WHERE run_id IN (SELECT value FROM json_each(?))",
            (_ids(run_ids),),
        )
    }


def series_steps(conn: sqlite3.Connection, run_id: int, key: str) -> set[tuple[Any, Any]]:
    """(step, ts) of every point of a series; a point without a step is known by its time."""
    found = metric_points.series_id(conn, run_id, key)
    if found is None:
        return set()
    steps, stamps, _, _ = metric_points.read_columns(conn, found[0])
    return {(step, ts if step is None else None) for step, ts in zip(steps, stamps, strict=True)}


def model_numbers(store: Store, project_id: int) -> set[int]:
    return {
        int(r[0])
        for r in store.conn.execute(
            "SELECT version FROM model_versions WHERE project_id = ?", (project_id,)
        )
    }


def has_pipeline(store: Store, project_id: int, created_at: float, trigger: str) -> bool:
    return (
        store.conn.execute(
            "SELECT 1 FROM pipelines WHERE project_id = ? AND created_at = ? AND trigger = ?",
            (project_id, created_at, trigger),
        ).fetchone()
        is not None
    )


def has_promotion(store: Store, challenger_id: int, alias: str, created_at: float) -> bool:
    return (
        store.conn.execute(
            "SELECT 1 FROM promotions WHERE challenger_id = ? AND alias = ? AND created_at = ?",
            (challenger_id, alias, created_at),
        ).fetchone()
        is not None
    )


def alias_target(store: Store, project_id: int, alias: str) -> int | None:
    row = store.conn.execute(
        "SELECT version_id FROM model_aliases WHERE project_id = ? AND alias = ?",
        (project_id, alias),
    ).fetchone()
    return int(row[0]) if row else None


@dataclass(frozen=True, slots=True)
class Proposal:
    """An alias another store gave a version, waiting to be accepted here."""

    project_id: int
    alias: str
    version_id: int
    version: int
    source_store: str | None
    proposed_at: float


def proposals(store: Store, project_id: int) -> list[Proposal]:
    rows = store.conn.execute(
        "SELECT a.project_id, a.alias, a.version_id, v.version, a.source_store, a.proposed_at"
        " FROM model_alias_proposals a JOIN model_versions v ON v.id = a.version_id"
        " WHERE a.project_id = ? ORDER BY a.alias, v.version",
        (project_id,),
    ).fetchall()
    return [Proposal(*row) for row in rows]


def drop_proposal(store: Store, project_id: int, alias: str, version_id: int) -> bool:
    """Remove a proposal; returns whether there was one."""
    with store.write() as conn:
        return (
            conn.execute(
                "DELETE FROM model_alias_proposals WHERE project_id = ? AND alias = ?"
                " AND version_id = ?",
                (project_id, alias, version_id),
            ).rowcount
            > 0
        )


def has_proposal(store: Store, project_id: int, alias: str, version_id: int) -> bool:
    return (
        store.conn.execute(
            "SELECT 1 FROM model_alias_proposals WHERE project_id = ? AND alias = ?"
            " AND version_id = ?",
            (project_id, alias, version_id),
        ).fetchone()
        is not None
    )


# -- writing (inside one transaction the importer holds) --------------------------


def insert_project(conn: sqlite3.Connection, name: str, path: str, created_at: float) -> int:
    cursor = conn.execute(
        "INSERT INTO projects (name, path, created_at) VALUES (?, ?, ?)", (name, path, created_at)
    )
    return int(cursor.lastrowid or 0)


def insert_run(
    conn: sqlite3.Connection, project_id: int, parent_id: int | None, run: dict[str, Any]
) -> int:
    names = [c for c in RUN_COLUMNS if c not in ("project", "parent_uuid")]
    cursor = conn.execute(
        f"INSERT INTO runs (project_id, parent_id, {', '.join(names)})"
        f" VALUES (?, ?, {', '.join('?' * len(names))})",
        (project_id, parent_id, *(run[c] for c in names)),
    )
    return int(cursor.lastrowid or 0)


def insert_tags(conn: sqlite3.Connection, rows: Iterable[tuple[int, str, float]]) -> None:
    """(run_id, tag, created_at) rows; a tag the run has already is kept as it is."""
    conn.executemany(
        "INSERT OR IGNORE INTO run_tags (run_id, tag, created_at) VALUES (?, ?, ?)", rows
    )


def set_run_notes(
    conn: sqlite3.Connection, run_id: int, note: str | None, archived_at: float | None
) -> None:
    conn.execute(
        "UPDATE runs SET note = ?, archived_at = ? WHERE id = ?", (note, archived_at, run_id)
    )


def overwrite_run(conn: sqlite3.Connection, run_id: int, run: dict[str, Any]) -> None:
    names = [c for c in RUN_COLUMNS if c not in ("uuid", "project", "parent_uuid")]
    conn.execute(
        f"UPDATE runs SET {', '.join(f'{c} = ?' for c in names)} WHERE id = ?",
        (*(run[c] for c in names), run_id),
    )


def replace_params(conn: sqlite3.Connection, run_id: int, params: dict[str, str]) -> None:
    conn.execute("DELETE FROM params WHERE run_id = ?", (run_id,))
    conn.executemany(
        "INSERT INTO params (run_id, key, value) VALUES (?, ?, ?)",
        [(run_id, k, v) for k, v in params.items()],
    )


def insert_artifacts(conn: sqlite3.Connection, rows: Iterable[tuple[Any, ...]]) -> None:
    """(run_id, name, sha256, size, kind, created_at) rows; a name already there is kept."""
    conn.executemany(
        "INSERT OR IGNORE INTO artifacts (run_id, name, sha256, size, kind, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )


def insert_resources(conn: sqlite3.Connection, rows: Iterable[tuple[Any, ...]]) -> None:
    conn.executemany(
        f"INSERT INTO resource_samples (run_id, {', '.join(RESOURCE_COLUMNS)})"
        f" VALUES (?, {', '.join('?' * len(RESOURCE_COLUMNS))})",
        rows,
    )


def insert_events(conn: sqlite3.Connection, rows: Iterable[tuple[Any, ...]]) -> None:
    """(ts, kind, project_id, run_id, message, data) rows."""
    conn.executemany(
        "INSERT INTO events (ts, kind, project_id, run_id, message, data)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )


def append_points(
    conn: sqlite3.Connection, run_id: int, key: str, points: Sequence[metric_points.Point]
) -> None:
    metric_points.append_points(conn, run_id, {key: points})


def insert_dataset(conn: sqlite3.Connection, project_id: int, row: dict[str, Any]) -> int:
    cursor = conn.execute(
        "INSERT INTO dataset_versions (uuid, project_id, sha256, path, format, rows, columns,"
        " size_bytes, mtime_ns, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            row["uuid"],
            project_id,
            row["sha256"],
            row["path"],
            row["format"],
            row["rows"],
            row["columns"],
            row["size_bytes"],
            row["mtime_ns"],
            row["created_at"],
        ),
    )
    return int(cursor.lastrowid or 0)


def link_datasets(conn: sqlite3.Connection, rows: Iterable[tuple[int, int, str]]) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO run_datasets (run_id, dataset_version_id, role) VALUES (?, ?, ?)",
        rows,
    )


def insert_model(
    conn: sqlite3.Connection, project_id: int, run_id: int, number: int, row: dict[str, Any]
) -> int:
    cursor = conn.execute(
        "INSERT INTO model_versions (uuid, project_id, version, run_id, framework,"
        " framework_version, model_name, model_sha256, schema_sha256, holdout_sha256, task,"
        " metric, metrics, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            row["uuid"],
            project_id,
            number,
            run_id,
            row["framework"],
            row["framework_version"],
            row["model_name"],
            row["model_sha256"],
            row["schema_sha256"],
            row["holdout_sha256"],
            row["task"],
            row["metric"],
            row["metrics"],
            row["created_at"],
        ),
    )
    return int(cursor.lastrowid or 0)


def set_alias(
    conn: sqlite3.Connection, project_id: int, alias: str, version_id: int, at: float
) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO model_aliases (project_id, alias, version_id, updated_at)"
        " VALUES (?, ?, ?, ?)",
        (project_id, alias, version_id, at),
    )


def propose_alias(
    conn: sqlite3.Connection,
    project_id: int,
    alias: str,
    version_id: int,
    source_store: str | None,
    at: float,
) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO model_alias_proposals"
        " (project_id, alias, version_id, source_store, proposed_at) VALUES (?, ?, ?, ?, ?)",
        (project_id, alias, version_id, source_store, at),
    )


def insert_promotion(
    conn: sqlite3.Connection,
    project_id: int,
    alias: str,
    challenger_id: int,
    champion_id: int | None,
    row: dict[str, Any],
) -> None:
    conn.execute(
        "INSERT INTO promotions (project_id, alias, challenger_id, champion_id, "
        + ", ".join(PROMOTION_COLUMNS)
        + f") VALUES (?, ?, ?, ?, {', '.join('?' * len(PROMOTION_COLUMNS))})",
        (project_id, alias, challenger_id, champion_id, *(row[c] for c in PROMOTION_COLUMNS)),
    )


def insert_pipeline(conn: sqlite3.Connection, project_id: int, row: dict[str, Any]) -> None:
    cursor = conn.execute(
        f"INSERT INTO pipelines (project_id, {', '.join(PIPELINE_COLUMNS)})"
        f" VALUES (?, {', '.join('?' * len(PIPELINE_COLUMNS))})",
        (project_id, *(row[c] for c in PIPELINE_COLUMNS)),
    )
    pipeline_id = int(cursor.lastrowid or 0)
    conn.executemany(
        f"INSERT OR IGNORE INTO pipeline_steps (pipeline_id, {', '.join(STEP_COLUMNS)})"
        f" VALUES (?, {', '.join('?' * len(STEP_COLUMNS))})",
        [(pipeline_id, *(s.get(c) for c in STEP_COLUMNS)) for s in row.get("steps") or []],
    )
