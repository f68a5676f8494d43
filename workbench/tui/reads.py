"""What the screens show, read from the store in worker threads (never on the
event loop); each thread gets its own connection. The SQL lives in
`workbench.store.dashboard`; this module adds what is not in the store (the
projects' workbench.toml, log files, system readings) and shapes the views."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from workbench.config.project import ProjectConfig, load_config
from workbench.core import paths
from workbench.core.errors import NotFoundError, WorkbenchError
from workbench.core.gpu import GpuMonitor
from workbench.core.metric_rules import is_internal_param, lower_is_better
from workbench.store import Store, changes, open_store
from workbench.store import dashboard as db
from workbench.store import jobs as job_store
from workbench.store.metrics import series

_local = threading.local()


def store() -> Store:
    """This thread's connection to the store (WORKBENCH_HOME's, should it change)."""
    current: Store | None = getattr(_local, "store", None)
    if current is None or current.path != paths.db_path():
        if current is not None:
            current.close()
        current = _local.store = open_store()
    return current


_watch_lock = threading.Lock()
_watch: Store | None = None  # a connection only for store_version


def store_version() -> int:
    """The store's data version: it changes with every commit (of any
    process, this one's own included), so a poll that finds the version it
    read at can skip its read. Taken on one connection kept for it, whatever
    the thread, so that versions compare (see `store.changes`)."""
    global _watch
    with _watch_lock:
        if _watch is None or _watch.path != paths.db_path():
            if _watch is not None:
                _watch.close()
            _watch = open_store()
        return changes.data_version(_watch)


def reconcile() -> None:
    """Mark lost runs and start due queued runs: once per poll cycle of the app
    (`LiveScreen._poll`), before its reads, never inside one. A read-only store
    is left as it is (its listings show what was recorded)."""
    from workbench.runs.reconcile import reconcile as reconcile_runs

    reconcile_runs(store())


# Projects ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProjectCard:
    """A project as the home and project screens show it: its row in the store,
    what its workbench.toml says (or why it cannot be read), its best run."""

    name: str
    path: str
    runs: int = 0
    last_run: int | None = None
    last_status: str | None = None
    missing: bool = False
    config_error: str | None = None
    best: db.BestRun | None = None
    trainer: str | None = None
    target: str | None = None
    metric: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    id: int = 0


_configs: dict[str, tuple[tuple[int, int], ProjectConfig | str]] = {}
_configs_lock = threading.Lock()


def config_stamps(paths: list[str]) -> tuple[tuple[int, int], ...]:
    """Each project folder's workbench.toml as it is now (mtime, size; -1s
    when it or its folder is gone): one stat each, so that a poll tells a
    change of what Home shows from outside the store without reading it."""
    stamps = []
    for path in paths:
        try:
            stat = (Path(path) / "workbench.toml").stat()
            stamps.append((stat.st_mtime_ns, stat.st_size))
        except OSError:
            stamps.append((-1, -1))
    return tuple(stamps)


def project_config(path: str) -> ProjectConfig | str:
    """The project's workbench.toml, or the reason it cannot be used; read
    again only when the file changes (every poll asks)."""
    folder = Path(path)
    try:
        stat = (folder / "workbench.toml").stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        stamp = (-1, -1)
    with _configs_lock:
        cached = _configs.get(path)
    if cached and cached[0] == stamp and stamp != (-1, -1):
        return cached[1]
    found: ProjectConfig | str
    if not folder.exists():
        found = (
            f"the project points at {folder}, which no longer exists; move it back"
            " or register the new place with `workbench project add`"
        )
    else:
        try:
            found = load_config(folder)
        except WorkbenchError as exc:
            found = exc.message
        except Exception as exc:  # a broken project must not hide the others
            found = f"{type(exc).__name__}: {exc}"
    with _configs_lock:
        _configs[path] = (stamp, found)
    return found


def _cards(store_: Store, rows: list[db.ProjectRow]) -> list[ProjectCard]:
    configs = {row.id: project_config(row.path) for row in rows}
    wanted = {
        pid: (config.metric, lower_is_better(config.metric))
        for pid, config in configs.items()
        if isinstance(config, ProjectConfig) and config.metric
    }
    best = db.best_runs(store_, wanted)
    cards = []
    for row in rows:
        config = configs[row.id]
        common = dict(
            id=row.id,
            name=row.name,
            path=row.path,
            runs=row.runs,
            last_run=row.last_run,
            last_status=row.last_status,
            missing=not Path(row.path).exists(),
        )
        if isinstance(config, str):
            cards.append(ProjectCard(**common, config_error=config))  # type: ignore[arg-type]
        else:
            cards.append(
                ProjectCard(
                    **common,  # type: ignore[arg-type]
                    best=best.get(row.id),
                    trainer=config.trainer,
                    target=config.target,
                    metric=config.metric,
                    params=dict(config.params),
                )
            )
    return cards


def project_card(name: str) -> ProjectCard:
    store_ = store()
    row = db.project(store_, name)
    if row is None:
        known = db.project_names(store_)
        hint = f" (known: {', '.join(known)})" if known else " (none registered yet)"
        raise NotFoundError(f"no project named {name!r}{hint}")
    return _cards(store_, [row])[0]


@dataclass(frozen=True, slots=True)
class HomeSnapshot:
    projects: list[ProjectCard]
    events: list[db.Activity]


def home_snapshot() -> HomeSnapshot:
    """Projects with their best metric, and the latest activity."""
    store_ = store()
    return HomeSnapshot(_cards(store_, db.projects(store_)), db.recent_activity(store_, 30))


PAGE_ROWS = 100  # runs the project screen reads at first: a few screens of rows


@dataclass(frozen=True, slots=True)
class ProjectRuns:
    """A project, the first rows of its run table with their params and
    primary metric, the params worth a column (those that differ between the
    runs), whether more rows follow, and how many runs are archived."""

    project: ProjectCard
    runs: list[db.RunRow]
    params: dict[int, dict[str, Any]]
    metric: dict[int, float | None]
    key_params: list[str]
    more: bool = False
    archived: int = 0


def project_runs(
    name: str,
    limit: int = PAGE_ROWS,
    *,
    sort: str = "id",
    text: str = "",
    archived: bool = False,
) -> ProjectRuns:
    """The first `limit` runs of a project in the table's order (see
    `store.run_pages.run_page`): the table asks for more as the user scrolls,
    so a project of 50,000 runs opens as fast as one of a hundred."""
    from workbench.store.run_pages import run_page

    store_ = store()
    card = project_card(name)
    page = run_page(
        store_,
        card.id,
        limit=limit,
        sort=sort,
        metric=card.metric,
        lower_is_better=bool(card.metric) and lower_is_better(card.metric or ""),
        text=text,
        archived=archived,
        now=time.time(),
    )
    runs = page.runs
    ids = [r.id for r in runs]
    params = {
        run_id: {k: v for k, v in found.items() if not is_internal_param(k)}
        for run_id, found in db.run_params(store_, ids).items()
    }
    metric: dict[int, float | None] = {}
    if card.metric:
        latest = db.latest_values(store_, ids, card.metric)
        metric = {run_id: values.get(card.metric) for run_id, values in latest.items()}
    keys = sorted({k for p in params.values() for k in p})
    differing = [k for k in keys if len({repr(p.get(k)) for p in params.values()}) > 1]
    return ProjectRuns(
        card, runs, params, metric, differing or keys[:3], more=page.more, archived=page.archived
    )


# One run ----------------------------------------------------------------------------


@dataclass(slots=True)
class RunDetail:
    """One run for the run screen; `series` holds the plotted keys' points."""

    run: db.RunRow
    parent_id: int | None
    environment: dict[str, Any] | None
    params: dict[str, Any]
    metrics: dict[str, float | None]
    resources: db.Resources
    artifacts: list[db.Artifact]
    series_keys: list[db.SeriesInfo]
    samples: list[db.Sample]
    series: dict[str, dict[str, Any]] = field(default_factory=dict)
    log_chunk: bytes = b""
    job: job_store.Job | None = None  # a run of another executor (a Slurm job)


def run_detail(run_id: int, keys: list[str], max_points: int = 400) -> RunDetail:
    store_ = store()
    header = db.run_header(store_, run_id)
    if header is None:
        raise NotFoundError(f"no run {run_id}; `workbench run list` shows the runs")
    found = db.series_of(store_, [run_id])
    return RunDetail(
        run=header.run,
        parent_id=header.parent_id,
        environment=header.environment,
        params=db.run_params(store_, [run_id]).get(run_id, {}),
        metrics={s.key: s.value for s in found},
        resources=db.resources(store_, run_id),
        artifacts=db.artifacts(store_, run_id),
        series_keys=found,
        samples=db.recent_samples(store_, run_id, max_points),
        series={k: series(store_.conn, run_id, k, max_points) for k in keys},
        job=_job(store_, run_id),
    )


def job_queue() -> list[job_store.QueueRow]:
    """The store's queued and running cluster jobs, for the queue view."""
    return job_store.queue(store())


def _job(store_: Store, run_id: int) -> job_store.Job | None:
    job = job_store.job_of(store_, run_id)
    return job if job is not None and job.executor != job_store.LOCAL else None


def plotted(run_id: int, key: str, max_points: int = 400) -> dict[str, Any]:
    """One series of a run, downsampled for plotting."""
    return series(store().conn, run_id, key, max_points)


def plotted_tail(run_id: int, key: str, points: int, max_points: int = 400) -> dict[str, Any]:
    """The last `points` points of one series (a zoom), downsampled to
    `max_points` means, in the shape of `plotted`."""
    tail = db.series_tail(store(), run_id, key, points)
    groups = min(len(tail), max_points)
    out = []
    for g in range(groups):
        part = tail[len(tail) * g // groups : len(tail) * (g + 1) // groups]
        values = [p.value for p in part if p.value is not None]
        out.append(
            {
                "x": part[-1].x,
                "ts": part[-1].ts,
                "mean": sum(values) / len(values) if values else None,
            }
        )
    return {"run_id": run_id, "key": key, "count": len(tail), "points": out}


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


def _project_id(name: str) -> int:
    found = db.project_id(store(), name)
    if found is None:
        project_card(name)  # raises with the known names
    return found  # type: ignore[return-value]


# Data -------------------------------------------------------------------------------


def data_overview(name: str) -> dict[str, Any]:
    """Dataset versions with their latest reports, and the latest drift report."""
    from workbench.data.versions import list_versions

    store_ = store()
    project_id = _project_id(name)
    versions = list_versions(store_, project_id)
    latest = db.latest_reports(store_, project_id)
    for version in versions:
        for kind in ("validation", "drift"):
            report = latest.get((version["id"], kind))
            version[kind] = {"passed": report.passed} if report else None
    # A batch refused before it became a dataset version (unreadable, wrong
    # columns) has a failed report and no version: list it with its reason.
    rejected = []
    for row in db.rejected_batches(store_, project_id):
        found = {"id": row.id, "file": row.file or "", "reason": _reason(row.report)}
        # The batch may have become a version all the same (registered, then
        # refused): its verdict goes on that version's row.
        same = [v for v in versions if v["path"] == row.file and not v["validation"]]
        if same:
            same[0]["validation"] = {"passed": False, "rejected": found["reason"]}
        else:
            rejected.append(found)
    drift, profile = db.latest_drift(store_, project_id)
    return {
        "versions": versions,
        "drift": json.loads(drift) if drift else None,
        "profile": json.loads(profile) if drift and profile else None,
        "rejected": rejected,
    }


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
    return list(counts.tolist())


# Models -----------------------------------------------------------------------------


def models_overview(name: str) -> dict[str, Any]:
    """A project's model versions (newest first), the datasets each was trained
    on, and the latest promotion decisions: a few indexed queries, cheap to poll."""
    from workbench.models.registry import list_versions, promotions
    from workbench.plugins import export_formats
    from workbench.projects import get_project

    store_ = store()
    project = get_project(store_, name)
    return {
        "project": project,
        "versions": list_versions(store_, name),
        "datasets": db.training_data(store_, project["id"]),
        "promotions": promotions(store_, name, 20),
        # Built-in and plugin export formats, for the export form.
        "formats": export_formats(Path(project["path"])),
    }


def judge_for_champion(version_id: int, *, dry_run: bool, force: bool = False) -> Any:
    """The promotion gate's decision for a version against the champion; it may
    load and re-score the champion, so it runs in a worker."""
    from workbench.models.gate import promote
    from workbench.models.registry import CHAMPION, get_version_by_id

    store_ = store()
    return promote(
        store_, get_version_by_id(store_, version_id), CHAMPION, force=force, dry_run=dry_run
    )


def export_version(
    version_id: int, fmt: str, output: Path, *, force: bool, progress: Any
) -> dict[str, Any]:
    """Export a version; `progress(message)` hears each step of the exporter."""
    from workbench.models.export import export_model
    from workbench.models.registry import get_version_by_id

    store_ = store()
    version = get_version_by_id(store_, version_id)
    return export_model(store_, version, fmt, output, force=force, progress=progress)


# Automation -------------------------------------------------------------------------

# Events of the automation: pipelines, data checks, the registry and notifications.
AUTOMATION_KINDS = ("pipeline.%", "data.%", "model.%", "notify.%")


@dataclass(frozen=True, slots=True)
class AutomationSnapshot:
    watcher: dict[str, Any]
    pipelines: list[db.PipelineRow]
    steps: dict[int, list[db.StepRow]]
    events: list[db.Activity]


def automation_overview(
    project: str | None, pipelines: int = 50, events: int = 100
) -> AutomationSnapshot:
    """The watcher's status, the latest pipelines with their steps and the
    automation events, of one project or all: a few indexed queries, cheap to poll."""
    from workbench.automation import daemon

    store_ = store()
    project_id = _project_id(project) if project else None
    found = db.pipelines(store_, project_id, pipelines)
    return AutomationSnapshot(
        watcher=daemon.status(),
        pipelines=found,
        steps=db.pipeline_steps(store_, [p.id for p in found]),
        events=db.events_of_kinds(store_, AUTOMATION_KINDS, project_id, events),
    )


def start_watcher() -> dict[str, Any]:
    """Start the watcher of every watchable project, detached so that it
    outlives the app; returns its status once it watches every folder."""
    from workbench.automation import daemon

    return daemon.detach(daemon.Options(projects=[]))


def stop_watcher() -> dict[str, Any]:
    from workbench.automation import daemon

    return daemon.stop()


# Notifications ----------------------------------------------------------------------


def latest_event_id() -> int:
    return db.latest_event_id(store())


def notifications_after(event_id: int) -> tuple[int, list[db.Notification]]:
    """The `notify.*` events after `event_id`, oldest first, and the newest
    event id, so the next call starts past every event looked at now."""
    return db.notifications_after(store(), event_id)
