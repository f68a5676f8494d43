"""Batched reads for the terminal UI: what each screen shows, in a few queries.

Every function reads only (no liveness checks, no dispatching: the UI runs the
reconciliation once per poll cycle) and returns typed, immutable records. Reads
about many runs or many series take all their ids at once and run one query,
however many there are: the ids travel as one JSON array (`json_each`), so a
project of thousands of runs costs the same few statements as one of ten.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.store import metrics
from workbench.store.db import Store

_IDS = "SELECT value FROM json_each(?)"  # a JSON array of ids, as a subquery


def _ids(ids: Iterable[int]) -> str:
    return json.dumps([int(i) for i in ids])


# Projects and activity (home) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProjectRow:
    """A registered project with its run count and newest run."""

    id: int
    name: str
    path: str
    created_at: float
    runs: int
    last_run: int | None
    last_status: str | None


# Index lookups per project (runs_project): no scan of the runs.
_PROJECTS_SQL = """
SELECT p.id, p.name, p.path, p.created_at,
       (SELECT COUNT(*) FROM runs r WHERE r.project_id = p.id), last.id, last.status
FROM projects p
LEFT JOIN runs last ON last.id = (SELECT MAX(r.id) FROM runs r WHERE r.project_id = p.id)
"""


def projects(store: Store) -> list[ProjectRow]:
    """Every project, by name, with its run count and newest run (one query)."""
    return [
        ProjectRow(*row)
        for row in store.conn.execute(_PROJECTS_SQL + " ORDER BY p.name")
    ]


def project(store: Store, name: str) -> ProjectRow | None:
    """One project by name, or None."""
    found = store.conn.execute(_PROJECTS_SQL + " WHERE p.name = ?", (name,))
    row = found.fetchone()
    return ProjectRow(*row) if row else None


def project_names(store: Store) -> list[str]:
    return [name for (name,) in store.conn.execute("SELECT name FROM projects ORDER BY name")]


@dataclass(frozen=True, slots=True)
class BestRun:
    """The succeeded run of a project with the best latest value of a metric."""

    project_id: int
    run: int
    metric: str
    value: float


def best_runs(store: Store, wanted: Mapping[int, tuple[str, bool]]) -> dict[int, BestRun]:
    """Per project id in `wanted` ({project_id: (metric, lower_is_better)}), its
    best succeeded run on that metric: one query for all the projects."""
    if not wanted:
        return {}
    spec = json.dumps([[pid, key, -1 if lower else 1] for pid, (key, lower) in wanted.items()])
    found = store.conn.execute(
        """WITH wanted AS (
               SELECT json_extract(value, '$[0]') AS project_id,
                      json_extract(value, '$[1]') AS key,
                      json_extract(value, '$[2]') AS sign
               FROM json_each(?)),
           best AS (
               SELECT w.project_id, w.key, CASE WHEN w.sign > 0
                   THEN (SELECT r.id FROM runs r
                         JOIN metric_series m ON m.run_id = r.id AND m.key = w.key
                         WHERE r.project_id = w.project_id AND r.status = 'succeeded'
                           AND m.value IS NOT NULL ORDER BY m.value DESC, r.id LIMIT 1)
                   ELSE (SELECT r.id FROM runs r
                         JOIN metric_series m ON m.run_id = r.id AND m.key = w.key
                         WHERE r.project_id = w.project_id AND r.status = 'succeeded'
                           AND m.value IS NOT NULL ORDER BY m.value ASC, r.id LIMIT 1)
                   END AS run
               FROM wanted w)
           SELECT b.project_id, b.run, b.key, m.value FROM best b
           JOIN metric_series m ON m.run_id = b.run AND m.key = b.key""",
        (spec,),
    )
    return {row[0]: BestRun(*row) for row in found}


@dataclass(frozen=True, slots=True)
class Activity:
    """An entry of the activity log."""

    id: int
    ts: float
    kind: str
    message: str
    run_id: int | None
    project: str | None


def recent_activity(store: Store, limit: int = 30) -> list[Activity]:
    """The newest entries of the activity log, newest first."""
    return [
        Activity(*row)
        for row in store.conn.execute(
            "SELECT e.id, e.ts, e.kind, e.message, e.run_id, p.name FROM events e"
            " LEFT JOIN projects p ON p.id = e.project_id ORDER BY e.id DESC LIMIT ?",
            (limit,),
        )
    ]


# Runs of a project ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunRow:
    """A run as listed: its status and times (seconds since the epoch)."""

    id: int
    project: str
    status: str
    trainer: str
    exit_code: int | None
    created_at: float
    started_at: float | None
    ended_at: float | None
    message: str | None

    def duration(self, now: float) -> float | None:
        """Seconds from start to end (to `now` while it has not ended)."""
        if self.started_at is None:
            return None
        return (self.ended_at if self.ended_at is not None else now) - self.started_at


_RUN_SQL = """
SELECT r.id, p.name, r.status, r.trainer, r.exit_code, r.created_at, r.started_at,
       r.ended_at, r.message
FROM runs r JOIN projects p ON p.id = r.project_id
"""


def project_runs(store: Store, project_id: int, limit: int = 2000) -> list[RunRow]:
    """A project's newest runs, newest first (one query)."""
    return [
        RunRow(*row)
        for row in store.conn.execute(
            _RUN_SQL + " WHERE r.project_id = ? ORDER BY r.id DESC LIMIT ?", (project_id, limit)
        )
    ]


def run_params(store: Store, run_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The params of many runs, decoded, in one query: {run_id: {key: value}}."""
    out: dict[int, dict[str, Any]] = {}
    decoded: dict[str, Any] = {}  # the same value text repeats across runs: decode once
    for run_id, key, text in store.conn.execute(
        f"SELECT run_id, key, value FROM params WHERE run_id IN ({_IDS}) ORDER BY run_id, key",
        (_ids(run_ids),),
    ):
        value = decoded.get(text, decoded)
        if value is decoded:
            value = decoded[text] = json.loads(text)
        out.setdefault(run_id, {})[key] = value
    return out


def latest_values(
    store: Store, run_ids: Sequence[int], key: str | None = None
) -> dict[int, dict[str, float | None]]:
    """The latest value of each metric series of many runs (only `key`'s when
    given), from the series summaries, in one query: {run_id: {key: value}}."""
    only = " AND key = ?" if key is not None else ""
    out: dict[int, dict[str, float | None]] = {}
    for run_id, name, value in store.conn.execute(
        f"SELECT run_id, key, value FROM metric_series WHERE run_id IN ({_IDS}){only}"
        " ORDER BY run_id, key",
        (_ids(run_ids), *([key] if key is not None else [])),
    ):
        out.setdefault(run_id, {})[name] = value
    return out


# One run ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunHeader:
    """One run's row, with its environment (decoded) and parent."""

    run: RunRow
    parent_id: int | None
    environment: dict[str, Any] | None


def run_header(store: Store, run_id: int) -> RunHeader | None:
    found = store.conn.execute(
        _RUN_SQL.replace("SELECT", "SELECT r.parent_id, r.environment,", 1) + " WHERE r.id = ?",
        (run_id,),
    ).fetchone()
    if found is None:
        return None
    parent_id, environment, *row = found
    return RunHeader(RunRow(*row), parent_id, json.loads(environment) if environment else None)


@dataclass(frozen=True, slots=True)
class GpuPeak:
    """A GPU's peaks over a run's samples."""

    index: int
    utilization_max: float | None
    memory_used_max: int | None


@dataclass(frozen=True, slots=True)
class Resources:
    """A run's resource samples, summarised."""

    samples: int
    cpu_percent_max: float | None
    cpu_percent_mean: float | None
    rss_bytes_max: int | None
    gpus: tuple[GpuPeak, ...]


def resources(store: Store, run_id: int) -> Resources:
    """CPU and memory peaks and each GPU's peaks, aggregated by SQLite (two
    queries, however many samples there are)."""
    count, cpu_max, cpu_mean, rss_max = store.conn.execute(
        "SELECT COUNT(*), MAX(cpu_percent), AVG(cpu_percent), MAX(rss_bytes)"
        " FROM resource_samples WHERE run_id = ?",
        (run_id,),
    ).fetchone()
    gpus = tuple(
        GpuPeak(*row)
        for row in store.conn.execute(
            "SELECT json_extract(d.value, '$.index') AS device,"
            " MAX(json_extract(d.value, '$.utilization')),"
            " MAX(json_extract(d.value, '$.memory_used'))"
            " FROM resource_samples s, json_each(s.gpu) d"
            " WHERE s.run_id = ? AND s.gpu IS NOT NULL AND json_valid(s.gpu)"
            " GROUP BY device ORDER BY device",
            (run_id,),
        )
        if row[0] is not None
    )
    mean = round(cpu_mean, 2) if cpu_mean is not None else None
    return Resources(count, cpu_max, mean, rss_max, gpus)


@dataclass(frozen=True, slots=True)
class Sample:
    """One resource sample; `gpu` is its per-device readings (JSON text)."""

    ts: float
    cpu_percent: float | None
    rss_bytes: int | None
    gpu: str | None


def recent_samples(store: Store, run_id: int, limit: int) -> list[Sample]:
    """A run's newest `limit` resource samples, oldest first."""
    found = store.conn.execute(
        "SELECT ts, cpu_percent, rss_bytes, gpu FROM resource_samples WHERE run_id = ?"
        " ORDER BY ts DESC LIMIT ?",
        (run_id, limit),
    ).fetchall()
    return [Sample(*row) for row in reversed(found)]


@dataclass(frozen=True, slots=True)
class Artifact:
    name: str
    size: int | None


def artifacts(store: Store, run_id: int) -> list[Artifact]:
    return [
        Artifact(*row)
        for row in store.conn.execute(
            "SELECT name, size FROM artifacts WHERE run_id = ? ORDER BY name", (run_id,)
        )
    ]


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    """A metric series of a run: its key, point count and latest value."""

    run_id: int
    key: str
    count: int
    value: float | None


def series_of(store: Store, run_ids: Sequence[int]) -> list[SeriesInfo]:
    """The metric series of many runs, by run and key, in one query."""
    return [
        SeriesInfo(*row)
        for row in store.conn.execute(
            f"SELECT run_id, key, count, value FROM metric_series WHERE run_id IN ({_IDS})"
            " ORDER BY run_id, key",
            (_ids(run_ids),),
        )
    ]


@dataclass(frozen=True, slots=True)
class TailPoint:
    """A logged point of a series: its step (its index when none was logged),
    time and value (None: not a finite number)."""

    x: int
    ts: float
    value: float | None


def series_tail(store: Store, run_id: int, key: str, points: int) -> list[TailPoint]:
    """The last `points` points of one series, oldest first: a zoom on the end
    of a long series decodes only the chunks that hold them."""
    found = metrics.series_id(store.conn, run_id, key)
    if found is None:
        return []
    series_id, count = found
    start = max(0, count - points)
    return [
        TailPoint(step if step is not None else idx, ts, value)
        for idx, (step, ts, value) in enumerate(
            metrics.read_points(store.conn, series_id, start), start
        )
    ]


# Data of a project -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Report:
    """A validation or drift report's verdict (without its JSON document)."""

    id: int
    dataset_version_id: int | None
    kind: str
    passed: bool
    file: str | None
    created_at: float


def latest_reports(store: Store, project_id: int) -> dict[tuple[int, str], Report]:
    """The newest report of each kind per dataset version: {(version id, kind): report}."""
    latest: dict[tuple[int, str], Report] = {}
    for row in store.conn.execute(
        "SELECT id, dataset_version_id, kind, passed, file, created_at FROM data_reports"
        " WHERE project_id = ? AND dataset_version_id IS NOT NULL ORDER BY id",
        (project_id,),
    ):
        report = Report(row[0], row[1], row[2], bool(row[3]), row[4], row[5])
        latest[(row[1], row[2])] = report
    return latest


@dataclass(frozen=True, slots=True)
class Rejected:
    """A batch refused before it became a dataset version, with its report."""

    id: int
    file: str | None
    report: str | None
    created_at: float


def rejected_batches(store: Store, project_id: int, limit: int = 20) -> list[Rejected]:
    """Failed reports that belong to no dataset version, newest first."""
    return [
        Rejected(*row)
        for row in store.conn.execute(
            "SELECT id, file, report, created_at FROM data_reports WHERE project_id = ?"
            " AND dataset_version_id IS NULL AND passed = 0 ORDER BY id DESC LIMIT ?",
            (project_id, limit),
        )
    ]


def latest_drift(store: Store, project_id: int) -> tuple[str | None, str | None]:
    """The newest drift report's JSON document, and the cached profile (JSON) of
    the reference it was measured against, in one query."""
    found = store.conn.execute(
        "SELECT d.report, (SELECT profile FROM reference_profiles"
        "   WHERE dataset_version_id = json_extract(d.report, '$.reference.id'))"
        " FROM data_reports d WHERE d.project_id = ? AND d.kind = 'drift'"
        " ORDER BY d.id DESC LIMIT 1",
        (project_id,),
    ).fetchone()
    return (found[0], found[1]) if found else (None, None)


# Models of a project ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrainingData:
    """A dataset version a model version's run was trained or tested on."""

    role: str
    sha256: str
    path: str
    rows: int | None


def training_data(store: Store, project_id: int) -> dict[int, list[TrainingData]]:
    """Per run of the project's model versions, its datasets (one query)."""
    out: dict[int, list[TrainingData]] = {}
    for run_id, *row in store.conn.execute(
        "SELECT rd.run_id, rd.role, v.sha256, v.path, v.rows FROM run_datasets rd"
        " JOIN dataset_versions v ON v.id = rd.dataset_version_id"
        " WHERE rd.run_id IN (SELECT run_id FROM model_versions WHERE project_id = ?)"
        " ORDER BY v.id",
        (project_id,),
    ):
        out.setdefault(run_id, []).append(TrainingData(*row))
    return out


# Automation -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PipelineRow:
    id: int
    project: str
    trigger: str
    files: tuple[str, ...]
    state: str
    outcome: str | None
    exit_code: int | None
    error: str | None
    created_at: float
    ended_at: float | None


@dataclass(frozen=True, slots=True)
class StepRow:
    """A pipeline step without its JSON detail (a validation report can be large);
    `run` is the training run of a retrain step."""

    pipeline_id: int
    step: str
    file: str | None
    status: str
    summary: str | None
    started_at: float
    ended_at: float | None
    run: int | None


def pipelines(store: Store, project_id: int | None, limit: int = 50) -> list[PipelineRow]:
    """The newest pipelines, of one project or all, newest first."""
    only = " AND p.project_id = ?" if project_id is not None else ""
    found = store.conn.execute(
        "SELECT p.id, pr.name, p.trigger, p.files, p.state, p.outcome, p.exit_code,"
        " p.error, p.created_at, p.ended_at FROM pipelines p"
        f" JOIN projects pr ON pr.id = p.project_id WHERE 1{only} ORDER BY p.id DESC LIMIT ?",
        (*([project_id] if project_id is not None else []), limit),
    )
    return [
        PipelineRow(pid, name, trigger, tuple(_list(files)), *rest)
        for pid, name, trigger, files, *rest in found
    ]


def _list(text: str | None) -> list[str]:
    try:
        found = json.loads(text or "[]")
    except ValueError:
        return []
    return [str(f) for f in found] if isinstance(found, list) else []


def pipeline_steps(store: Store, pipeline_ids: Sequence[int]) -> dict[int, list[StepRow]]:
    """The steps of many pipelines, in order, in one query: {pipeline_id: steps}."""
    out: dict[int, list[StepRow]] = {pid: [] for pid in pipeline_ids}
    for row in store.conn.execute(
        "SELECT pipeline_id, step, file, status, summary, started_at, ended_at,"
        " CASE WHEN step = 'retrain' AND json_valid(detail)"
        " THEN json_extract(detail, '$.run') END"
        f" FROM pipeline_steps WHERE pipeline_id IN ({_IDS}) ORDER BY id",
        (_ids(pipeline_ids),),
    ):
        out.setdefault(row[0], []).append(StepRow(*row))
    return out


def events_of_kinds(
    store: Store, patterns: Sequence[str], project_id: int | None, limit: int = 100
) -> list[Activity]:
    """The newest events whose kind matches one of the LIKE `patterns`."""
    kinds = " OR ".join("e.kind LIKE ?" for _ in patterns) or "0"
    only = " AND e.project_id = ?" if project_id is not None else ""
    return [
        Activity(*row)
        for row in store.conn.execute(
            "SELECT e.id, e.ts, e.kind, e.message, e.run_id, pr.name FROM events e"
            f" LEFT JOIN projects pr ON pr.id = e.project_id WHERE ({kinds}){only}"
            " ORDER BY e.id DESC LIMIT ?",
            (*patterns, *([project_id] if project_id is not None else []), limit),
        )
    ]


def project_id(store: Store, name: str) -> int | None:
    found = store.conn.execute("SELECT id FROM projects WHERE name = ?", (name,)).fetchone()
    return int(found[0]) if found else None


# Notifications --------------------------------------------------------------------


def latest_event_id(store: Store) -> int:
    return int(store.scalar("SELECT COALESCE(MAX(id), 0) FROM events"))


@dataclass(frozen=True, slots=True)
class Notification:
    id: int
    kind: str
    message: str


def notifications_after(store: Store, event_id: int) -> tuple[int, list[Notification]]:
    """The `notify.*` events after `event_id`, oldest first, and the newest event
    id, so the next call starts past every event looked at now."""
    newest = latest_event_id(store)
    found = [
        Notification(*row)
        for row in store.conn.execute(
            "SELECT id, kind, message FROM events WHERE id > ? AND id <= ?"
            " AND kind LIKE 'notify.%' ORDER BY id",
            (event_id, newest),
        )
    ]
    return max(newest, event_id), found
