"""`workbench doctor`: what this machine and store look like to the workbench."""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from workbench import __version__, paths
from workbench.gpu import GpuMonitor
from workbench.store import Store

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


def diagnose(store: Store, gpu: GpuMonitor | None = None) -> dict[str, Any]:
    """Every check, as one document; `problems` lists what needs attention."""
    import sqlite3

    gpu = gpu or GpuMonitor()
    integrity = store.scalar("PRAGMA integrity_check")
    devices = gpu.devices() if gpu.available else []
    problems = []
    if integrity != "ok":
        problems.append(f"store integrity check failed: {integrity}")
    if store.journal_mode != "wal":
        problems.append(
            f"the store's filesystem does not support WAL; using {store.journal_mode} "
            "journal (slower with several writers)"
        )
    limits = inotify_limits()
    if limits["max_user_watches"] is not None and limits["max_user_watches"] < 8192:
        problems.append(
            "fs.inotify.max_user_watches is low; watching data folders may fall back "
            "to polling (raise it with sysctl)"
        )
    info = {
        "workbench": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "libraries": library_versions(),
        "store": {
            "home": str(paths.home()),
            "database": str(store.path),
            "size_bytes": store.path.stat().st_size if store.path.exists() else 0,
            "sqlite": sqlite3.sqlite_version,
            "journal_mode": store.journal_mode,
            "integrity": integrity,
            "pending_migrations": store.pending_migrations(),
            "projects": store.scalar("SELECT COUNT(*) FROM projects"),
            "runs": store.scalar("SELECT COUNT(*) FROM runs"),
        },
        "gpu": {"available": bool(devices), "devices": devices, "reason": gpu.reason},
        "inotify": limits,
        "problems": problems,
    }
    gpu.close()
    return info
