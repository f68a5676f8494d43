"""A pipeline's model steps: retrain on the reference plus the accepted
batches, evaluate the challenger against the champion, promote it unless the
data it was trained on has been superseded since, and export the winner."""

from __future__ import annotations

import os
import time
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING, Any

from workbench.config.project import ProjectConfig
from workbench.core import paths
from workbench.store import models as model_rows
from workbench.store import pipelines as rows
from workbench.store import runs

if TYPE_CHECKING:
    from workbench.automation.runner import Runner, StepResult


def export_dir(config: ProjectConfig) -> Path:
    return config.root / "exports"


def retrain(run: Runner) -> StepResult:
    from workbench.runs.launch import create_run, wait_for
    from workbench.runs.queue import dispatch

    existing = rows.pipeline_run(run.store, run.id, run.project_id)
    if existing is None:
        train_file, count, batches = training_file(run)
        overrides = {
            "_pipeline": run.id,
            "_train_file": str(train_file),
            "_rows_total": count,
            "_batches": batches,  # dataset versions, checked before promoting
        }
        if run.config.executor != "local":
            # `[runs] executor = "slurm"`: the retrain is a job on the cluster.
            from workbench.projects import project_config
            from workbench.runs.launch import submit_run

            loaded = project_config(run.store, run.project)
            existing = submit_run(
                run.store, run.project, overrides, 0, run.config.executor, loaded
            )
        else:
            from workbench.runs import warm

            # Batches tend to come in series: the first retrain's trainer waits
            # for the server's imports instead of doing its own, and the next
            # ones (within the server's idle time) are forked ready to fit. A
            # script is always started afresh, so it would gain nothing.
            if run.config.trainer != "script":
                warm.ensure_server()
            existing = create_run(run.store, run.project, overrides)
    run.tell({"step": "retrain", "status": "running", "run": existing})
    status = wait_for(run.store, existing, dispatch(run.store).get(existing))
    detail = {"run": existing, "status": status}
    if status != "succeeded":
        return "failed", f"run {existing} {status}", detail
    return "ok", f"run {existing} succeeded", detail


def training_file(run: Runner) -> tuple[Path, int, list[int]]:
    """The reference plus every accepted labelled batch of the project (a
    superseded batch is no longer accepted); the dataset versions used."""
    import pandas as pd

    from workbench.data.reading import read_checked

    target = paths.home() / "pipelines" / str(run.id) / "train.parquet"
    reference = read_checked(run.config.train_file)
    batches = [
        (b.dataset_version_id, Path(b.stored))
        for b in rows.training_batches(run.store, run.project_id)
        if b.stored is not None
    ]
    batches = [(v, b) for v, b in batches if b.exists()]
    frames = [reference] + [
        pd.read_parquet(b)[lambda f: [c for c in reference.columns if c in f.columns]]
        for _, b in batches
    ]
    combined = pd.concat(frames, ignore_index=True)
    combined = combined[combined[run.config.target].notna()]
    target.parent.mkdir(parents=True, exist_ok=True)
    # Not files.atomic_write_bytes: pandas writes the parquet file itself, unsynced.
    partial = target.with_suffix(".partial")
    combined.to_parquet(partial, index=False)
    os.replace(partial, target)
    return target, len(combined), [v for v, _ in batches]


def evaluate(run: Runner, run_id: int) -> StepResult:
    from workbench.models.gate import evaluate as gate_evaluate
    from workbench.models.registry import get_version_by_id

    registered = model_rows.for_run(run.store, run_id)
    if registered is None:
        return "skipped", f"run {run_id} saved no model to register", {}
    version_id = registered.id
    version = get_version_by_id(run.store, version_id)
    decision = gate_evaluate(run.store, version, config=run.config)
    detail = {**decision.document(), "version_id": version_id}
    if version.aliases and "champion" in version.aliases and decision.champion is None:
        detail["first"] = True
    return "ok", decision.reason, detail


def promote(run: Runner, decision: dict, run_id: int) -> StepResult:
    from workbench.models.gate import promote as gate_promote
    from workbench.models.registry import CHAMPION, get_version_by_id, remove_alias

    version = get_version_by_id(run.store, decision["version_id"])
    superseded = superseded_batches(run, run_id)
    if superseded:
        why = "; ".join(s["reason"] for s in superseded[:3])
        detail: dict[str, Any] = {"promoted": False, "superseded": superseded}
        promoted_before = rows.was_promoted_over_champion(run.store, version.id, CHAMPION)
        if CHAMPION in version.aliases and not promoted_before:
            # Champion only as the project's first version: take that back,
            # so the version trained on the new content becomes champion.
            remove_alias(run.store, run.project, CHAMPION)
            detail["champion_removed"] = True
            why += f"; version {version.version} is no longer champion"
        rows.add_note(
            run.store,
            rows.Note(
                "pipeline.superseded",
                f"pipeline {run.id}: version {version.version} is not promoted: {why}",
                run.project_id,
                {"pipeline": run.id, "version": version.version, "superseded": superseded},
            ),
            time.time(),
        )
        return "skipped", f"not promoted: trained on superseded data ({why})", detail
    if CHAMPION in version.aliases:
        # Already champion: the project's first version, or promoted just
        # before a crash of this pipeline.
        return "ok", f"version {version.version} is champion", {"promoted": True}
    policy = run.config.promote
    if policy == "manual":
        return (
            "ok",
            "awaiting a manual promotion ([automation] promote = manual)",
            {"promoted": False},
        )
    result = gate_promote(run.store, version, CHAMPION, config=run.config, force=policy == "always")
    if result.promoted:
        from workbench.automation.notify import notify

        notify(
            run.store,
            "model.promoted",
            run.project,
            f"version {version.version} is champion: {result.reason}",
            {"pipeline": run.id, **result.document()},
        )
    status = "ok" if result.promoted else "kept"
    return status, result.reason, {"promoted": result.promoted, **result.document()}


def superseded_batches(run: Runner, run_id: int) -> list[dict[str, Any]]:
    """The batches the run trained on that have been superseded since: retired
    by a later pipeline, or their file has changed after it was taken (the
    pipeline that takes the new content retires them)."""
    from workbench.data.versions import sha256_of

    used = runs.params(run.store, run_id).get("_batches")
    out = []
    for version in used if isinstance(used, list) else []:
        verdict = rows.verdict(run.store, run.project_id, version, accepted=True)
        if verdict is None:
            out.append({"version": version, "reason": f"dataset version {version} was superseded"})
            continue
        if verdict.pipeline_id is None:
            continue
        for step in rows.registrations(run.store, pipeline_id=verdict.pipeline_id):
            info = step.detail or {}
            if info.get("version") != version or "size" not in info:
                continue
            path = Path(step.file)
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


def export(run: Runner, version_id: int, fmt: str) -> StepResult:
    from workbench.models.export import export_model
    from workbench.models.registry import get_version_by_id

    version = get_version_by_id(run.store, version_id)
    output = export_dir(run.config) / f"{version.project}-v{version.version}-{fmt}"
    report = export_model(run.store, version, fmt, output, force=True)
    return "ok", f"exported to {report['path']}", {"path": report["path"]}
