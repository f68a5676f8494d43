"""What a run ran on: interpreter, libraries, code version, machine and seeds.

What only changes with the interpreter, its installed packages or the kernel
(the platform string, the CPU model, the libraries' versions) is kept in the
cache folder, keyed by the interpreter's path and mtime, the kernel (`uname`)
and the mtimes of the site-packages folders on `sys.path` (installing or
removing a package changes its folder's). Reading it costs a few stats;
working it out costs `importlib.metadata` scans and, on Linux, a `uname -p`
subprocess (`platform.platform()`), on the way to every run's end.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil

from workbench.core import paths
from workbench.core.gpu import GpuMonitor

LIBRARIES = (
    "workbench-mlops",
    "numpy",
    "pandas",
    "pyarrow",
    "scikit-learn",
    "lightgbm",
    "skops",
    "scipy",
    "torch",
    "xgboost",
    "optuna",
)
SEED_KEYS = ("seed", "random_state", "random_seed")


def capture(
    project_root: Path, params: dict[str, Any], seed: int | None, gpu: GpuMonitor | None = None
) -> dict[str, Any]:
    gpu = gpu or GpuMonitor()
    seeds = {k: v for k, v in params.items() if any(s in k.lower() for s in SEED_KEYS)}
    if seed is not None:
        seeds.setdefault("split_seed", seed)
    static = interpreter_facts()
    return {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": static["platform"],
        "hostname": socket.gethostname(),
        "cpu": {"model": static["cpu_model"], "cores": os.cpu_count()},
        "memory_total": psutil.virtual_memory().total,
        "gpus": [{"name": d["name"], "memory_total": d["memory_total"]} for d in gpu.devices()]
        if gpu.available
        else [],
        "libraries": static["libraries"],
        "git": git_state(project_root),
        "seeds": seeds,
    }


def interpreter_facts() -> dict[str, Any]:
    """The platform string, CPU model and libraries' versions of this
    interpreter: from the cache when its key still holds, else worked out
    and cached."""
    key = _facts_key()
    path = paths.cache_dir() / "environment.json"
    with contextlib.suppress(OSError, ValueError):
        cached = json.loads(path.read_text())
        if _facts_shape(cached) and cached.get("key") == key:
            return cached["facts"]
    facts = {"platform": _platform(), "cpu_model": cpu_model(), "libraries": _versions()}
    with contextlib.suppress(OSError):  # a read-only cache only costs time
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps({"key": key, "facts": facts}))
        os.replace(temporary, path)
    return facts


def _facts_key() -> list[Any]:
    def mtime(folder: str) -> float | None:
        try:
            return os.stat(folder or ".").st_mtime
        except OSError:
            return None

    # Packages live in site-packages folders; the rest of sys.path (the
    # working folder, a project's source) changes often and holds none.
    folders = [p for p in sys.path if os.path.basename(p) in ("site-packages", "dist-packages")]
    # `python` and `python3` of one environment are one interpreter (its
    # site-packages tell environments apart).
    interpreter = os.path.realpath(sys.executable)
    return [
        interpreter,
        mtime(interpreter),
        _kernel(),
        [[folder, mtime(folder)] for folder in folders or sys.path],
    ]


def _kernel() -> list[str]:
    """The system, host, kernel release and version, and machine."""
    if hasattr(os, "uname"):
        return list(os.uname())
    import platform  # Windows: its uname asks no subprocess for these fields

    found = platform.uname()
    return [found.system, found.node, found.release, found.version, found.machine]


def _facts_shape(cached: Any) -> bool:
    facts = cached.get("facts") if isinstance(cached, dict) else None
    return (
        isinstance(facts, dict)
        and isinstance(facts.get("platform"), str)
        and isinstance(facts.get("cpu_model"), str)
        and isinstance(facts.get("libraries"), dict)
        and all(isinstance(v, str) for v in facts["libraries"].values())
    )


def _platform() -> str:
    import platform

    return platform.platform()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def _versions() -> dict[str, str]:
    from importlib import metadata

    found = {}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def git_state(folder: Path) -> dict[str, Any] | None:
    """The commit and dirty flag of the repository holding `folder`, or None."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(folder), *args],
                capture_output=True,
                text=True,
                timeout=5,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    # The commit and the branch in one call: each git costs a fork and an exec.
    names = git("rev-parse", "HEAD", "--abbrev-ref", "HEAD")
    lines = names.splitlines() if names is not None else []
    if len(lines) != 2:
        return None
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".")
    return {"commit": lines[0], "branch": lines[1], "dirty": bool(status)}
