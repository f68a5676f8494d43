"""Workbench plugin: runs a shell command for each event, with the event as JSON on
stdin. Settings, in `$WORKBENCH_HOME/config.toml`:

    [plugins.notify-shell]
    command = "curl -s -d @- http://localhost:8080/hook"   # required
    events = ["model.promoted", "data.rejected"]           # optional: only these kinds
    timeout = 10                                           # optional: seconds, then killed
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from typing import Any

from workbench import hookimpl

DEFAULT_TIMEOUT = 10.0
STDERR_TAIL = 2000  # characters of the command's stderr kept in a failure report


class NotifyError(Exception):
    """The command failed, hung, or the settings are wrong; Workbench reports it."""


@hookimpl
def workbench_notify(event: dict[str, Any], settings: dict[str, Any]) -> None:
    command, events, timeout = _settings(settings)
    if command is None or (events is not None and event.get("kind") not in events):
        return
    run(command, event, timeout)


def _settings(settings: dict[str, Any]) -> tuple[str | None, list[str] | None, float]:
    command = settings.get("command")
    if command is not None and not (isinstance(command, str) and command.strip()):
        raise NotifyError("[plugins.notify-shell] command: expected a shell command (a string)")
    events = settings.get("events")
    if events is not None and not (
        isinstance(events, list) and all(isinstance(e, str) for e in events)
    ):
        raise NotifyError('[plugins.notify-shell] events: expected a list like ["model.promoted"]')
    timeout = settings.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise NotifyError(f"[plugins.notify-shell] timeout: expected seconds > 0, got {timeout!r}")
    return command, events, float(timeout)


def run(command: str, event: dict[str, Any], timeout: float) -> None:
    """Run `command` with the event on stdin; raise NotifyError with its exit code and
    stderr when it fails. A command still running after `timeout` seconds is killed
    with everything it started, so a hung hook never holds up the pipeline."""
    env = {
        **os.environ,
        "WORKBENCH_EVENT_KIND": str(event.get("kind", "")),
        "WORKBENCH_EVENT_PROJECT": str(event.get("project", "")),
    }
    proc = subprocess.Popen(
        command,
        shell=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,  # its own process group, so a kill reaches its children
    )
    payload = json.dumps(event, default=str).encode()
    try:
        _, stderr = proc.communicate(payload, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise NotifyError(
            f"`{command}` did not finish within {timeout:g}s and was killed"
        ) from None
    if proc.returncode != 0:
        tail = stderr.decode(errors="replace").strip()[-STDERR_TAIL:]
        raise NotifyError(
            f"`{command}` exited with code {proc.returncode}" + (f": {tail}" if tail else "")
        )


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended on its own meanwhile
        os.killpg(proc.pid, signal.SIGKILL)
    try:
        proc.communicate(timeout=1)
    except subprocess.TimeoutExpired:  # something outside the group holds the pipe
        for stream in (proc.stdin, proc.stderr):
            if stream:
                stream.close()
        proc.wait(timeout=1)
