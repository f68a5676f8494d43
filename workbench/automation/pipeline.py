"""The automation pipeline: new files → register → validate → drift → retrain
→ evaluate → promote → export, per the project's `[automation]` policy.

A pipeline is a row in the store and each step a row beside it, written when
the step starts and again when it ends. Running a pipeline skips the steps
already done, so a watcher killed at any point and started again finishes
every pipeline exactly once: the retraining run is found again by the
pipeline id recorded in its params, and a promotion already made is not
judged twice.

A file that changes after a pipeline took it is taken again by a later
pipeline, whose new content supersedes the old: when the later pipeline
registers it, the earlier batch leaves the retraining set (its rows are never
counted twice), and a model trained on a batch that is superseded (or whose
file has changed since) is not promoted.

Exit codes (`workbench pipeline`): 0 promoted or nothing to do, 1 data
rejected, 3 challenger not better, 4 a step failed (training or export).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from stat import S_ISDIR, S_ISREG
from pathlib import Path
from typing import Any

import psutil

from workbench.core import paths
from workbench.automation.datafiles import is_data_file
from workbench.config.project import ProjectConfig
from workbench.core.errors import UsageError, WorkbenchError
from workbench.projects import get_project, project_config
from workbench.store import Store

EXIT_OK, EXIT_REJECTED, EXIT_KEPT, EXIT_FAILED = 0, 1, 3, 4
StepListener = Callable[[int, dict[str, Any]], None]


# -- submitting ------------------------------------------------------------------


def watched_projects(store: Store, names: list[str] | None) -> list[tuple[str, list[Path]]]:
    """(project, watch folders) for the named projects (all when None) whose
    `[automation] on_new_data` is not "off" and that have watch folders."""
    rows = (
        [get_project(store, n) for n in names]
        if names
        else store.rows("SELECT * FROM projects ORDER BY name")
    )
    out = []
    for row in rows:
        try:
            _, config = project_config(store, row["name"])
        except WorkbenchError:
            if names:
                raise
            continue  # a broken project must not stop the others being watched
        if config.on_new_data == "off" or not config.watch:
            if names:
                why = "has on_new_data = off" if config.watch else "has no [data] watch folders"
                raise UsageError(f"project {row['name']!r} {why}")
            continue
        out.append((row["name"], list(config.watch)))
    return out


def unprocessed_files(store: Store, project: str) -> list[Path]:
    """Data files in the project's watch folders not yet handed to a pipeline
    (by path, size and mtime)."""
    row, config = project_config(store, project)
    seen = {
        r["path"]: (r["size"], r["mtime_ns"])
        for r in store.rows(
            "SELECT path, size, mtime_ns FROM watched_files WHERE project_id = ?", (row["id"],)
        )
    }
    found = []
    for folder in config.watch:
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if not (path.is_file() and is_data_file(path)):
                continue
            stat = path.stat()
            if seen.get(str(path)) != (stat.st_size, stat.st_mtime_ns):
                found.append(path)
    return found


def submit(
    store: Store, project: str, files: list[Path], trigger: str, *, again: bool = False
) -> int | None:
    """Queue one pipeline over `files` for `project`. Files already handed to a
    pipeline with the same size and mtime are dropped unless `again`; returns
    the pipeline id, or None when nothing was left."""
    row, _ = project_config(store, project)
    fresh = []
    for path in files:
        path = path.expanduser().absolute()
        try:
            stat = path.stat()
        except OSError as exc:
            if trigger == "cli":
                why = "no such file" if isinstance(exc, FileNotFoundError) else exc.strerror
                raise UsageError(f"{path}: {why or exc}") from None
            continue
        if trigger == "cli" and S_ISDIR(stat.st_mode):
            raise UsageError(f"{path} is a folder; name data files, or none for the watch folders")
        previous = store.row(
            "SELECT size, mtime_ns FROM watched_files WHERE project_id = ? AND path = ?",
            (row["id"], str(path)),
        )
        if again or previous != {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}:
            fresh.append((path, stat))
    if not fresh:
        return None
    now = time.time()
    with store.write() as conn:
        pipeline_id = conn.execute(
            "INSERT INTO pipelines (project_id, trigger, files, state, created_at)"
            " VALUES (?, ?, ?, 'pending', ?)",
            (row["id"], trigger, json.dumps([str(p) for p, _ in fresh]), now),
        ).lastrowid
        conn.executemany(
            "INSERT OR REPLACE INTO watched_files (project_id, path, size, mtime_ns, pipeline_id)"
            " VALUES (?, ?, ?, ?, ?)",
            [(row["id"], str(p), s.st_size, s.st_mtime_ns, pipeline_id) for p, s in fresh],
        )
        store.add_event(
            "pipeline.queued",
            f"pipeline {pipeline_id} queued for {len(fresh)} new file(s)",
            ts=now,
            project_id=row["id"],
            data={"pipeline": pipeline_id, "files": [str(p) for p, _ in fresh]},
        )
    return pipeline_id


# -- running ---------------------------------------------------------------------


def run_pending(
    store: Store,
    stop: threading.Event | None = None,
    on_step: StepListener | None = None,
    project: str | None = None,
) -> list[int]:
    """Run every pending or interrupted pipeline (of `project`, or all) to the
    end, oldest first, resuming each at the step where it stopped; returns
    their ids."""
    done: list[int] = []
    only = " AND project_id = ?" if project else ""
    params = (get_project(store, project)["id"],) if project else ()
    while stop is None or not stop.is_set():
        candidates = store.rows(
            "SELECT id, state, owner_pid, owner_started_at FROM pipelines"
            f" WHERE state IN ('pending', 'running'){only} ORDER BY id",
            params,
        )
        claimable = [c["id"] for c in candidates if c["state"] == "pending" or _orphaned(c)]
        claimable = [c for c in claimable if c not in done]
        if not claimable:
            break
        run_pipeline(store, claimable[0], on_step=on_step)
        done.append(claimable[0])
    return done


def _orphaned(row: dict[str, Any]) -> bool:
    """A running pipeline whose process is gone (a killed watcher; a zombie
    counts as gone)."""
    from workbench.runs.process_tree import find

    return find(row["owner_pid"], row["owner_started_at"]) is None


def _claim(store: Store, pipeline_id: int) -> bool:
    me = psutil.Process()
    with store.write() as conn:
        row = conn.execute(
            "SELECT state, owner_pid, owner_started_at FROM pipelines WHERE id = ?",
            (pipeline_id,),
        ).fetchone()
        if row is None:
            raise UsageError(f"no pipeline {pipeline_id}")
        state, pid, started = row
        mine = pid == me.pid and started == me.create_time()
        resumable = state == "running" and (
            mine or _orphaned({"owner_pid": pid, "owner_started_at": started})
        )
        if state != "pending" and not resumable:
            return False
        conn.execute(
            "UPDATE pipelines SET state = 'running', owner_pid = ?, owner_started_at = ?,"
            " started_at = COALESCE(started_at, ?) WHERE id = ?",
            (me.pid, me.create_time(), time.time(), pipeline_id),
        )
    return True


def run_pipeline(
    store: Store, pipeline_id: int, on_step: StepListener | None = None
) -> dict[str, Any]:
    """Run (or resume) one pipeline; returns its document (`describe`)."""
    if _claim(store, pipeline_id):
        runner = _Runner(store, pipeline_id, on_step)
        try:
            outcome, code = runner.run()
        except Exception as exc:
            _end(store, runner, "failed", "failed", EXIT_FAILED, error=repr(exc))
            raise
        _end(store, runner, "done", outcome, code)
    return describe(store, pipeline_id)


def _end(
    store: Store, runner: _Runner, state: str, outcome: str, code: int, error: str | None = None
) -> None:
    now = time.time()
    with store.write() as conn:
        conn.execute(
            "UPDATE pipelines SET state = ?, outcome = ?, exit_code = ?, ended_at = ?, error = ?"
            " WHERE id = ?",
            (state, outcome, code, now, error, runner.id),
        )
        store.add_event(
            "pipeline.done" if state == "done" else "pipeline.failed",
            f"pipeline {runner.id}: {outcome}" + (f" ({error})" if error else ""),
            ts=now,
            project_id=runner.project_id,
            data={"pipeline": runner.id, "outcome": outcome, "exit_code": code},
        )


class _Runner:
    """One pipeline's steps, each skipped when the store says it already ended."""

    def __init__(self, store: Store, pipeline_id: int, on_step: StepListener | None) -> None:
        row = store.row(
            "SELECT p.*, pr.name AS project FROM pipelines p JOIN projects pr"
            " ON pr.id = p.project_id WHERE p.id = ?",
            (pipeline_id,),
        )
        self.store = store
        self.id = pipeline_id
        self.project = row["project"]
        self.project_id = row["project_id"]
        self.files = [Path(f) for f in json.loads(row["files"])]
        self.on_step = on_step
        _, self.config = project_config(store, self.project)

    # Each step: (status, summary, detail), recorded durably.
    def step(
        self, name: str, work: Callable[[], tuple[str, str, dict[str, Any]]], file: str = ""
    ) -> tuple[str, dict[str, Any]]:
        done = self.store.row(
            "SELECT status, detail FROM pipeline_steps WHERE pipeline_id = ? AND step = ?"
            " AND file = ? AND status != 'running'",
            (self.id, name, file),
        )
        if done:
            return done["status"], json.loads(done["detail"] or "{}")
        now = time.time()
        with self.store.write() as conn:
            conn.execute(
                "INSERT INTO pipeline_steps (pipeline_id, step, file, status, started_at)"
                " VALUES (?, ?, ?, 'running', ?) ON CONFLICT (pipeline_id, step, file)"
                " DO NOTHING",
                (self.id, name, file, now),
            )
        self._tell({"step": name, "file": file, "status": "running"})
        try:
            status, summary, detail = work()
        except WorkbenchError as exc:
            status, summary, detail = "failed", exc.message, {"error": exc.message}
        self.record(name, file, status, summary, detail)
        return status, detail

    def record(self, name: str, file: str, status: str, summary: str, detail: dict) -> None:
        now = time.time()
        with self.store.write() as conn:
            conn.execute(
                "UPDATE pipeline_steps SET status = ?, summary = ?, detail = ?, ended_at = ?"
                " WHERE pipeline_id = ? AND step = ? AND file = ?",
                (status, summary, json.dumps(detail, default=str), now, self.id, name, file),
            )
            kind = {
                "rejected": "data.rejected",
                "alert": "data.alert",
            }.get(status, "pipeline.step")
            where = f" {Path(file).name}" if file else ""
            self.store.add_event(
                kind,
                f"pipeline {self.id} {name}{where}: {summary}",
                ts=now,
                project_id=self.project_id,
                run_id=detail.get("run") if isinstance(detail.get("run"), int) else None,
                data={"pipeline": self.id, "step": name, "file": file, "status": status},
            )
        self._tell({"step": name, "file": file, "status": status, "summary": summary})
        if status == "rejected":
            from workbench.automation.notify import notify

            notify(
                self.store,
                "data.rejected",
                self.project,
                f"{Path(file).name}: {summary}",
                {"pipeline": self.id, "file": file, **detail},
            )

    def _tell(self, step: dict[str, Any]) -> None:
        if self.on_step is not None:
            self.on_step(self.id, step)

    # -- the flow ---------------------------------------------------------------

    def run(self) -> tuple[str, int]:
        rejected, alerts, labelled, accepted = [], [], [], []
        for file in self.files:
            verdict, has_labels = self.per_file(file)
            if verdict == "rejected":
                rejected.append(file)
            elif verdict in ("accepted", "alert"):
                accepted.append(file)
                if verdict == "alert":
                    alerts.append(file)
                if has_labels:
                    labelled.append(file)
        policy = self.config
        retrain = policy.on_new_data == "validate-and-retrain" and (
            bool(labelled) if policy.retrain_on == "new-data" else bool(alerts)
        )
        if not retrain:
            if rejected:
                return "rejected", EXIT_REJECTED
            if alerts:
                return "drift alert", EXIT_OK
            return ("validated" if accepted else "nothing to do"), EXIT_OK
        outcome, code = self.retrain_and_ship()
        if rejected and code == EXIT_OK:
            return f"{outcome}; data rejected", EXIT_REJECTED
        return outcome, code

    def per_file(self, file: Path) -> tuple[str, bool]:
        """register → validate → drift for one file; its verdict and whether it
        has labels (only labelled rows can be trained on)."""
        key = str(file)
        status, detail = self.step("register", lambda: self._register(file), key)
        if status == "failed":
            return "rejected", False
        if status == "skipped":
            return "duplicate", False
        status, _ = self.step("validate", lambda: self._validate(file, detail), key)
        if status != "ok":
            return "rejected", False
        status, drift = self.step("drift", lambda: self._drift(file, detail), key)
        if status == "failed":
            return "rejected", False
        return ("alert" if status == "alert" else "accepted"), bool(drift.get("labelled"))

    def _register(self, file: Path) -> tuple[str, str, dict]:
        from workbench.data.versions import register

        try:
            stat = file.stat()
        except OSError:
            return "failed", "the file is gone", {}
        if not S_ISREG(stat.st_mode):
            # Never opened: reading a FIFO would wait for a writer forever.
            return "failed", "not a regular file (a FIFO, socket or folder)", {}
        version = register(self.store, self.project_id, file)
        detail = {
            "version": version["id"],
            "sha256": version["sha256"],
            "rows": version["rows"],
            # The file as it was taken: a later change to it supersedes this batch.
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
        }
        retired = self._supersede(file, version["id"])
        if retired:
            detail["supersedes"] = retired
        earlier = self.store.row(
            "SELECT verdict FROM data_verdicts WHERE project_id = ? AND dataset_version_id = ?",
            (self.project_id, version["id"]),
        )
        also = "".join(
            f"; supersedes dataset version {r['version']} of pipeline {r['pipeline']}"
            for r in retired
        )
        if earlier:
            return (
                "skipped",
                f"same content as dataset version {version['id']},"
                f" already {earlier['verdict']}{also}",
                detail,
            )
        return "ok", f"dataset version {version['id']} ({version['rows']} rows){also}", detail

    def _supersede(self, file: Path, version_id: int) -> list[dict[str, Any]]:
        """Retire the batches earlier pipelines took from this same file with
        other content: it changed after they took it, and this content replaces
        theirs in the retraining set. Returns what was retired."""
        earlier = self.store.rows(
            "SELECT s.pipeline_id, s.detail FROM pipeline_steps s JOIN pipelines p"
            " ON p.id = s.pipeline_id WHERE p.project_id = ? AND s.step = 'register'"
            " AND s.file = ? AND s.pipeline_id < ? AND s.status = 'ok'",
            (self.project_id, str(file), self.id),
        )
        retired = []
        for row in earlier:
            old = json.loads(row["detail"] or "{}").get("version")
            if old is None or old == version_id:
                continue
            now = time.time()
            with self.store.write() as conn:
                gone = conn.execute(
                    # Only the batch that pipeline accepted from this file: the same
                    # content may have come from another file too.
                    "DELETE FROM data_verdicts WHERE project_id = ? AND dataset_version_id = ?"
                    " AND verdict = 'accepted' AND pipeline_id = ?",
                    (self.project_id, old, row["pipeline_id"]),
                ).rowcount
                if not gone:
                    continue  # rejected, or retired already
                self.store.add_event(
                    "data.superseded",
                    f"pipeline {self.id}: {file.name} changed after pipeline"
                    f" {row['pipeline_id']} took it; dataset version {old} leaves the"
                    f" retraining set for version {version_id}",
                    ts=now,
                    project_id=self.project_id,
                    data={
                        "pipeline": self.id,
                        "file": str(file),
                        "superseded_version": old,
                        "superseded_pipeline": row["pipeline_id"],
                        "version": version_id,
                    },
                )
            retired.append({"version": old, "pipeline": row["pipeline_id"]})
        return retired

    def _validate(self, file: Path, registered: dict) -> tuple[str, str, dict]:
        from workbench.data.checks import validate

        report = validate(self.store, self.project, file)
        if report["passed"]:
            return "ok", "passed", {"errors": 0, "warnings": report["warnings"]}
        errors = [c for c in report["checks"] if not c["passed"] and c["severity"] == "error"]
        reasons = [c["message"] for c in errors][:5] or ["validation failed"]
        self._verdict(registered.get("version"), "rejected", labelled=False)
        return "rejected", "; ".join(str(r) for r in reasons), {"report": report}

    def _drift(self, file: Path, registered: dict) -> tuple[str, str, dict]:
        from workbench.data.checks import drift

        report = drift(self.store, self.project, file)
        performance = report.get("performance") or {}
        drifted = [c["column"] for c in report["columns"] if c["drifted"]]
        degraded = bool(performance.get("degraded"))
        labelled = self._has_labels(file)
        self._verdict(registered["version"], "accepted", labelled=labelled, file=file)
        detail = {
            "dataset_drift": report["dataset_drift"],
            "drifted_columns": drifted,
            "share_drifted": report["share_drifted"],
            "drift_summary": report.get("summary"),
            "drifted": [_drift_statistics(c) for c in report["columns"] if c["drifted"]],
            "performance": performance,
            "labelled": labelled,
        }
        if report["dataset_drift"] or degraded:
            parts = []
            if report["dataset_drift"]:
                parts.append(report["summary"])
            if degraded:
                parts.append(performance["message"])
            from workbench.automation.notify import notify

            notify(
                self.store,
                "data.drift",
                self.project,
                "; ".join(parts),
                {"pipeline": self.id, "file": str(file), **detail},
            )
            return "alert", "; ".join(parts), detail
        return "ok", "no drift" + ("" if labelled else " (no labels)"), detail

    def _has_labels(self, file: Path) -> bool:
        from workbench.data.reading import read_checked

        frame = read_checked(file)
        target = self.config.target
        return target in frame.columns and bool(frame[target].notna().any())

    def _verdict(
        self, version_id: int | None, verdict: str, *, labelled: bool, file: Path | None = None
    ) -> None:
        if version_id is None:
            return
        stored = None
        if verdict == "accepted" and labelled and file is not None:
            stored = str(self._store_batch(file))
        with self.store.write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO data_verdicts (project_id, dataset_version_id, verdict,"
                " labelled, stored, pipeline_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (self.project_id, version_id, verdict, int(labelled), stored, self.id, time.time()),
            )

    def _store_batch(self, file: Path) -> Path:
        """The batch's rows kept in the store (the original may be moved or deleted)."""
        from workbench.data.reading import read_checked
        from workbench.data.versions import sha256_of

        target = paths.home() / "data" / f"{sha256_of(file)}.parquet"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(".partial")
            read_checked(file).to_parquet(partial, index=False)
            os.replace(partial, target)
        return target

    def retrain_and_ship(self) -> tuple[str, int]:
        status, detail = self.step("retrain", self._retrain)
        if status != "ok":
            return "training failed", EXIT_FAILED
        status, decision = self.step("evaluate", lambda: self._evaluate(detail["run"]))
        if status == "failed":
            return "evaluation failed", EXIT_FAILED
        if status == "skipped":
            return "retrained (no model to promote)", EXIT_OK
        status, promoted = self.step("promote", lambda: self._promote(decision, detail["run"]))
        if promoted.get("superseded"):
            return "not promoted: trained on superseded data", EXIT_KEPT
        if not promoted.get("promoted"):
            return "kept champion", EXIT_KEPT
        failed = []
        for fmt in self.config.export:
            status, _ = self.step(
                "export", lambda fmt=fmt: self._export(decision["version_id"], fmt), fmt
            )
            if status != "ok":
                failed.append(fmt)
        if failed:
            return f"promoted; export failed ({', '.join(failed)})", EXIT_FAILED
        return "promoted", EXIT_OK

    def _retrain(self) -> tuple[str, str, dict]:
        from workbench.runs.launch import create_run, wait_for
        from workbench.runs.queue import dispatch

        existing = self.store.scalar(
            "SELECT p.run_id FROM params p JOIN runs r ON r.id = p.run_id"
            " WHERE p.key = '_pipeline' AND p.value = ? AND r.project_id = ?",
            (json.dumps(self.id), self.project_id),
        )
        if existing is None:
            train_file, rows, batches = self._training_file()
            existing = create_run(
                self.store,
                self.project,
                {
                    "_pipeline": self.id,
                    "_train_file": str(train_file),
                    "_rows_total": rows,
                    "_batches": batches,  # dataset versions, checked before promoting
                },
            )
        self._tell({"step": "retrain", "status": "running", "run": existing})
        status = wait_for(self.store, existing, dispatch(self.store).get(existing))
        detail = {"run": existing, "status": status}
        if status != "succeeded":
            return "failed", f"run {existing} {status}", detail
        return "ok", f"run {existing} succeeded", detail

    def _training_file(self) -> tuple[Path, int, list[int]]:
        """The reference plus every accepted labelled batch of the project (a
        superseded batch is no longer accepted); the dataset versions used."""
        import pandas as pd

        from workbench.data.reading import read_checked

        target = paths.home() / "pipelines" / str(self.id) / "train.parquet"
        reference = read_checked(self.config.train_file)
        batches = [
            (r["dataset_version_id"], Path(r["stored"]))
            for r in self.store.rows(
                "SELECT dataset_version_id, stored FROM data_verdicts WHERE project_id = ?"
                " AND verdict = 'accepted' AND labelled = 1 AND stored IS NOT NULL"
                " ORDER BY created_at",
                (self.project_id,),
            )
        ]
        batches = [(v, b) for v, b in batches if b.exists()]
        frames = [reference] + [
            pd.read_parquet(b)[lambda f: [c for c in reference.columns if c in f.columns]]
            for _, b in batches
        ]
        combined = pd.concat(frames, ignore_index=True)
        combined = combined[combined[self.config.target].notna()]
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        combined.to_parquet(partial, index=False)
        os.replace(partial, target)
        return target, len(combined), [v for v, _ in batches]

    def _evaluate(self, run_id: int) -> tuple[str, str, dict]:
        from workbench.models.gate import evaluate
        from workbench.models.registry import get_version_by_id

        version_id = self.store.scalar("SELECT id FROM model_versions WHERE run_id = ?", (run_id,))
        if version_id is None:
            return "skipped", f"run {run_id} saved no model to register", {}
        version = get_version_by_id(self.store, version_id)
        decision = evaluate(self.store, version, config=self.config)
        detail = {**decision.document(), "version_id": version_id}
        if version.aliases and "champion" in version.aliases and decision.champion is None:
            detail["first"] = True
        return "ok", decision.reason, detail

    def _promote(self, decision: dict, run_id: int) -> tuple[str, str, dict]:
        from workbench.models.gate import promote
        from workbench.models.registry import CHAMPION, get_version_by_id, remove_alias

        version = get_version_by_id(self.store, decision["version_id"])
        superseded = self._superseded(run_id)
        if superseded:
            why = "; ".join(s["reason"] for s in superseded[:3])
            detail: dict[str, Any] = {"promoted": False, "superseded": superseded}
            promoted_before = self.store.scalar(
                "SELECT COUNT(*) FROM promotions WHERE challenger_id = ? AND alias = ?"
                " AND promoted = 1 AND champion_id IS NOT NULL",
                (version.id, CHAMPION),
            )
            if CHAMPION in version.aliases and not promoted_before:
                # Champion only as the project's first version: take that back,
                # so the version trained on the new content becomes champion.
                remove_alias(self.store, self.project, CHAMPION)
                detail["champion_removed"] = True
                why += f"; version {version.version} is no longer champion"
            with self.store.write():
                self.store.add_event(
                    "pipeline.superseded",
                    f"pipeline {self.id}: version {version.version} is not promoted: {why}",
                    ts=time.time(),
                    project_id=self.project_id,
                    data={
                        "pipeline": self.id,
                        "version": version.version,
                        "superseded": superseded,
                    },
                )
            return "skipped", f"not promoted: trained on superseded data ({why})", detail
        if CHAMPION in version.aliases:
            # Already champion: the project's first version, or promoted just
            # before a crash of this pipeline.
            return "ok", f"version {version.version} is champion", {"promoted": True}
        policy = self.config.promote
        if policy == "manual":
            return (
                "ok",
                "awaiting a manual promotion ([automation] promote = manual)",
                {"promoted": False},
            )
        result = promote(
            self.store, version, CHAMPION, config=self.config, force=policy == "always"
        )
        if result.promoted:
            from workbench.automation.notify import notify

            notify(
                self.store,
                "model.promoted",
                self.project,
                f"version {version.version} is champion: {result.reason}",
                {"pipeline": self.id, **result.document()},
            )
        status = "ok" if result.promoted else "kept"
        return status, result.reason, {"promoted": result.promoted, **result.document()}

    def _superseded(self, run_id: int) -> list[dict[str, Any]]:
        """The batches the run trained on that have been superseded since: retired
        by a later pipeline, or their file has changed after it was taken (the
        pipeline that takes the new content retires them)."""
        from workbench.data.versions import sha256_of

        used = self.store.scalar(
            "SELECT value FROM params WHERE run_id = ? AND key = '_batches'", (run_id,)
        )
        out = []
        for version in json.loads(used) if used else []:
            verdict = self.store.row(
                "SELECT pipeline_id FROM data_verdicts WHERE project_id = ?"
                " AND dataset_version_id = ? AND verdict = 'accepted'",
                (self.project_id, version),
            )
            if verdict is None:
                out.append(
                    {"version": version, "reason": f"dataset version {version} was superseded"}
                )
                continue
            taken = self.store.rows(
                "SELECT file, detail FROM pipeline_steps WHERE pipeline_id = ?"
                " AND step = 'register' AND status = 'ok'",
                (verdict["pipeline_id"],),
            )
            for step in taken:
                info = json.loads(step["detail"] or "{}")
                if info.get("version") != version or "size" not in info:
                    continue
                path = Path(step["file"])
                try:
                    now = path.stat()
                except OSError:
                    continue  # moved away or deleted: nothing newer to wait for
                if (now.st_size, now.st_mtime_ns) == (info["size"], info["mtime_ns"]):
                    continue
                if not S_ISREG(now.st_mode) or sha256_of(path) != info["sha256"]:
                    out.append(
                        {
                            "version": version,
                            "file": str(path),
                            "reason": f"{path.name} changed after it was taken"
                            f" (dataset version {version})",
                        }
                    )
        return out

    def _export(self, version_id: int, fmt: str) -> tuple[str, str, dict]:
        from workbench.models.export import export_model
        from workbench.models.registry import get_version_by_id

        version = get_version_by_id(self.store, version_id)
        output = export_dir(self.config) / f"{version.project}-v{version.version}-{fmt}"
        report = export_model(self.store, version, fmt, output, force=True)
        return "ok", f"exported to {report['path']}", {"path": report["path"]}


def _drift_statistics(column: dict[str, Any]) -> dict[str, Any]:
    """A drifted column's test and effect size, for the alert's detail."""
    keys = ("column", "method", "statistic", "p_value", "threshold", "effect_method")
    keys += ("effect_size", "effect_threshold", "effect_p_value", "strong")
    return {k: column.get(k) for k in keys}


def export_dir(config: ProjectConfig) -> Path:
    return config.root / "exports"


# -- reading ---------------------------------------------------------------------


def describe(store: Store, pipeline_id: int) -> dict[str, Any]:
    """A pipeline with its steps, for `--json` and the UI."""
    from workbench.runs.queries import iso

    row = store.row(
        "SELECT p.*, pr.name AS project FROM pipelines p JOIN projects pr ON pr.id = p.project_id"
        " WHERE p.id = ?",
        (pipeline_id,),
    )
    if row is None:
        raise UsageError(f"no pipeline {pipeline_id}")
    steps = store.rows(
        "SELECT step, file, status, summary, detail, started_at, ended_at FROM pipeline_steps"
        " WHERE pipeline_id = ? ORDER BY id",
        (pipeline_id,),
    )
    return {
        "id": row["id"],
        "project": row["project"],
        "trigger": row["trigger"],
        "files": json.loads(row["files"]),
        "state": row["state"],
        "outcome": row["outcome"],
        "exit_code": row["exit_code"],
        "error": row["error"],
        "created_at": iso(row["created_at"]),
        "ended_at": iso(row["ended_at"]),
        "steps": [
            {
                "step": s["step"],
                "file": s["file"] or None,
                "status": s["status"],
                "summary": s["summary"],
                "detail": json.loads(s["detail"]) if s["detail"] else None,
                "seconds": round(s["ended_at"] - s["started_at"], 3) if s["ended_at"] else None,
            }
            for s in steps
        ],
    }


def list_pipelines(store: Store, project: str | None = None, limit: int = 50) -> list[dict]:
    where, params = (
        ("WHERE p.project_id = ?", (get_project(store, project)["id"],)) if project else ("", ())
    )
    rows = store.rows(
        f"SELECT p.id FROM pipelines p {where} ORDER BY p.id DESC LIMIT ?", (*params, limit)
    )
    return [describe(store, r["id"]) for r in rows]
