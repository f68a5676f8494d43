"""What a run ran on: interpreter, libraries, code version, machine and seeds."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

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
    return {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "cpu": {"model": cpu_model(), "cores": os.cpu_count()},
        "memory_total": psutil.virtual_memory().total,
        "gpus": [{"name": d["name"], "memory_total": d["memory_total"]} for d in gpu.devices()]
        if gpu.available
        else [],
        "libraries": _versions(),
        "git": git_state(project_root),
        "seeds": seeds,
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _versions() -> dict[str, str]:
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

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".")
    return {
        "commit": commit,
        "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
        "dirty": bool(status),
    }
