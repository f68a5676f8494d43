"""Where the store lives: `$WORKBENCH_HOME`, else the platform's user data dir."""

from __future__ import annotations

import os
from pathlib import Path

from workbench.core import env

HOME_ENV = env.HOME


def home() -> Path:
    """The store's root folder, created on first use readable by this user only
    (0700): the store, logs, models and artifacts under it are private."""
    configured = os.environ.get(HOME_ENV)
    if configured:
        root = Path(configured).expanduser()
    else:
        import platformdirs

        root = Path(platformdirs.user_data_dir("workbench", appauthor=False))
    if not root.is_dir():
        try:
            root.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(root, 0o700)  # mkdir's mode is masked by the umask
        except OSError as exc:
            from workbench.core.errors import StoreError

            raise StoreError(
                f"cannot make the store's folder {root} (${HOME_ENV}): {exc.strerror}"
            ) from None
    return root


PRIVATE_UMASK = 0o077


def make_private() -> int:
    """Files and folders this process creates from now on are its user's only
    (0600 / 0700); returns the previous umask."""
    return os.umask(PRIVATE_UMASK)


def cache_dir() -> Path:
    """Derived data worth keeping between commands (what an installed library
    accepts, say): `$WORKBENCH_CACHE`, else `cache/` in the store's folder.
    Anything in it can be deleted; it is made again when needed."""
    configured = os.environ.get(env.CACHE)
    return Path(configured).expanduser() if configured else home() / "cache"


def db_path() -> Path:
    return home() / "workbench.db"


def identity_path() -> Path:
    """The store's identity file (see `workbench.store.identity`)."""
    return home() / "store.json"


def lost_and_found_dir() -> Path:
    """Where `workbench fsck --repair` moves files that nothing refers to."""
    return home() / "lost+found"


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


def rotated_run_log(run_id: int) -> Path:
    """The older part of a run's output once the log has been rotated."""
    return run_dir(run_id) / "output.log.1"


def artifact_file(sha256: str) -> Path:
    return artifacts_dir() / sha256[:2] / sha256
