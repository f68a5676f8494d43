"""`archive import`: verify everything, then merge an archive's records into this
store in one transaction, mapping global identities (uuids) to local ids.

What is here already is recognised by uuid (runs, dataset versions, model
versions), by name (projects) or by content (a dataset version of the same
SHA-256); a run whose recorded state differs from the archive's is a conflict,
settled by `on_conflict`: skip (keep this store's), overwrite (take the
archive's) or rename (import it as another run, with a new uuid). Metric points
merge by (key, step): a point whose step a series has already is not added
twice, so importing an archive again changes nothing. Aliases from elsewhere
arrive as proposals unless `accept_aliases`.

Tags merge as sets (a run ends with the tags of both copies). A run's note and
archive time are taken when this store's copy has neither; when both have
different ones, `on_conflict` settles it as for the run (only overwrite takes
the archive's). Wheels the archive carries go to a folder (by default the
store's `wheels/`), not among the store's files.

An import is prepared (`prepare_import`: the archive verified, its blobs
staged) and then applied, so a front end can ask questions in between (where
a project's folder is on this machine) with no progress display in the way.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.archive.format import Archive, Wheel, read_archive, wheels
from workbench.core import paths
from workbench.core.errors import UsageError
from workbench.runs import manage
from workbench.store import archive as records
from workbench.store import run_notes
from workbench.store.db import Store

ON_CONFLICT = ("skip", "rename", "overwrite")
KINDS = (
    "projects",
    "runs",
    "tags",
    "notes",
    "dataset_versions",
    "model_versions",
    "aliases",
    "promotions",
    "pipelines",
)


@dataclass(slots=True)
class ImportReport:
    """What an import did (or, dry, would do), per kind: new, identical, conflicting."""

    file: str
    dry_run: bool
    signer: str | None
    counts: dict[str, dict[str, int]] = field(
        default_factory=lambda: {k: {"new": 0, "identical": 0, "conflicting": 0} for k in KINDS}
    )
    metric_points_added: int = 0
    blobs_added: int = 0
    proposals: int = 0
    renumbered: list[dict[str, int]] = field(default_factory=list)
    # Projects new here whose folder (as the archive has it) does not exist here.
    missing_folders: list[dict[str, str]] = field(default_factory=list)
    projects: dict[str, str] = field(default_factory=dict)  # new: name -> folder here
    project_names: list[str] = field(default_factory=list)  # every project it holds
    wheels: list[str] = field(default_factory=list)
    wheels_dir: str | None = None
    wheels_added: int = 0

    def count(self, kind: str, what: str) -> None:
        self.counts[kind][what] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "dry_run": self.dry_run,
            "signer": self.signer,
            "counts": self.counts,
            "metric_points_added": self.metric_points_added,
            "blobs_added": self.blobs_added,
            "alias_proposals": self.proposals,
            "renumbered": self.renumbered,
            "missing_folders": self.missing_folders,
            "project_folders": self.projects,
            "wheels": self.wheels,
            "wheels_dir": self.wheels_dir,
            "wheels_added": self.wheels_added,
        }


def default_wheels_dir() -> Path:
    """Where an import leaves the wheels an archive carries: the store's own
    wheelhouse, which `model export --with-wheels --wheelhouse` can take."""
    return paths.home() / "wheels"


class PreparedImport:
    """A verified archive (its blobs staged unless only a dry run is wanted),
    ready to be merged into `store` by `apply`."""

    def __init__(self, store: Store, archive: Archive, staging: Path | None) -> None:
        self.store, self.archive, self.staging = store, archive, staging
        # The records are parsed and checked once, here; `apply` merges them.
        self.merge = _Merge(store, archive, ImportReport(str(archive.path), True, None), "skip")
        self.merge.check()

    def missing_folders(self, project_dir: Path | None = None) -> list[tuple[str, str]]:
        """(name, folder) of each project new here whose folder, as the archive
        has it, does not exist here (none when `project_dir` is given)."""
        if project_dir is not None:
            return []
        out = []
        for p in self.merge.projects:
            if records.project_by_name(self.store, p["name"]) is None and not os.path.isdir(
                str(p["path"])
            ):
                out.append((str(p["name"]), str(p["path"])))
        return out

    def apply(
        self,
        *,
        dry_run: bool = False,
        on_conflict: str = "skip",
        accept_aliases: bool = False,
        project_dir: Path | None = None,
        folders: dict[str, Path] | None = None,
        wheels_dir: Path | None = None,
    ) -> ImportReport:
        """Merge (or, `dry_run`, only count). A project new here whose folder is
        missing needs `project_dir` or an entry in `folders` (name -> folder)."""
        if on_conflict not in ON_CONFLICT:
            raise UsageError(
                f"--on-conflict {on_conflict!r}: expected one of {', '.join(ON_CONFLICT)}"
            )
        if not dry_run and self.staging is None:
            raise ValueError("prepared for a dry run only")
        archive, store = self.archive, self.store
        report = ImportReport(str(archive.path), dry_run, archive.signer.get("signer"))
        report.project_names = sorted(str(p["name"]) for p in self.merge.projects)
        folders = {k: Path(v).expanduser().resolve() for k, v in (folders or {}).items()}
        missing = [(n, p) for n, p in self.missing_folders(project_dir) if n not in folders]
        report.missing_folders = [{"project": n, "folder": p} for n, p in missing]
        if missing and not dry_run:
            name, path = missing[0]
            raise UsageError(
                f"project {name}: its folder {path} does not exist here; give the folder it"
                " has (or will have) on this machine with --project-dir DIR"
            )
        carried = wheels(archive)
        target = Path(wheels_dir).expanduser().resolve() if wheels_dir else default_wheels_dir()
        report.wheels = [w.file for w in carried]
        report.wheels_dir = str(target) if carried else None
        if carried and not dry_run:
            try:
                target.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UsageError(
                    f"--wheels-dir {target}: cannot be made ({exc.strerror})"
                ) from None
        merge = self.merge
        merge.report, merge.on_conflict, merge.accept_aliases = report, on_conflict, accept_aliases
        merge.project_dir, merge.folders = project_dir, folders
        if dry_run:
            merge.run(None)
            return report
        try:
            with store.write() as conn:
                merge.run(conn)
        except (sqlite3.IntegrityError, sqlite3.InterfaceError) as exc:
            raise UsageError(
                f"{archive.path}: its records contradict each other or this store ({exc});"
                " nothing was imported"
            ) from None
        assert self.staging is not None
        report.wheels_added = _put_wheels(self.staging, carried, target)
        keep = {w.sha256 for w in carried} - merge.referenced()
        report.blobs_added = _put_blobs(self.staging, skip=keep)
        return report


@contextlib.contextmanager
def prepare_import(
    store: Store,
    source: Path,
    *,
    stage: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
) -> Iterator[PreparedImport]:
    """Verify the archive at `source` end to end (with `stage`, writing its
    blobs to a staging folder in the store, removed on leaving)."""
    staging = (
        Path(tempfile.mkdtemp(prefix=".archive-import-", dir=paths.home())) if stage else None
    )
    try:
        checked = read_archive(source, blob_dir=staging, progress=progress)
        yield PreparedImport(store, checked, staging)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def import_archive(
    store: Store,
    source: Path,
    *,
    dry_run: bool = False,
    on_conflict: str = "skip",
    accept_aliases: bool = False,
    project_dir: Path | None = None,
    folders: dict[str, Path] | None = None,
    wheels_dir: Path | None = None,
    ask_folder: Callable[[str, str], Path] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> ImportReport:
    """Verify, then merge the archive at `source` (see `PreparedImport.apply`);
    `ask_folder(name, folder)` is asked where a new project's missing folder is."""
    if on_conflict not in ON_CONFLICT:
        raise UsageError(f"--on-conflict {on_conflict!r}: expected one of {', '.join(ON_CONFLICT)}")
    with prepare_import(store, source, stage=not dry_run, progress=progress) as plan:
        chosen = dict(folders or {})
        if not dry_run and ask_folder is not None:
            for name, path in plan.missing_folders(project_dir):
                chosen.setdefault(name, ask_folder(name, path))
        return plan.apply(
            dry_run=dry_run,
            on_conflict=on_conflict,
            accept_aliases=accept_aliases,
            project_dir=project_dir,
            folders=chosen,
            wheels_dir=wheels_dir,
        )


def check_records(archive: Archive) -> None:
    """Refuse records the import could not read (what `archive verify` adds to
    the checks of the file itself)."""
    _Merge(None, archive, ImportReport(str(archive.path), True, None), "skip").check()


def _put_wheels(staging: Path, carried: list[Wheel], folder: Path) -> int:
    """Copy the wheels into `folder` under their file names; one there already
    with the same bytes is left as it is."""
    added = 0
    for wheel in carried:
        target = folder / wheel.file
        if target.is_file() and _sha256(target) == wheel.sha256:
            continue
        fd, tmp = tempfile.mkstemp(prefix=f".{wheel.file}.", suffix=".partial", dir=folder)
        os.close(fd)
        try:
            shutil.copyfile(staging / wheel.sha256, tmp)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        added += 1
    return added


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _put_blobs(staging: Path, skip: set[str] | frozenset[str] = frozenset()) -> int:
    added = 0
    for blob in sorted(staging.iterdir()):
        if blob.name in skip:
            continue
        target = paths.artifact_file(blob.name)
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(blob, target)
        added += 1
    return added


def _need(archive: Archive, table: str, row: dict[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        if key not in row:
            raise UsageError(f"{archive.path}: records/{table}.jsonl: a record has no {key!r}")


_SCALAR = (str, int, float, type(None))
_STEP_TYPES = {int, type(None)}
_TIME_TYPES = {int, float}
_VALUE_TYPES = {int, float, type(None)}


class _Merge:
    """Classifies each record against the store and, given a connection, writes."""

    def __init__(
        self,
        store: Store | None,
        archive: Archive,
        report: ImportReport,
        on_conflict: str,
        accept_aliases: bool = False,
        project_dir: Path | None = None,
        folders: dict[str, Path] | None = None,
    ) -> None:
        self.store: Store = store  # type: ignore[assignment]  # None: only check()
        self.archive, self.report = archive, report
        self.on_conflict, self.accept_aliases = on_conflict, accept_aliases
        self.project_dir = project_dir
        self.folders = folders or {}
        a = archive
        self.projects = a.lines("projects")
        self.runs = a.lines("runs")
        self.tags = a.lines("run_tags")
        self.params = a.lines("params")
        self.artifacts = a.lines("artifacts")
        self.resources = a.lines("resources")
        self.events = a.lines("events")
        self.datasets = a.lines("dataset_versions")
        self.run_datasets = a.lines("run_datasets")
        self.models = a.lines("model_versions")
        self.aliases = a.lines("model_aliases")
        self.promotions = a.lines("promotions")
        self.pipelines = a.lines("pipelines")
        self.series = a.lines("metric_series")
        self.point_lines = a.records.get("metrics", b"").splitlines()

    def check(self) -> None:
        """The records have what the merge reads (types are SQLite's to hold)."""
        a = self.archive
        for table, rows, keys in (
            ("projects", self.projects, ("name", "path", "created_at")),
            ("runs", self.runs, records.RUN_COLUMNS),
            ("run_tags", self.tags, records.TAG_COLUMNS),
            ("params", self.params, ("run_uuid", "key", "value")),
            ("artifacts", self.artifacts, ("run_uuid", "name", "sha256", "size", "created_at")),
            ("resources", self.resources, ("run_uuid", *records.RESOURCE_COLUMNS)),
            ("events", self.events, ("run_uuid", "ts", "kind", "message", "data")),
            ("dataset_versions", self.datasets, records.DATASET_COLUMNS),
            ("run_datasets", self.run_datasets, ("run_uuid", "dataset_uuid", "role")),
            ("model_versions", self.models, records.MODEL_COLUMNS),
            ("model_aliases", self.aliases, ("project", "alias", "version_uuid", "updated_at")),
            (
                "promotions",
                self.promotions,
                (
                    "project",
                    "alias",
                    "challenger_uuid",
                    "champion_uuid",
                    *records.PROMOTION_COLUMNS,
                ),
            ),
            ("pipelines", self.pipelines, ("project", *records.PIPELINE_COLUMNS)),
            ("metric_series", self.series, ("run_uuid", "key", "count")),
        ):
            for row in rows:
                _need(a, table, row, keys)
                for key in keys:
                    if not isinstance(row[key], _SCALAR):
                        raise UsageError(
                            f"{a.path}: records/{table}.jsonl: {key!r} is not a plain value"
                        )
        for table, rows, key in (
            ("model_versions", self.models, "version"),
            ("metric_series", self.series, "count"),
        ):
            for row in rows:
                if type(row[key]) is not int or row[key] < 0:
                    raise UsageError(f"{a.path}: records/{table}.jsonl: {key!r} is not a count")
        self._check_notes()
        for p in self.pipelines:
            steps = p.get("steps") or []
            if not isinstance(steps, list) or not all(
                isinstance(s, dict) and all(isinstance(v, _SCALAR) for v in s.values())
                for s in steps
            ):
                raise UsageError(f"{a.path}: records/pipelines.jsonl: 'steps' is not a list")
        names = {p["name"] for p in self.projects}
        for table, rows in (
            ("runs", self.runs),
            ("dataset_versions", self.datasets),
            ("model_versions", self.models),
        ):
            for row in rows:
                if row["project"] not in names:
                    raise UsageError(
                        f"{a.path}: records/{table}.jsonl names project {row['project']!r},"
                        " which the archive does not hold"
                    )
        if len([x for x in self.point_lines if x.strip()]) != len(self.series):
            raise UsageError(
                f"{a.path}: records/metrics.jsonl does not hold one line per metric series"
            )

    def _check_notes(self) -> None:
        """Tags are tags as `run tag` takes them; a note as `run note` keeps it."""
        path = self.archive.path
        for row in self.tags:
            tag, at = row["tag"], row["created_at"]
            if not isinstance(tag, str) or not manage.TAG.fullmatch(tag):
                raise UsageError(f"{path}: records/run_tags.jsonl: {str(tag)[:40]!r} is not a tag")
            if type(at) not in (int, float) or not math.isfinite(at):
                raise UsageError(f"{path}: records/run_tags.jsonl: 'created_at' is not a time")
        for run in self.runs:
            note, archived = run.get("note"), run.get("archived_at")
            if note is not None:
                try:
                    ok = isinstance(note, str) and manage.check_note(note) == note
                except UsageError as exc:
                    raise UsageError(f"{path}: records/runs.jsonl: {exc.message}") from None
                if not ok:
                    raise UsageError(f"{path}: records/runs.jsonl: 'note' is not a note")
            if archived is not None and (
                type(archived) not in (int, float) or not math.isfinite(archived)
            ):
                raise UsageError(f"{path}: records/runs.jsonl: 'archived_at' is not a time")

    def referenced(self) -> set[str]:
        """SHA-256 of the blobs the records refer to (artifacts, model and dataset files)."""
        found = {a["sha256"] for a in self.artifacts} | {d["sha256"] for d in self.datasets}
        for m in self.models:
            found.update(m[k] for k in ("model_sha256", "schema_sha256", "holdout_sha256"))
        return {str(x) for x in found if x}

    # -- the merge ---------------------------------------------------------------

    def run(self, conn: Any) -> None:
        store, report = self.store, self.report
        write = conn is not None
        project_ids = self._projects(conn)
        by_run: dict[str, list[dict[str, Any]]] = {}
        for table in ("params", "artifacts", "resources", "events"):
            for row in getattr(self, table):
                by_run.setdefault(f"{table}:{row['run_uuid']}", []).append(row)
        local = records.local_runs(store, [r["uuid"] for r in self.runs])
        run_ids: dict[str, int] = {u: x.id for u, x in local.items()}
        created: set[str] = set()
        merge_metrics: set[str] = set()
        for run in self.runs:
            pid = project_ids.get(run["project"])
            here = local.get(run["uuid"])
            params = {p["key"]: p["value"] for p in by_run.get(f"params:{run['uuid']}", [])}
            if here is None:
                report.count("runs", "new")
                created.add(run["uuid"])
                merge_metrics.add(run["uuid"])
                if write:
                    run_ids[run["uuid"]] = self._insert_run(
                        conn, pid, run, run_ids, by_run, run["uuid"]
                    )
                continue
            same = here.fingerprint == tuple(run[c] for c in records.RUN_FINGERPRINT) and (
                records.local_params(store, here.id) == params
            )
            if same:
                report.count("runs", "identical")
                merge_metrics.add(run["uuid"])
                continue
            report.count("runs", "conflicting")
            if self.on_conflict == "overwrite":
                merge_metrics.add(run["uuid"])
                if write:
                    records.overwrite_run(conn, here.id, run)
                    records.replace_params(conn, here.id, params)
                    self._artifacts(conn, here.id, by_run.get(f"artifacts:{run['uuid']}", []))
            elif self.on_conflict == "rename":
                created.add(run["uuid"])
                merge_metrics.add(run["uuid"])
                if write:
                    renamed = {**run, "uuid": uuid.uuid4().hex}
                    run_ids[run["uuid"]] = self._insert_run(
                        conn, pid, renamed, run_ids, by_run, run["uuid"]
                    )
        self._metrics(conn, run_ids, merge_metrics, created)
        self._notes(conn, run_ids, created)
        if write:
            records.insert_events(
                conn,
                [
                    (
                        e["ts"],
                        e["kind"],
                        project_ids.get(e.get("project")),
                        run_ids[u],
                        e["message"],
                        e["data"],
                    )
                    for u in sorted(created)
                    for e in by_run.get(f"events:{u}", [])
                ],
            )
        dataset_ids = self._datasets(conn, project_ids)
        if write:
            records.link_datasets(
                conn,
                [
                    (run_ids[r["run_uuid"]], dataset_ids[r["dataset_uuid"]], r["role"])
                    for r in self.run_datasets
                    if r["run_uuid"] in run_ids and r["dataset_uuid"] in dataset_ids
                ],
            )
        model_ids = self._models(conn, project_ids, run_ids)
        # Aliases and decisions may point at versions an earlier archive brought.
        elsewhere = {a["version_uuid"] for a in self.aliases} | {
            u for p in self.promotions for u in (p["challenger_uuid"], p["champion_uuid"]) if u
        }
        for u, x in records.local_models(self.store, elsewhere - set(model_ids)).items():
            model_ids[u] = x.id
        self._aliases(conn, project_ids, model_ids)
        self._promotions(conn, project_ids, model_ids)
        self._pipelines(conn, project_ids)

    def _projects(self, conn: Any) -> dict[str, int | None]:
        out: dict[str, int | None] = {}
        several = len(self.projects) > 1
        for p in self.projects:
            here = records.project_by_name(self.store, p["name"])
            if here is not None:
                self.report.count("projects", "identical")
                out[p["name"]] = here.id
                continue
            if self.project_dir is not None:
                folder = self.project_dir / p["name"] if several else self.project_dir
                path = str(Path(folder).expanduser().resolve())
            elif p["name"] in self.folders:
                path = str(self.folders[p["name"]])
            else:
                path = str(p["path"])
            taken = records.project_by_path(self.store, path)
            if taken is not None:
                raise UsageError(
                    f"project {p['name']}: its folder {path} is project {taken.name}'s here;"
                    " give the folder it has on this machine with --project-dir"
                )
            self.report.count("projects", "new")
            self.report.projects[p["name"]] = path
            out[p["name"]] = (
                records.insert_project(conn, p["name"], path, p["created_at"]) if conn else None
            )
        return out

    def _notes(self, conn: Any, run_ids: dict[str, int], created: set[str]) -> None:
        """Tags merged as sets; the note and archive time of a run copied here
        when it has none, else by `on_conflict` (overwrite takes the archive's)."""
        tags: dict[str, list[dict[str, Any]]] = {}
        for row in self.tags:
            tags.setdefault(row["run_uuid"], []).append(row)
        # Only the runs the archive tags or notes are looked up here: reading
        # notes reads whole rows of `runs`, which costs on a re-import of many.
        noted = {r["uuid"] for r in self.runs if r.get("note") or r.get("archived_at") is not None}
        tagged = [run_ids[u] for u in run_ids if u not in created and u in tags]
        with_notes = [run_ids[u] for u in run_ids if u not in created and u in noted]
        here_tags = run_notes.tags_of(self.store, tagged) if tagged else {}
        here_notes = run_notes.notes_of(self.store, with_notes) if with_notes else {}
        new_tags: list[tuple[int, str, float]] = []
        for run in self.runs:
            key = run["uuid"]
            run_id = run_ids.get(key)
            fresh = key in created
            if run_id is None and not fresh:
                continue  # not in the archive's runs here (cannot happen; a guard)
            have = set() if fresh or run_id is None else set(here_tags.get(run_id, ()))
            for t in tags.get(key, []):
                if t["tag"] in have:
                    self.report.count("tags", "identical")
                    continue
                have.add(t["tag"])
                self.report.count("tags", "new")
                if conn is not None and run_id is not None:
                    new_tags.append((run_id, t["tag"], t["created_at"]))
            theirs = (run.get("note"), run.get("archived_at"))
            if theirs == (None, None):
                continue
            mine: tuple[Any, Any] = (None, None)
            if not fresh and run_id is not None and run_id in here_notes:
                found = here_notes[run_id]
                mine = (found.note, found.archived_at)
            if mine == theirs:
                self.report.count("notes", "identical")
                continue
            if mine == (None, None):
                self.report.count("notes", "new")
            else:
                self.report.count("notes", "conflicting")
                if self.on_conflict != "overwrite":
                    continue
            if conn is not None and run_id is not None:
                records.set_run_notes(conn, run_id, *theirs)
        if conn is not None:
            records.insert_tags(conn, new_tags)

    def _insert_run(
        self,
        conn: Any,
        project_id: int | None,
        run: dict[str, Any],
        run_ids: dict[str, int],
        by_run: dict[str, list[dict[str, Any]]],
        key: str,
    ) -> int:
        """Insert `run` (known in the archive as `key`) with its params, artifacts
        and resource samples."""
        assert project_id is not None
        parent = run_ids.get(run["parent_uuid"]) if run["parent_uuid"] else None
        run_id = records.insert_run(conn, project_id, parent, run)
        records.replace_params(
            conn, run_id, {p["key"]: p["value"] for p in by_run.get(f"params:{key}", [])}
        )
        self._artifacts(conn, run_id, by_run.get(f"artifacts:{key}", []))
        records.insert_resources(
            conn,
            [
                (run_id, *(r[c] for c in records.RESOURCE_COLUMNS))
                for r in by_run.get(f"resources:{key}", [])
            ],
        )
        return run_id

    def _artifacts(self, conn: Any, run_id: int, rows: list[dict[str, Any]]) -> None:
        records.insert_artifacts(
            conn,
            [
                (run_id, a["name"], a["sha256"], a["size"], a.get("kind"), a["created_at"])
                for a in rows
            ],
        )

    def _metrics(
        self, conn: Any, run_ids: dict[str, int], merge: set[str], created: set[str]
    ) -> None:
        wanted = [(i, s) for i, s in enumerate(self.series) if s["run_uuid"] in merge]
        existing = records.series_counts(
            self.store, [run_ids[s["run_uuid"]] for _, s in wanted if s["run_uuid"] in run_ids]
        )
        for i, s in wanted:
            run_id = run_ids.get(s["run_uuid"])
            fresh = s["run_uuid"] in created
            have = 0 if fresh or run_id is None else existing.get((run_id, s["key"]), 0)
            if not fresh and have == s["count"]:
                continue  # the same series: nothing to merge
            steps, stamps, values = self._points(i, s)
            points = list(zip(steps, stamps, values, strict=True))
            if have:
                assert run_id is not None
                known = records.series_steps(self.store.conn, run_id, s["key"])
                points = [
                    p for p in points if (p[0], p[1] if p[0] is None else None) not in known
                ]
            if not points:
                continue
            self.report.metric_points_added += len(points)
            if conn is not None:
                assert run_id is not None
                records.append_points(conn, run_id, s["key"], points)

    def _points(self, index: int, s: dict[str, Any]) -> tuple[list, list, list]:
        path = self.archive.path
        try:
            row = json.loads(self.point_lines[index]) if index < len(self.point_lines) else None
        except (ValueError, RecursionError):
            row = None
        if not isinstance(row, dict):
            raise UsageError(f"{path}: records/metrics.jsonl line {index + 1} is not an object")
        steps, stamps, values = row.get("steps"), row.get("ts"), row.get("values")
        if not (
            isinstance(steps, list)
            and isinstance(stamps, list)
            and isinstance(values, list)
            and len(steps) == len(stamps) == len(values) == s["count"]
            and set(map(type, steps)) <= _STEP_TYPES
            and set(map(type, stamps)) <= _TIME_TYPES
            and all(map(math.isfinite, stamps))
            and set(map(type, values)) <= _VALUE_TYPES
        ):
            raise UsageError(
                f"{path}: records/metrics.jsonl line {index + 1}: expected {s['count']} points"
                " of integer steps, times and numeric values"
            )
        return steps, stamps, values

    def _datasets(self, conn: Any, project_ids: dict[str, int | None]) -> dict[str, int]:
        local = records.local_datasets(self.store, [d["uuid"] for d in self.datasets])
        out = {u: x.id for u, x in local.items()}
        for d in self.datasets:
            if d["uuid"] in local:
                self.report.count("dataset_versions", "identical")
                continue
            pid = project_ids.get(d["project"])
            same = records.dataset_by_sha(self.store, pid, d["sha256"]) if pid else None
            if same is not None:
                self.report.count("dataset_versions", "identical")
                out[d["uuid"]] = same
                continue
            self.report.count("dataset_versions", "new")
            if conn is not None:
                assert pid is not None
                out[d["uuid"]] = records.insert_dataset(conn, pid, d)
        return out

    def _models(
        self, conn: Any, project_ids: dict[str, int | None], run_ids: dict[str, int]
    ) -> dict[str, int]:
        local = records.local_models(self.store, [m["uuid"] for m in self.models])
        out = {u: x.id for u, x in local.items()}
        taken: dict[int, set[int]] = {}
        for m in self.models:
            here = local.get(m["uuid"])
            if here is not None:
                what = "identical" if here.fingerprint[0] == m["model_sha256"] else "conflicting"
                self.report.count("model_versions", what)
                continue
            pid = project_ids.get(m["project"])
            run_id = run_ids.get(m["run_uuid"])
            if run_id is None and conn is not None:
                raise UsageError(
                    f"{self.archive.path}: model version {m['version']} of {m['project']} comes"
                    f" from run {m['run_uuid']}, which is neither in the archive nor here"
                )
            self.report.count("model_versions", "new")
            if conn is None:
                continue
            assert pid is not None and run_id is not None
            numbers = taken.setdefault(pid, records.model_numbers(self.store, pid))
            number = int(m["version"])
            if number in numbers:
                number = max(numbers) + 1
                self.report.renumbered.append({"from": int(m["version"]), "to": number})
            numbers.add(number)
            out[m["uuid"]] = records.insert_model(conn, pid, run_id, number, m)
        return out

    def _aliases(
        self, conn: Any, project_ids: dict[str, int | None], model_ids: dict[str, int]
    ) -> None:
        source = self.archive.manifest.get("store_id")
        for a in self.aliases:
            pid, version_id = project_ids.get(a["project"]), model_ids.get(a["version_uuid"])
            if pid is None or version_id is None:
                if conn is None:
                    self.report.count("aliases", "new")
                continue
            if records.alias_target(self.store, pid, a["alias"]) == version_id:
                self.report.count("aliases", "identical")
                continue
            if self.accept_aliases:
                self.report.count("aliases", "new")
                if conn is not None:
                    records.set_alias(conn, pid, a["alias"], version_id, a["updated_at"])
                continue
            if records.has_proposal(self.store, pid, a["alias"], version_id):
                self.report.count("aliases", "identical")
                continue
            self.report.count("aliases", "new")
            self.report.proposals += 1
            if conn is not None:
                records.propose_alias(
                    conn,
                    pid,
                    a["alias"],
                    version_id,
                    str(source) if source else None,
                    a["updated_at"],
                )

    def _promotions(
        self, conn: Any, project_ids: dict[str, int | None], model_ids: dict[str, int]
    ) -> None:
        for p in self.promotions:
            pid = project_ids.get(p["project"])
            challenger = model_ids.get(p["challenger_uuid"])
            if pid is None or challenger is None:
                if conn is None:
                    self.report.count("promotions", "new")
                continue
            if records.has_promotion(self.store, challenger, p["alias"], p["created_at"]):
                self.report.count("promotions", "identical")
                continue
            self.report.count("promotions", "new")
            if conn is not None:
                champion = model_ids.get(p["champion_uuid"]) if p["champion_uuid"] else None
                records.insert_promotion(conn, pid, p["alias"], challenger, champion, p)

    def _pipelines(self, conn: Any, project_ids: dict[str, int | None]) -> None:
        for p in self.pipelines:
            pid = project_ids.get(p["project"])
            if pid is not None and records.has_pipeline(
                self.store, pid, p["created_at"], p["trigger"]
            ):
                self.report.count("pipelines", "identical")
                continue
            self.report.count("pipelines", "new")
            if conn is not None:
                assert pid is not None
                records.insert_pipeline(conn, pid, p)
