"""Reading runs back: listings, the full `run show` document, liveness.

Nothing here writes: a run whose owner is gone is *shown* as lost (computed
now); `workbench.runs.reconcile` is what records it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from workbench.core.errors import NotFoundError
from workbench.store import Store
from workbench.store import run_notes
from workbench.store import runs as run_store
from workbench.store.metrics import latest_values
from workbench.store.runs import ListedRun, Run, RunStatus

__all__ = [
    "REMOTE_HEARTBEAT_TIMEOUT_S",
    "count_runs",
    "duration",
    "find_run",
    "get_run",
    "iso",
    "list_page",
    "list_runs",
    "lost_runs",
    "refresh_liveness",
    "show_run",
]



def __getattr__(name: str) -> Any:
    # Liveness needs psutil: imported when first used, so a listing of
    # finished runs starts without it.
    if name == "refresh_liveness":  # for callers that mark lost runs themselves; it writes
        from workbench.runs.liveness import mark_lost

        return mark_lost
    if name == "REMOTE_HEARTBEAT_TIMEOUT_S":
        from workbench.runs.liveness import REMOTE_HEARTBEAT_TIMEOUT_S

        return REMOTE_HEARTBEAT_TIMEOUT_S
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def iso(ts: float | None) -> str | None:
    """UTC ISO 8601 to the second, e.g. 2026-11-28T01:05:20Z."""
    return None if ts is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def duration(row: dict[str, Any]) -> float | None:
    if row["started_at"] is None:
        return None
    end = row["ended_at"] if row["ended_at"] is not None else time.time()
    return round(end - row["started_at"], 3)


def lost_runs(store: Store, run_id: int | None = None) -> set[int]:
    """Ids of the runs marked running whose owner is gone, for a listing to show
    them lost (reads only)."""
    from workbench.runs.liveness import gone

    return {run.id for run in gone(store, run_id)}


def count_runs(
    store: Store,
    project: str | None = None,
    *,
    tag: str | None = None,
    archived: bool | None = None,
) -> int:
    """How many runs there are (of one project, or all; with `tag`; archived or
    not, or both when None)."""
    return run_store.count(store, project, tag=tag, archived=archived)


def shown_status(run: Run | ListedRun, lost: set[int]) -> RunStatus:
    """The status to show: `lost` for a run marked running whose owner is gone."""
    return RunStatus.LOST if run.id in lost and run.status is RunStatus.RUNNING else run.status


def list_runs(
    store: Store, project: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Runs newest first, at most `limit` of them (all when None), as the
    `run list --json` documents."""
    return _documents(store, run_store.listing(store, project, limit))


def list_page(
    store: Store,
    project: str | None = None,
    limit: int | None = None,
    after: int | None = None,
    *,
    tag: str | None = None,
    archived: bool | None = False,
) -> tuple[list[dict[str, Any]], bool]:
    """One page of runs newest first: at most `limit` (all when None) of those
    whose id is below `after` (when given), as `list_runs` documents them, and
    whether older runs follow (the next page then starts after the last one).
    Only runs tagged `tag` when given; archived runs are left out (`archived`
    False), the only ones (True) or listed with the rest (None)."""
    runs = run_store.page(
        store,
        project,
        None if limit is None else limit + 1,
        before=after,
        tag=tag,
        archived=archived,
    )
    more = limit is not None and len(runs) > limit
    return _documents(store, runs[:limit] if more else runs), more


def _documents(store: Store, runs: Sequence[Run | ListedRun]) -> list[dict[str, Any]]:
    lost = lost_runs(store) if any(r.status is RunStatus.RUNNING for r in runs) else set()
    metrics = _final_metrics(store, [r.id for r in runs])
    tags = run_notes.tags_of(store, [r.id for r in runs])
    return [
        {
            "id": run.id,
            "project": run.project,
            "status": shown_status(run, lost).value,
            "trainer": run.trainer,
            "exit_code": run.exit_code,
            "created_at": iso(run.created_at),
            "started_at": iso(run.started_at),
            "ended_at": iso(run.ended_at),
            "duration_s": run.duration(),
            "metrics": metrics.get(run.id, {}),
            "tags": tags.get(run.id, []),
        }
        for run in runs
    ]


def find_run(store: Store, run_id: int | str) -> Run:
    """The run a user named (an id as typed); NotFoundError names what was wrong."""
    text = str(run_id)
    shown = repr(text if len(text) <= 40 else text[:40] + "...")
    if not (text.isascii() and text.isdigit()):
        raise NotFoundError(f"run ids are whole numbers; got {shown}")
    if len(text) > 19 or int(text) >= 2**63:  # beyond SQLite's integers: no such run
        raise NotFoundError(f"no run {shown}; `workbench run list` shows the runs")
    run = run_store.get(store, int(text))
    if run is None:
        raise NotFoundError(f"no run {int(text)}; `workbench run list` shows the runs")
    return run


def get_run(store: Store, run_id: int | str) -> dict[str, Any]:
    """`find_run` as a dict of the run's columns and its project's name."""
    return find_run(store, run_id).as_dict()


def show_run(store: Store, run_id: int | str) -> dict[str, Any]:
    """The `run show --json` document."""
    from workbench.core import paths
    from workbench.data.versions import run_datasets
    from workbench.runs import process_tree

    run = find_run(store, run_id)
    lost = lost_runs(store, run.id) if run.status is RunStatus.RUNNING else set()
    status = shown_status(run, lost)
    rid = run.id
    notes = run_notes.notes_of(store, [rid]).get(rid) or run_notes.RunNotes(rid)
    artifacts = [
        {
            "name": a.name,
            "sha256": a.sha256,
            "size": a.size,
            "kind": a.kind,
            "path": str(paths.artifact_file(a.sha256)),
        }
        for a in run_store.artifacts(store, rid)
    ]
    return {
        "id": rid,
        "project": run.project,
        "status": status.value,
        "trainer": run.trainer,
        "exit_code": run.exit_code,
        "message": run.message,
        "params": run_store.params(store, rid),
        "metrics": _final_metrics(store, [rid]).get(rid, {}),
        "resources": resources(store, run),
        "artifacts": artifacts,
        "created_at": iso(run.created_at),
        "started_at": iso(run.started_at),
        "ended_at": iso(run.ended_at),
        "duration_s": run.duration(),
        "heartbeat_at": iso(run.heartbeat_at),
        "pid": run.pid,
        "priority": run.priority,
        "survivors": [p.pid for p in process_tree.survivors(run)]
        if status is RunStatus.LOST
        else [],
        "environment": _environment(run.environment),
        "datasets": [
            {k: d[k] for k in ("id", "sha256", "path", "rows", "role")}
            for d in run_datasets(store, rid)
        ],
        "log": str(paths.run_log(rid)),
        "tags": list(notes.tags),
        "note": notes.note,
        "archived_at": iso(notes.archived_at),
    }


def _environment(text: str | None) -> dict[str, Any] | None:
    """The recorded environment; None when it is missing or not a JSON object."""
    try:
        found = json.loads(text) if text else None
    except (ValueError, RecursionError):
        return None
    return found if isinstance(found, dict) else None


def resources(store: Store, run: Run | dict[str, Any]) -> dict[str, Any]:
    """The `resources` part of `run show`: sample counts and peaks, the tree's
    CPU time and peak RSS from rusage, and per-GPU peaks (None without a GPU)."""
    record = run if isinstance(run, dict) else run.as_dict()
    agg = run_store.resource_totals(store, record["id"])
    if agg.get("cpu_percent_mean") is not None:
        agg["cpu_percent_mean"] = round(agg["cpu_percent_mean"], 2)
    agg["cpu_time_s"] = record["cpu_time_s"]
    agg["peak_process_rss_bytes"] = record["max_rss_bytes"]
    if not agg.get("rss_bytes_max"):
        # Over before its first sample, or sampled only as it exited (a quick fit
        # forked ready from the warm server): the peak its trainer's process
        # reached is what is known.
        agg["rss_bytes_max"] = record["max_rss_bytes"]
    agg["gpu"] = _gpu_summary(store, record["id"])
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
    for readings in run_store.gpu_readings(store, run_id):
        for reading in readings:
            if type(reading.get("index")) is not int:
                continue  # not a reading this workbench wrote
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
                if type(value) in (int, float):
                    device[key] = value if device[key] is None else max(device[key], value)
    return [per_device[i] for i in sorted(per_device)] or None


def _final_metrics(store: Store, run_ids: list[int]) -> dict[int, dict[str, float | None]]:
    """Latest value of every metric key, per run."""
    return latest_values(store.conn, run_ids)
