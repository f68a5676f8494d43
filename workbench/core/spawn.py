"""Starting a process that outlives the one that starts it: a run's supervisor,
the watcher daemon, the warm runner.

The child gets a session of its own (`start_new_session`: no controlling
terminal, so closing the terminal or an SSH hang-up does not signal it), stdin
from /dev/null, stdout and stderr appended to a log file (or discarded), and no
file descriptor but those three (`close_fds`), so it holds none of the parent's
locks or sockets.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from workbench.core import env, paths


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment with `WORKBENCH_HOME` pinned to the store in use,
    so the child finds the same store even when it came from the platform default."""
    return {**os.environ, env.HOME: str(paths.home()), **extra}


def spawn_detached(
    argv: Sequence[str | os.PathLike[str]],
    *,
    log: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start `argv` detached (see the module docstring); its output is appended to
    `log` (created, with its folder, if missing) or discarded when `log` is None.
    `environ` defaults to `child_env()`. The caller may `poll()` the returned
    process; nothing waits for it."""
    if log is None:
        return _popen(argv, subprocess.DEVNULL, environ, cwd)
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:  # the child has its own copy; ours closes here
        return _popen(argv, out, environ, cwd)


def _popen(
    argv: Sequence[str | os.PathLike[str]],
    out: int | object,
    environ: Mapping[str, str] | None,
    cwd: str | os.PathLike[str] | None,
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=out,  # type: ignore[arg-type]
        stderr=subprocess.STDOUT,
        start_new_session=True,
        close_fds=True,
        env=dict(environ) if environ is not None else child_env(),
        cwd=cwd,
    )
