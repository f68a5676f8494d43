"""A pipeline's per-file steps: register the file as a dataset version (and
retire the batches it supersedes), validate it, check it for drift, and keep
an accepted labelled batch in the store for retraining."""

from __future__ import annotations

import os
import time
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING, Any

from workbench.core import paths
from workbench.store import pipelines as rows

if TYPE_CHECKING:
    from workbench.automation.runner import Runner, StepResult


def register(run: Runner, file: Path) -> StepResult:
    from workbench.data.versions import register as register_version

    try:
        stat = file.stat()
    except OSError:
        return "failed", "the file is gone", {}
    if not S_ISREG(stat.st_mode):
        # Never opened: reading a FIFO would wait for a writer forever.
        return "failed", "not a regular file (a FIFO, socket or folder)", {}
    version = register_version(run.store, run.project_id, file)
    detail: dict[str, Any] = {
        "version": version["id"],
        "sha256": version["sha256"],
        "rows": version["rows"],
        # The file as it was taken: a later change to it supersedes this batch.
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
    }
    retired = supersede(run, file, version["id"])
    if retired:
        detail["supersedes"] = retired
    earlier = rows.verdict(run.store, run.project_id, version["id"])
    also = "".join(
        f"; supersedes dataset version {r['version']} of pipeline {r['pipeline']}"
        for r in retired
    )
    if earlier:
        return (
            "skipped",
            f"same content as dataset version {version['id']}, already {earlier.verdict}{also}",
            detail,
        )
    return "ok", f"dataset version {version['id']} ({version['rows']} rows){also}", detail


def supersede(run: Runner, file: Path, version_id: int) -> list[dict[str, Any]]:
    """Retire the batches earlier pipelines took from this same file with
    other content: it changed after they took it, and this content replaces
    theirs in the retraining set. Returns what was retired."""
    earlier = rows.registrations(
        run.store, project_id=run.project_id, file=str(file), before=run.id
    )
    retired = []
    for step in earlier:
        old = (step.detail or {}).get("version")
        if old is None or old == version_id:
            continue
        note = rows.Note(
            "data.superseded",
            f"pipeline {run.id}: {file.name} changed after pipeline"
            f" {step.pipeline_id} took it; dataset version {old} leaves the"
            f" retraining set for version {version_id}",
            run.project_id,
            {
                "pipeline": run.id,
                "file": str(file),
                "superseded_version": old,
                "superseded_pipeline": step.pipeline_id,
                "version": version_id,
            },
        )
        if rows.retire_batch(run.store, run.project_id, old, step.pipeline_id, time.time(), note):
            retired.append({"version": old, "pipeline": step.pipeline_id})
    return retired


def validate(run: Runner, file: Path, registered: dict) -> StepResult:
    from workbench.data.checks import validate as validate_file

    report = validate_file(run.store, run.project, file)
    if report["passed"]:
        return "ok", "passed", {"errors": 0, "warnings": report["warnings"]}
    errors = [c for c in report["checks"] if not c["passed"] and c["severity"] == "error"]
    reasons = [c["message"] for c in errors][:5] or ["validation failed"]
    _verdict(run, registered.get("version"), "rejected", labelled=False)
    return "rejected", "; ".join(str(r) for r in reasons), {"report": report}


def drift(run: Runner, file: Path, registered: dict) -> StepResult:
    from workbench.models.degradation import check_drift as drift_report

    report = drift_report(run.store, run.project, file)
    performance = report.get("performance") or {}
    drifted = [c["column"] for c in report["columns"] if c["drifted"]]
    degraded = bool(performance.get("degraded"))
    labelled = _has_labels(run, file)
    _verdict(run, registered["version"], "accepted", labelled=labelled, file=file)
    detail = {
        "dataset_drift": report["dataset_drift"],
        "drifted_columns": drifted,
        "share_drifted": report["share_drifted"],
        "drift_summary": report.get("summary"),
        "drifted": [drift_statistics(c) for c in report["columns"] if c["drifted"]],
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
            run.store,
            "data.drift",
            run.project,
            "; ".join(parts),
            {"pipeline": run.id, "file": str(file), **detail},
        )
        return "alert", "; ".join(parts), detail
    return "ok", "no drift" + ("" if labelled else " (no labels)"), detail


def drift_statistics(column: dict[str, Any]) -> dict[str, Any]:
    """A drifted column's test and effect size, for the alert's detail."""
    keys = (
        *("column", "method", "statistic", "p_value", "threshold", "effect_method"),
        *("effect_size", "effect_threshold", "effect_p_value", "strong"),
    )
    return {k: column.get(k) for k in keys}


def _has_labels(run: Runner, file: Path) -> bool:
    from workbench.data.reading import read_checked

    frame = read_checked(file)
    target = run.config.target
    return target in frame.columns and bool(frame[target].notna().any())


def _verdict(
    run: Runner, version_id: int | None, verdict: str, *, labelled: bool, file: Path | None = None
) -> None:
    if version_id is None:
        return
    stored = None
    if verdict == "accepted" and labelled and file is not None:
        stored = str(_store_batch(file))
    rows.add_verdict(
        run.store,
        run.project_id,
        version_id,
        verdict,
        labelled=labelled,
        stored=stored,
        pipeline_id=run.id,
        now=time.time(),
    )


def _store_batch(file: Path) -> Path:
    """The batch's rows kept in the store (the original may be moved or deleted)."""
    from workbench.data.reading import read_checked
    from workbench.data.versions import sha256_of

    target = paths.home() / "data" / f"{sha256_of(file)}.parquet"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        # Not files.atomic_write_bytes: pandas writes the parquet file itself, unsynced.
        partial = target.with_suffix(".partial")
        read_checked(file).to_parquet(partial, index=False)
        os.replace(partial, target)
    return target
