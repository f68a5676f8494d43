"""Reading runs back: listings, the full `run show` document, liveness."""

from __future__ import annotations

import json
import socket
import sqlite3
import time
from typing import Any

from workbench.core import paths
from workbench.data.versions import run_datasets
from workbench.core.errors import NotFoundError, StoreError
from workbench.runs import process_tree
from workbench.store import Store
from workbench.store.metrics import latest_values

REMOTE_HEARTBEAT_TIMEOUT_S = 300.0

_LIST_SQL = """
SELECT r.id, p.name AS project, r.status, r.trainer, r.exit_code, r.created_at,
       r.started_at, r.ended_at, r.message
FROM runs r JOIN projects p ON p.id = r.project_id
"""


def iso(ts: float | None) -> str | None:
    """UTC ISO 8601 to the second, e.g. 2026-11-28T01:05:20Z."""
    return None if ts is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def duration(row: dict[str, Any]) -> float | None:
    if row["started_at"] is None:
        return None
    end = row["ended_at"] if row["ended_at"] is not None else time.time()
    return round(end - row["started_at"], 3)


def _gone(store: Store, run_id: int | None = None) -> list[dict[str, Any]]:
    """Runs marked running whose owning process is gone (read only)."""
    sql = (
        "SELECT id, project_id, supervisor_pid, supervisor_started_at, hostname, heartbeat_at"
        " FROM runs WHERE status = 'running'"
    )
    rows = store.rows(sql + (" AND id = ?" if run_id else ""), (run_id,) if run_id else ())
    here = socket.gethostname()
    gone = []
    for row in rows:
        if row["hostname"] and row["hostname"] != here:
            # Another machine's run (a shared store): its pid means nothing here,
            # so only a heartbeat silent for long says it is gone.
            if time.time() - (row["heartbeat_at"] or 0) < REMOTE_HEARTBEAT_TIMEOUT_S:
                continue
        elif process_tree.find(row["supervisor_pid"], row["supervisor_started_at"]):
            continue
        gone.append(row)
    return gone


def refresh_liveness(store: Store, run_id: int | None = None) -> int:
    """Mark `lost` every running run whose owning process is gone.

    The owner is matched by pid *and* create time, so a reused pid does not
    keep a dead run alive. The update is conditional on the status still being
    `running`, so a supervisor that finished between our read and our check
    keeps its real outcome. Returns how many runs were marked.
    """
    marked = 0
    for row in _gone(store, run_id):
        now = time.time()
        with store.write() as conn:
            changed = conn.execute(
                "UPDATE runs SET status = 'lost', ended_at = COALESCE(heartbeat_at, ?),"
                " message = 'its supervisor stopped without recording an outcome'"
                " WHERE id = ? AND status = 'running'",
                (now, row["id"]),
            ).rowcount
            if changed:
                store.add_event(
                    "run.lost",
                    f"run {row['id']} lost",
                    ts=now,
                    project_id=row["project_id"],
                    run_id=row["id"],
                )
        marked += changed
    return marked


def lost_runs(store: Store, run_id: int | None = None) -> set[int]:
    """Record runs whose owner is gone as lost; where the store cannot be written
    (read-only, a full disk) return their ids, for a listing to show them lost."""
    if store.readonly:
        return {row["id"] for row in _gone(store, run_id)}
    try:
        refresh_liveness(store, run_id)
    except (sqlite3.OperationalError, StoreError):
        return {row["id"] for row in _gone(store, run_id)}
    return set()


def count_runs(store: Store, project: str | None = None) -> int:
    """How many runs there are (of one project, or all)."""
    if project:
        return store.scalar(
            "SELECT COUNT(*) FROM runs r JOIN projects p ON p.id = r.project_id WHERE p.name = ?",
            (project,),
        )
    return store.scalar("SELECT COUNT(*) FROM runs")


def list_runs(
    store: Store, project: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Runs newest first, at most `limit` of them (all when None)."""
    lost = lost_runs(store)
    where, args = ("WHERE p.name = ?", (project,)) if project else ("", ())
    sql = f"{_LIST_SQL} {where} ORDER BY r.id DESC"
    if limit is not None:
        sql, args = sql + " LIMIT ?", (*args, int(limit))
    rows = store.rows(sql, args)
    ids = [r["id"] for r in rows]
    metrics = _final_metrics(store, ids)
    out = []
    for row in rows:
        if row["id"] in lost:
            row["status"] = "lost"
        out.append(
            {
                "id": row["id"],
                "project": row["project"],
                "status": row["status"],
                "trainer": row["trainer"],
                "exit_code": row["exit_code"],
                "created_at": iso(row["created_at"]),
                "started_at": iso(row["started_at"]),
                "ended_at": iso(row["ended_at"]),
                "duration_s": duration(row),
                "metrics": metrics.get(row["id"], {}),
            }
        )
    return out


def get_run(store: Store, run_id: int | str) -> dict[str, Any]:
    text = str(run_id)
    shown = repr(text if len(text) <= 40 else text[:40] + "...")
    if not (text.isascii() and text.isdigit()):
        raise NotFoundError(f"run ids are whole numbers; got {shown}")
    if len(text) > 19 or int(text) >= 2**63:  # beyond SQLite's integers: no such run
        raise NotFoundError(f"no run {shown}; `workbench run list` shows the runs")
    key = int(text)
    row = store.row(_LIST_SQL.replace("SELECT", "SELECT r.*,", 1) + " WHERE r.id = ?", (key,))
    if row is None:
        raise NotFoundError(f"no run {key}; `workbench run list` shows the runs")
    return row


def show_run(store: Store, run_id: int | str) -> dict[str, Any]:
    """The `run show --json` document."""
    row = get_run(store, run_id)
    if row["status"] == "running":
        if lost_runs(store, row["id"]):
            row["status"] = "lost"
        else:
            row = get_run(store, run_id)
    rid = row["id"]
    params = {
        r["key"]: json.loads(r["value"])
        for r in store.rows("SELECT key, value FROM params WHERE run_id = ? ORDER BY key", (rid,))
    }
    artifacts = store.rows(
        "SELECT name, sha256, size, kind FROM artifacts WHERE run_id = ? ORDER BY name", (rid,)
    )
    for artifact in artifacts:
        artifact["path"] = str(paths.artifact_file(artifact["sha256"]))
    return {
        "id": rid,
        "project": row["project"],
        "status": row["status"],
        "trainer": row["trainer"],
        "exit_code": row["exit_code"],
        "message": row["message"],
        "params": params,
        "metrics": _final_metrics(store, [rid]).get(rid, {}),
        "resources": resources(store, row),
        "artifacts": artifacts,
        "created_at": iso(row["created_at"]),
        "started_at": iso(row["started_at"]),
        "ended_at": iso(row["ended_at"]),
        "duration_s": duration(row),
        "heartbeat_at": iso(row["heartbeat_at"]),
        "pid": row["pid"],
        "priority": row["priority"],
        "survivors": [p.pid for p in process_tree.survivors(row)]
        if row["status"] == "lost"
        else [],
        "environment": json.loads(row["environment"]) if row["environment"] else None,
        "datasets": [
            {k: d[k] for k in ("id", "sha256", "path", "rows", "role")}
            for d in run_datasets(store, rid)
        ],
        "log": str(paths.run_log(rid)),
    }


def resources(store: Store, row: dict[str, Any]) -> dict[str, Any]:
    agg = (
        store.row(
            """SELECT COUNT(*) AS samples, MAX(cpu_percent) AS cpu_percent_max,
                  AVG(cpu_percent) AS cpu_percent_mean, MAX(rss_bytes) AS rss_bytes_max,
                  MAX(num_threads) AS threads_max, MAX(num_procs) AS procs_max,
                  MAX(read_bytes) AS read_bytes, MAX(write_bytes) AS write_bytes
           FROM resource_samples WHERE run_id = ?""",
            (row["id"],),
        )
        or {}
    )
    if agg.get("cpu_percent_mean") is not None:
        agg["cpu_percent_mean"] = round(agg["cpu_percent_mean"], 2)
    agg["cpu_time_s"] = row["cpu_time_s"]
    agg["peak_process_rss_bytes"] = row["max_rss_bytes"]
    agg["gpu"] = _gpu_summary(store, row["id"])
    return agg


def _gpu_summary(store: Store, run_id: int) -> list[dict[str, Any]] | None:
    """Per device: the peaks over the run, and whether the run's own processes
    were found on it ("process") or only device-wide figures exist ("device")."""
    per_device: dict[int, dict[str, Any]] = {}
    peaks = (
        ("utilization_max", "utilization"),
        ("memory_used_max", "memory_used"),
        ("temperature_max", "temperature"),
        ("power_w_max", "power_w"),
        ("process_memory_max", "process_memory"),
        ("process_utilization_max", "process_utilization"),
    )
    for (blob,) in store.conn.execute(
        "SELECT gpu FROM resource_samples WHERE run_id = ? AND gpu IS NOT NULL", (run_id,)
    ):
        for reading in json.loads(blob):
            device = per_device.setdefault(
                reading["index"],
                {
                    "index": reading["index"],
                    "memory_total": reading.get("memory_total"),
                    "attribution": "device",
                    **{key: None for key, _ in peaks},
                },
            )
            if reading.get("attribution") == "process":
                device["attribution"] = "process"
            for key, source in peaks:
                value = reading.get(source)
                if value is not None:
                    device[key] = value if device[key] is None else max(device[key], value)
    return [per_device[i] for i in sorted(per_device)] or None


def _final_metrics(store: Store, run_ids: list[int]) -> dict[int, dict[str, float | None]]:
    """Latest value of every metric key, per run."""
    return latest_values(store.conn, run_ids)
