"""Finding, checking and stopping a run's processes."""

from __future__ import annotations

import contextlib
import os
import signal

import psutil

# psutil's create_time is rounded differently across calls on some systems.
_CREATE_TIME_SLACK = 0.5


def find(pid: int | None, started_at: float | None) -> psutil.Process | None:
    """The live process with this pid *and* create time, so a reused pid never matches."""
    if not pid:
        return None
    try:
        proc = psutil.Process(pid)
        if started_at is not None and abs(proc.create_time() - started_at) > _CREATE_TIME_SLACK:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except psutil.Error:
        return None


def tree(root: psutil.Process) -> list[psutil.Process]:
    """The root and every descendant, snapshotted now."""
    procs = [root]
    with contextlib.suppress(psutil.Error):
        procs += root.children(recursive=True)
    return procs


def terminate(root: psutil.Process, grace: float) -> list[psutil.Process]:
    """SIGTERM the whole tree (snapshotted first), wait `grace`, SIGKILL what is left.

    The root's process group is signalled too, which reaches descendants that
    were orphaned (re-parented to init) but stayed in the group. Returns the
    processes still alive afterwards (normally none).
    """
    procs = tree(root)
    leads_group = False
    with contextlib.suppress(OSError):
        leads_group = os.getpgid(root.pid) == root.pid
    if leads_group:
        with contextlib.suppress(OSError):
            os.killpg(root.pid, signal.SIGTERM)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    if leads_group:
        with contextlib.suppress(OSError):
            os.killpg(root.pid, signal.SIGKILL)
    _, alive = psutil.wait_procs(alive, timeout=2)
    return alive


def survivors(row: dict) -> list[psutil.Process]:
    """Processes of a run left alive after its supervisor died: the trainer
    (by pid and create time) and anything else still in the supervisor's session
    (which catches a trainer started just before the supervisor could record it)."""
    found: dict[int, psutil.Process] = {}
    trainer = find(row.get("pid"), row.get("pid_started_at"))
    if trainer is not None:
        found[trainer.pid] = trainer
    session, born = row.get("supervisor_pid"), row.get("supervisor_started_at") or 0
    if session:
        for proc in psutil.process_iter(["pid", "create_time", "status"]):
            try:
                if (
                    os.getsid(proc.pid) == session
                    and proc.info["create_time"] >= born - _CREATE_TIME_SLACK
                    and proc.info["status"] != psutil.STATUS_ZOMBIE
                ):
                    found.setdefault(proc.pid, proc)
            except (OSError, psutil.Error):
                continue
    return list(found.values())
