"""`workbench demo`: the sample projects, copied into the workspace and trained once each."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.core import paths
from workbench.config.project import CONFIG_NAME, load_config
from workbench.core.errors import WorkbenchError
from workbench.projects import add_project
from workbench.runs.launch import start_run, wait_for
from workbench.runs.queries import show_run
from workbench.store import Store, pipelines, projects
from workbench.store.pipelines import DONE, FAILED


def samples_dir() -> Path:
    """The sample projects: packaged with a wheel, or beside the package in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_sample_projects", here.parent / "sample_projects"):
        if candidate.is_dir():
            return candidate
    raise WorkbenchError("the sample projects are missing from this installation")


ARRIVING = "data/arriving"  # in a workspace copy: batches that have not arrived yet


def copy_samples(workspace: Path) -> list[Path]:
    """Copy each sample project into the workspace once; later calls reuse the copies,
    so edits made there survive. The source folder is never written to. The
    incoming batches wait in `data/arriving` until the demo drops them into the
    watched folder."""
    folders = []
    for source in sorted(samples_dir().iterdir()):
        if not (source / CONFIG_NAME).is_file():
            continue
        target = workspace / source.name
        if not target.exists():
            staging = workspace / f".{source.name}.copying"
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(source, staging)
            for folder in load_config(staging).watch:
                arriving = staging / ARRIVING
                arriving.mkdir(parents=True, exist_ok=True)
                for batch in sorted(folder.glob("*")) if folder.is_dir() else []:
                    batch.rename(arriving / batch.name)
            staging.rename(target)
        folders.append(target)
    return folders


def baseline_params(params: dict[str, Any]) -> dict[str, Any]:
    """A quick first model (a tenth of the trees or epochs), so that the loop has
    something to improve on when new data arrives."""
    return {k: max(2, int(v) // 10) for k, v in params.items() if k in ("n_estimators", "epochs")}


def start_demo_runs(
    store: Store, progress: Callable[[str], None] = lambda _: None
) -> list[dict[str, Any]]:
    """Copy and register the sample projects and queue a quick baseline run of each."""
    from workbench.runs import warm

    # Three trainers start at once and the pipelines retrain soon after: one
    # process imports the libraries and forks each of them (see runs/warm.py).
    warm.ensure_server()
    started = []
    for folder in copy_samples(paths.workspace_dir()):
        config = load_config(folder)
        name = _register(store, folder, config.name)
        progress(f"starting a baseline run of {name}…")
        overrides = baseline_params(config.params)
        run_id, supervisor = start_run(store, name, overrides)
        started.append(
            {
                "project": name,
                "run": run_id,
                "supervisor": supervisor,
                "metric": config.metric,
                "baseline": overrides,
            }
        )
    return started


def _register(store: Store, folder: Path, name: str) -> str:
    """Register the workspace copy `folder` (project `name`) unless an earlier demo
    did; returns the registered name. A copy registered already is used as
    `run start` uses any registered project: its config and params are checked
    when the run is queued, without `add_project` importing its estimator's
    library again (seconds, for scikit-learn) only to find the row it has."""
    known = projects.by_name(store, name)
    if known is not None and Path(known.path) == folder.resolve():
        return known.name
    return add_project(store, folder)["name"]


def run_demo(
    store: Store, progress: Callable[[str], None] = lambda _: None
) -> list[dict[str, Any]]:
    """Train a baseline of each sample project, then drop its new batches into
    its watched folder and follow the pipelines; summarise it all."""
    results = []
    for started in start_demo_runs(store, progress):
        name, run_id, metric = started["project"], started["run"], started["metric"]
        progress(f"waiting for run {run_id} ({name})…")
        wait_for(store, run_id, started["supervisor"])
        info = show_run(store, run_id)
        results.append(
            {
                "project": name,
                "run": run_id,
                "status": info["status"],
                "metric": metric,
                "value": info["metrics"].get(metric) if metric else None,
                "duration_s": info["duration_s"],
                "cpu_percent_max": info["resources"]["cpu_percent_max"],
                "rss_bytes_max": info["resources"]["rss_bytes_max"],
                "workspace": str(paths.workspace_dir()),
                "baseline": started["baseline"],
            }
        )
    arrive(store, results, progress)
    return results


def info_folder(store: Store, project: str) -> Path:
    """The folder of the registered project `project`."""
    found = projects.by_name(store, project)
    if found is None:
        raise WorkbenchError(f"no project named {project!r}")
    return Path(found.path)


def arrive(
    store: Store,
    results: list[dict[str, Any]],
    progress: Callable[[str], None],
    timeout: float = 600.0,
) -> None:
    """Drop each project's waiting batches into its watched folder, one at a
    time, under a real watcher, and record what the pipeline made of each:
    accepted, rejected, drifted, retrained, promoted, exported."""
    import os
    import time

    from workbench.automation import daemon
    from workbench.automation.pipeline import describe

    waiting = {
        r["project"]: sorted((info_folder(store, r["project"]) / ARRIVING).glob("*"))
        for r in results
    }
    if not any(waiting.values()):
        return  # an earlier demo already dropped them
    started_here = not daemon.is_running()
    if started_here:
        progress("starting the watcher…")
        daemon.detach(daemon.Options(projects=list(waiting), debounce=0.5, quiet=1.0))
    try:
        for result in results:
            result["batches"] = []
            watch = load_config(info_folder(store, result["project"])).watch
            for batch in waiting[result["project"]]:
                target = watch[0] / batch.name
                progress(f"{result['project']}: {batch.name} arrives…")
                newest = next(iter(pipelines.recent_ids(store, limit=1)), 0)
                os.replace(batch, target)  # arrives atomically, as a finished file
                pipeline_id = _wait_for_pipeline(store, newest, target, timeout)
                doc = describe(store, pipeline_id)
                result["batches"].append(
                    {
                        "file": batch.name,
                        "pipeline": pipeline_id,
                        "outcome": doc["outcome"],
                        "exit_code": doc["exit_code"],
                        "steps": [
                            {"step": s["step"], "status": s["status"], "summary": s["summary"]}
                            for s in doc["steps"]
                        ],
                    }
                )
                time.sleep(0.1)
    finally:
        if started_here:
            daemon.stop()


def _wait_for_pipeline(store: Store, after: int, file: Path, timeout: float) -> int:
    """The id of the pipeline over `file` (newer than `after`) once it is done."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        newer = [i for i in pipelines.recent_ids(store, limit=1000) if i > after]
        for pipeline_id in sorted(newer):
            found = pipelines.get(store, pipeline_id)
            if found and str(file) in found.files and found.state in (DONE, FAILED):
                return pipeline_id
        time.sleep(0.2)
    raise WorkbenchError(f"no pipeline finished over {file.name} within {timeout:.0f} s")
