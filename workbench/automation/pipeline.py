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

This module claims and runs pipelines and reads them back; submitting lives
in `intake`, the flow in `runner`, its steps in `data_steps` and
`model_steps` (re-exported here for existing callers).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psutil

from workbench.core.datafiles import is_data_file  # noqa: F401 (re-exported)
from workbench.automation.intake import submit, unprocessed_files, watched_projects
from workbench.automation.model_steps import export_dir
from workbench.automation.runner import (
    EXIT_FAILED,
    EXIT_KEPT,
    EXIT_OK,
    EXIT_REJECTED,
    Runner,
    StepListener,
)
from workbench.core.errors import UsageError
from workbench.projects import get_project
from workbench.store import Store
from workbench.store import pipelines as rows

__all__ = [
    "EXIT_FAILED",
    "EXIT_KEPT",
    "EXIT_OK",
    "EXIT_REJECTED",
    "StepListener",
    "describe",
    "export_dir",
    "is_data_file",
    "list_pipelines",
    "run_pending",
    "run_pipeline",
    "submit",
    "unprocessed_files",
    "watched_projects",
]


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
    project_id = get_project(store, project)["id"] if project else None
    while stop is None or not stop.is_set():
        candidates = rows.unfinished(store, project_id)
        claimable = [
            c.id
            for c in candidates
            if c.state == rows.PENDING or _orphaned(c.owner_pid, c.owner_started_at)
        ]
        claimable = [c for c in claimable if c not in done]
        if not claimable:
            break
        run_pipeline(store, claimable[0], on_step=on_step)
        done.append(claimable[0])
    return done


def _orphaned(pid: int | None, started: float | None) -> bool:
    """A running pipeline whose process is gone (a killed watcher; a zombie
    counts as gone)."""
    from workbench.runs.process_tree import find

    return find(pid, started) is None


def _claim(store: Store, pipeline_id: int) -> bool:
    me = psutil.Process()
    claimed = rows.claim(store, pipeline_id, (me.pid, me.create_time()), _orphaned, time.time())
    if claimed is None:
        raise UsageError(f"no pipeline {pipeline_id}")
    return claimed


def run_pipeline(
    store: Store, pipeline_id: int, on_step: StepListener | None = None
) -> dict[str, Any]:
    """Run (or resume) one pipeline; returns its document (`describe`)."""
    if _claim(store, pipeline_id):
        found = rows.get(store, pipeline_id)
        assert found is not None  # just claimed; pipelines are never deleted alone
        runner = Runner(store, found, on_step)
        try:
            outcome, code = runner.run()
        except Exception as exc:
            _end(store, runner, "failed", "failed", EXIT_FAILED, error=repr(exc))
            raise
        _end(store, runner, "done", outcome, code)
    return describe(store, pipeline_id)


def _end(
    store: Store, runner: Runner, state: str, outcome: str, code: int, error: str | None = None
) -> None:
    note = rows.Note(
        "pipeline.done" if state == "done" else "pipeline.failed",
        f"pipeline {runner.id}: {outcome}" + (f" ({error})" if error else ""),
        runner.project_id,
        {"pipeline": runner.id, "outcome": outcome, "exit_code": code},
    )
    rows.end(
        store,
        runner.id,
        state=state,
        outcome=outcome,
        exit_code=code,
        error=error,
        now=time.time(),
        note=note,
    )


# -- reading ---------------------------------------------------------------------


def describe(store: Store, pipeline_id: int) -> dict[str, Any]:
    """A pipeline with its steps, for `--json` and the UI."""
    from workbench.runs.queries import iso

    found = rows.get(store, pipeline_id)
    if found is None:
        raise UsageError(f"no pipeline {pipeline_id}")
    return {
        "id": found.id,
        "project": found.project,
        "trigger": found.trigger,
        "files": list(found.files),
        "state": found.state,
        "outcome": found.outcome,
        "exit_code": found.exit_code,
        "error": found.error,
        "created_at": iso(found.created_at),
        "ended_at": iso(found.ended_at),
        "steps": [
            {
                "step": s.step,
                "file": s.file or None,
                "status": s.status,
                "summary": s.summary,
                "detail": s.detail,
                "seconds": round(s.ended_at - s.started_at, 3) if s.ended_at else None,
            }
            for s in rows.steps(store, pipeline_id)
        ],
    }


def list_pipelines(store: Store, project: str | None = None, limit: int = 50) -> list[dict]:
    """The latest pipelines (of `project`, or all), newest first, described."""
    project_id = get_project(store, project)["id"] if project else None
    return [describe(store, i) for i in rows.recent_ids(store, project_id, limit)]
