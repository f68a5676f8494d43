"""Store access for the UI. Called from worker threads only, never on the event
loop; each thread gets its own connection."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from workbench.core import paths
from workbench.activity import recent_events
from workbench.core.gpu import GpuMonitor
from workbench.core.metric_rules import is_internal_param
from workbench.projects import list_projects, show_project
from workbench.runs.queries import list_runs, show_run
from workbench.store import Store, open_store
from workbench.store.metrics import series, series_list  # noqa: F401 (used by screens)

_local = threading.local()


def store() -> Store:
    current = getattr(_local, "store", None)
    if current is None:
        current = _local.store = open_store()
    return current


def home_snapshot() -> dict[str, Any]:
    """Projects with their best metric, and the latest activity."""
    from workbench.runs.queue import dispatch

    db = store()
    dispatch(db)  # queued runs start whenever anyone uses the store
    projects = []
    for project in list_projects(db):
        try:
            detail = show_project(db, project["name"])
        except Exception as exc:  # a broken project must not hide the others
            detail = {**project, "config_error": str(exc)}
        projects.append(detail)
    return {"projects": projects, "events": recent_events(db, 30)}


def project_runs(name: str, limit: int = 2000) -> dict[str, Any]:
    """The project, its newest runs with their params, and which params differ."""
    db = store()
    runs = list_runs(db, name, limit)
    params: dict[int, dict[str, Any]] = {}
    ids = [r["id"] for r in runs]
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for run_id, key, value in db.conn.execute(
            f"SELECT run_id, key, value FROM params WHERE run_id IN ({marks})", chunk
        ):
            if not is_internal_param(key):
                params.setdefault(run_id, {})[key] = json.loads(value)
    for run in runs:
        run["params"] = params.get(run["id"], {})
    keys = sorted({k for p in params.values() for k in p})
    differing = [k for k in keys if len({repr(p.get(k)) for p in params.values()}) > 1]
    return {"project": show_project(db, name), "runs": runs, "key_params": differing or keys[:3]}


def run_detail(run_id: int, keys: list[str], max_points: int = 400) -> dict[str, Any]:
    db = store()
    info = show_run(db, run_id)
    info["series_keys"] = series_list(db.conn, run_id)
    info["series"] = {k: series(db.conn, run_id, k, max_points) for k in keys}
    info["samples"] = db.rows(
        "SELECT ts, cpu_percent, rss_bytes, gpu FROM resource_samples WHERE run_id = ?"
        " ORDER BY ts DESC LIMIT ?",
        (run_id, max_points),
    )[::-1]
    return info


def read_log(run_id: int, offset: int, limit: int = 256 * 1024) -> tuple[bytes, int]:
    """New log bytes from `offset`; returns them and the next offset."""
    log = paths.run_log(run_id)
    if not log.exists():
        return b"", offset
    with open(log, "rb") as fh:
        fh.seek(offset)
        chunk = fh.read(limit)
    return chunk, offset + len(chunk)


class SystemSampler:
    """System-wide CPU, RAM and GPU readings for the home screen's strip."""

    def __init__(self) -> None:
        self.gpu = GpuMonitor()
        psutil.cpu_percent(interval=None)

    def sample(self) -> dict[str, Any]:
        memory = psutil.virtual_memory()
        gpus = self.gpu.sample() if self.gpu.available else None
        return {
            "ts": time.time(),
            "cpu": psutil.cpu_percent(interval=None),
            "ram": memory.percent,
            "gpus": gpus,
        }


def data_overview(name: str) -> dict[str, Any]:
    """Dataset versions with their latest reports, and the latest drift report."""
    from workbench.data.versions import list_versions
    from workbench.projects import get_project

    db = store()
    project = get_project(db, name)
    versions = list_versions(db, project["id"])
    latest: dict[tuple[int, str], dict] = {}
    for row in db.rows(
        "SELECT id, dataset_version_id, kind, passed, file, created_at FROM data_reports"
        " WHERE project_id = ? ORDER BY id",
        (project["id"],),
    ):
        latest[(row["dataset_version_id"], row["kind"])] = row
    for version in versions:
        version["validation"] = latest.get((version["id"], "validation"))
        version["drift"] = latest.get((version["id"], "drift"))
    # A batch refused before it became a dataset version (unreadable, wrong
    # columns) has a failed report and no version: list it with its reason.
    rejected = []
    for row in db.rows(
        "SELECT id, file, report, created_at FROM data_reports WHERE project_id = ?"
        " AND dataset_version_id IS NULL AND passed = 0 ORDER BY id DESC LIMIT 20",
        (project["id"],),
    ):
        found = {"id": row["id"], "file": row["file"], "reason": _reason(row["report"])}
        # The batch may have become a version all the same (registered, then
        # refused): its verdict goes on that version's row.
        same = [v for v in versions if v["path"] == row["file"] and not v["validation"]]
        if same:
            same[0]["validation"] = {"passed": 0, "rejected": found["reason"]}
        else:
            rejected.append(found)
    drift = db.row(
        "SELECT report FROM data_reports WHERE project_id = ? AND kind = 'drift'"
        " ORDER BY id DESC LIMIT 1",
        (project["id"],),
    )
    report = json.loads(drift["report"]) if drift else None
    profile = None
    if report:
        cached = db.scalar(
            "SELECT profile FROM reference_profiles WHERE dataset_version_id = ?",
            (report["reference"]["id"],),
        )
        profile = json.loads(cached) if cached else None
    return {"versions": versions, "drift": report, "profile": profile, "rejected": rejected}


def _reason(report: str | None) -> str:
    """The first failed error check of a stored report, in one line."""
    try:
        document = json.loads(report or "{}")
    except ValueError:
        return "unreadable report"
    checks = document.get("checks") if isinstance(document, dict) else None
    checks = [c for c in checks if isinstance(c, dict)] if isinstance(checks, list) else []
    failed = [c for c in checks if not c.get("passed") and c.get("severity") == "error"]
    failed = failed or [c for c in checks if not c.get("passed")]
    if not failed:
        return "failed validation"
    text = " ".join(str(failed[0].get("message") or failed[0].get("name") or "").split())
    return text[:500] or "failed validation"


def current_histogram(file: str, column: str, edges: list[float]) -> list[int] | None:
    """Counts of a batch's column in the reference's bins, for plotting side by side."""
    import numpy as np
    import pandas as pd

    from workbench.data.reading import Malformed, read_checked

    try:
        values = pd.to_numeric(read_checked(Path(file))[column], errors="coerce").dropna()
    except (Malformed, KeyError):
        return None
    counts, _ = np.histogram(values.clip(edges[0], edges[-1]), bins=edges)
    return counts.tolist()


def models_overview(name: str) -> dict[str, Any]:
    """A project's model versions (newest first), the datasets each was trained
    on, and the latest promotion decisions: a few indexed queries, cheap to poll."""
    from workbench.models.registry import list_versions, promotions
    from workbench.plugins import export_formats
    from workbench.projects import get_project

    db = store()
    project = get_project(db, name)
    datasets: dict[int, list[dict[str, Any]]] = {}
    for found in db.rows(
        "SELECT rd.run_id, rd.role, v.sha256, v.path, v.rows FROM run_datasets rd"
        " JOIN dataset_versions v ON v.id = rd.dataset_version_id"
        " WHERE rd.run_id IN (SELECT run_id FROM model_versions WHERE project_id = ?)"
        " ORDER BY v.id",
        (project["id"],),
    ):
        datasets.setdefault(found.pop("run_id"), []).append(found)
    return {
        "project": project,
        "versions": list_versions(db, name),
        "datasets": datasets,
        "promotions": promotions(db, name, 20),
        # Built-in and plugin export formats, for the export form.
        "formats": export_formats(Path(project["path"])),
    }


def judge_for_champion(version_id: int, *, dry_run: bool, force: bool = False) -> Any:
    """The promotion gate's decision for a version against the champion; it may
    load and re-score the champion, so it runs in a worker."""
    from workbench.models.gate import promote
    from workbench.models.registry import CHAMPION, get_version_by_id

    db = store()
    return promote(db, get_version_by_id(db, version_id), CHAMPION, force=force, dry_run=dry_run)


def export_version(
    version_id: int, fmt: str, output: Path, *, force: bool, progress: Any
) -> dict[str, Any]:
    """Export a version; `progress(message)` hears each step of the exporter."""
    from workbench.models.export import export_model
    from workbench.models.registry import get_version_by_id

    db = store()
    version = get_version_by_id(db, version_id)
    return export_model(db, version, fmt, output, force=force, progress=progress)


# Events of the automation: pipelines, data checks, the registry and notifications.
AUTOMATION_KINDS = ("pipeline.%", "data.%", "model.%", "notify.%")


def automation_overview(
    project: str | None, pipelines: int = 50, events: int = 100
) -> dict[str, Any]:
    """The watcher's status, the latest pipelines with their steps and the
    automation events, of one project or all. The steps come without their
    JSON detail (a validation report can be large): a few indexed queries,
    cheap to poll."""
    from workbench.automation import daemon
    from workbench.projects import get_project

    db = store()
    project_id = get_project(db, project)["id"] if project else None
    only = " AND p.project_id = ?" if project_id else ""
    found = db.rows(
        "SELECT p.id, pr.name AS project, p.trigger, p.files, p.state, p.outcome, p.exit_code,"
        " p.error, p.created_at, p.ended_at FROM pipelines p"
        f" JOIN projects pr ON pr.id = p.project_id WHERE 1{only} ORDER BY p.id DESC LIMIT ?",
        (*([project_id] if project_id else []), pipelines),
    )
    steps: dict[int, list[dict[str, Any]]] = {p["id"]: [] for p in found}
    for p in found:
        p["files"] = json.loads(p["files"])
    if found:
        marks = ",".join("?" * len(found))
        for step in db.rows(
            "SELECT pipeline_id, step, file, status, summary, started_at, ended_at,"
            " CASE WHEN step = 'retrain' AND json_valid(detail)"
            " THEN json_extract(detail, '$.run') END AS run"
            f" FROM pipeline_steps WHERE pipeline_id IN ({marks}) ORDER BY id",
            tuple(steps),
        ):
            steps[step.pop("pipeline_id")].append(step)
    kinds = " OR ".join("e.kind LIKE ?" for _ in AUTOMATION_KINDS)
    timeline = db.rows(
        "SELECT e.id, e.ts, e.kind, e.message, e.run_id, pr.name AS project FROM events e"
        f" LEFT JOIN projects pr ON pr.id = e.project_id WHERE ({kinds})"
        f"{' AND e.project_id = ?' if project_id else ''} ORDER BY e.id DESC LIMIT ?",
        (*AUTOMATION_KINDS, *([project_id] if project_id else []), events),
    )
    return {
        "watcher": daemon.status(),
        "pipelines": found,
        "steps": steps,
        "events": timeline,
    }


def start_watcher() -> dict[str, Any]:
    """Start the watcher of every watchable project, detached so that it
    outlives the app; returns its status once it watches every folder."""
    from workbench.automation import daemon

    return daemon.detach(daemon.Options(projects=[]))


def stop_watcher() -> dict[str, Any]:
    from workbench.automation import daemon

    return daemon.stop()


def latest_event_id() -> int:
    return store().scalar("SELECT COALESCE(MAX(id), 0) FROM events")


def notifications_after(event_id: int) -> tuple[int, list[dict[str, Any]]]:
    """The `notify.*` events after `event_id`, oldest first, and the newest
    event id, so the next call starts past every event looked at now."""
    db = store()
    newest = db.scalar("SELECT COALESCE(MAX(id), 0) FROM events")
    found = db.rows(
        "SELECT e.id, e.kind, e.message FROM events e WHERE e.id > ? AND e.id <= ?"
        " AND e.kind LIKE 'notify.%' ORDER BY e.id",
        (event_id, newest),
    )
    return max(newest, event_id), found
