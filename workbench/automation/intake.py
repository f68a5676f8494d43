"""Handing new data files to pipelines: which projects are watched, which of
their files no pipeline has taken yet, and queueing a pipeline over them."""

from __future__ import annotations

import time
from pathlib import Path
from stat import S_ISDIR

from workbench.core.datafiles import is_data_file
from workbench.core.errors import UsageError, WorkbenchError
from workbench.projects import get_project, project_config
from workbench.store import Store
from workbench.store import pipelines as rows
from workbench.store import projects as project_rows


def watched_projects(store: Store, names: list[str] | None) -> list[tuple[str, list[Path]]]:
    """(project, watch folders) for the named projects (all when None) whose
    `[automation] on_new_data` is not "off" and that have watch folders."""
    known = [get_project(store, n)["name"] for n in names] if names else project_rows.names(store)
    out = []
    for name in known:
        try:
            _, config = project_config(store, name)
        except WorkbenchError:
            if names:
                raise
            continue  # a broken project must not stop the others being watched
        if config.on_new_data == "off" or not config.watch:
            if names:
                why = "has on_new_data = off" if config.watch else "has no [data] watch folders"
                raise UsageError(f"project {name!r} {why}")
            continue
        out.append((name, list(config.watch)))
    return out


def unprocessed_files(store: Store, project: str) -> list[Path]:
    """Data files in the project's watch folders not yet handed to a pipeline
    (by path, size and mtime)."""
    row, config = project_config(store, project)
    seen = rows.handed_files(store, row["id"])
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
        previous = rows.handed_file(store, row["id"], str(path))
        if again or previous != (stat.st_size, stat.st_mtime_ns):
            fresh.append((str(path), stat.st_size, stat.st_mtime_ns))
    if not fresh:
        return None
    return rows.create(store, row["id"], trigger, fresh, time.time())
