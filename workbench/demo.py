"""`workbench demo`: the sample projects, copied into the workspace and trained once each."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench import paths
from workbench.config import CONFIG_NAME, load_config
from workbench.errors import WorkbenchError
from workbench.projects import add_project
from workbench.runs.launch import start_run, wait_for
from workbench.runs.queries import show_run
from workbench.store import Store


def samples_dir() -> Path:
    """The sample projects: packaged with a wheel, or beside the package in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_sample_projects", here.parent / "sample_projects"):
        if candidate.is_dir():
            return candidate
    raise WorkbenchError("the sample projects are missing from this installation")


def copy_samples(workspace: Path) -> list[Path]:
    """Copy each sample project into the workspace once; later calls reuse the copies,
    so edits made there survive. The source folder is never written to."""
    folders = []
    for source in sorted(samples_dir().iterdir()):
        if not (source / CONFIG_NAME).is_file():
            continue
        target = workspace / source.name
        if not target.exists():
            shutil.copytree(source, target)
        folders.append(target)
    return folders


def start_demo_runs(
    store: Store, progress: Callable[[str], None] = lambda _: None
) -> list[dict[str, Any]]:
    """Copy and register the sample projects and queue one run of each."""
    started = []
    for folder in copy_samples(paths.workspace_dir()):
        project = add_project(store, folder)
        progress(f"starting a run of {project['name']}…")
        run_id, supervisor = start_run(store, project["name"], {})
        started.append(
            {
                "project": project["name"],
                "run": run_id,
                "supervisor": supervisor,
                "metric": load_config(folder).metric,
            }
        )
    return started


def run_demo(
    store: Store, progress: Callable[[str], None] = lambda _: None
) -> list[dict[str, Any]]:
    """Train each sample project once and summarise the runs."""
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
            }
        )
    return results
