"""Where the store lives: `$WORKBENCH_HOME`, else the platform's user data dir."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "WORKBENCH_HOME"


def home() -> Path:
    """The store's root folder, created on first use."""
    configured = os.environ.get(HOME_ENV)
    if configured:
        root = Path(configured).expanduser()
    else:
        import platformdirs

        root = Path(platformdirs.user_data_dir("workbench", appauthor=False))
    root.mkdir(parents=True, exist_ok=True)
    return root


def db_path() -> Path:
    return home() / "workbench.db"


def run_dir(run_id: int) -> Path:
    """Folder holding one run's logs and working files."""
    return home() / "runs" / str(run_id)


def artifacts_dir() -> Path:
    """Content-addressed artifact storage (files named by their SHA-256)."""
    return home() / "artifacts"


def workspace_dir() -> Path:
    """Where `workbench demo` copies the sample projects."""
    return home() / "workspace"


def user_config_path() -> Path:
    return home() / "config.toml"


def run_log(run_id: int) -> Path:
    """The trainer's combined stdout and stderr."""
    return run_dir(run_id) / "output.log"


def artifact_file(sha256: str) -> Path:
    return artifacts_dir() / sha256[:2] / sha256
