"""`workbench doctor`: what this machine and store look like to the workbench."""

from __future__ import annotations

import platform
import sqlite3
import stat
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from workbench.core.version import __version__
from workbench.core import paths
from workbench.core.gpu import GpuMonitor
from workbench.store import Store
from workbench.store import projects as project_store
from workbench.store import runs as run_store

KEY_LIBRARIES = (
    "sqlite-utils",
    "psutil",
    "nvidia-ml-py",
    "pandas",
    "pyarrow",
    "numpy",
    "scikit-learn",
    "lightgbm",
    "skops",
    "click",
    "rich",
)


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in KEY_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def inotify_limits() -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for key in ("max_user_watches", "max_user_instances"):
        try:
            out[key] = int(Path(f"/proc/sys/fs/inotify/{key}").read_text().strip())
        except (OSError, ValueError):
            out[key] = None  # not Linux, or /proc not mounted
    return out


EXTRAS = {
    "onnx": ("onnx", "onnxruntime", "skl2onnx", "onnxmltools"),
    "mlflow": ("mlflow-skinny",),
}


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def extras() -> dict[str, dict[str, Any]]:
    """Each optional extra (`pip install workbench[onnx]`): installed when all of
    its packages are, and each package's version (None when missing)."""
    out = {}
    for extra, names in EXTRAS.items():
        packages = {name: _version(name) for name in names}
        out[extra] = {"installed": all(packages.values()), "packages": packages}
    return out


def quick_check(store: Store) -> str:
    """`ok`, or the first problem SQLite's quick check finds (and how many)."""
    try:
        found = [row[0] for row in store.conn.execute("PRAGMA quick_check(20)")]
    except sqlite3.DatabaseError as exc:
        return str(exc)
    if found == ["ok"]:
        return "ok"
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return f"{found[0]}{more}"


def _home_mode() -> int | None:
    try:
        return stat.S_IMODE(paths.home().stat().st_mode)
    except OSError:
        return None


def diagnose(
    store: Store | None, gpu: GpuMonitor | None = None, store_error: str | None = None
) -> dict[str, Any]:
    """Every check, as one document; `problems` lists what needs attention and
    `store_ok` says whether the store can be used (`store_error` when it could
    not even be opened)."""
    gpu = gpu or GpuMonitor()
    devices = gpu.devices() if gpu.available else []
    problems = []
    store_info: dict[str, Any] = {"home": str(paths.home()), "database": str(paths.db_path())}
    if store is None:
        problems.append(f"store: {store_error}")
        store_info.update(error=store_error, integrity=None)
    else:
        store_info.update(_store_info(store, problems))
    mode = _home_mode()
    store_info["home_mode"] = None if mode is None else f"{mode:04o}"
    if mode is not None and mode & 0o077:
        problems.append(
            f"{paths.home()} can be read by other users (mode {mode:04o});"
            f" `chmod 700 {paths.home()}` makes the store private"
        )
    limits = inotify_limits()
    if limits["max_user_watches"] is not None and limits["max_user_watches"] < 8192:
        problems.append(
            "fs.inotify.max_user_watches is low; watching data folders may fall back "
            "to polling (raise it with sysctl)"
        )
    from workbench.automation.writers import probe

    writers = probe()
    if not writers.available:
        problems.append(
            f"open writers cannot be seen ({writers.scope}): the watcher takes a file"
            " once it is unchanged for the quiet period, even if it is still open"
        )
    info = {
        "workbench": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "libraries": library_versions(),
        "extras": extras(),
        "store": store_info,
        "store_ok": store is not None and store_info.get("integrity") == "ok",
        "gpu": {"available": bool(devices), "devices": devices, "reason": gpu.reason},
        "inotify": limits,
        "open_writers": {"visible": writers.available, "scope": writers.scope},
        "problems": problems,
    }
    gpu.close()
    return info


def _store_info(store: Store, problems: list[str]) -> dict[str, Any]:
    integrity = quick_check(store)
    if integrity != "ok":
        problems.append(
            f"store integrity check failed: {integrity}; run `workbench fsck` for details"
            " and `workbench fsck --repair` to recover"
        )
    if store.readonly:
        problems.append("the store is read-only: listing works, nothing can be changed")
    elif store.journal_mode != "wal":
        problems.append(
            f"the store's filesystem does not support WAL; using {store.journal_mode} "
            "journal (slower with several writers)"
        )
    try:
        projects = len(project_store.names(store))
        runs = run_store.count(store)
    except sqlite3.DatabaseError:
        projects = runs = None
    return {
        "size_bytes": store.path.stat().st_size if store.path.exists() else 0,
        "sqlite": sqlite3.sqlite_version,
        "journal_mode": store.journal_mode,
        "readonly": store.readonly,
        "integrity": integrity,
        "pending_migrations": store.pending_migrations(),
        "projects": projects,
        "runs": runs,
    }
