"""Finding, checking and stopping a run's processes.

A supervisor records every process it ever sees in its run's tree (pid and
create time, in `runs/<id>/processes`), so that a stop, or a stop of a lost
run, reaches them all: daemons that left the tree included, a reused pid never.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
from collections.abc import Iterable

import psutil

from workbench.core import paths
from workbench.store.runs import Run

PROCESSES_FILE = "processes"  # in the run's folder: "pid create_time" per line

# psutil's create_time is rounded differently across calls on some systems.
_CREATE_TIME_SLACK = 0.5


MAX_PID = 2**31 - 1  # beyond any kernel's pid_max; larger numbers are no process


def find(pid: int | None, started_at: float | None) -> psutil.Process | None:
    """The live process with this pid *and* create time, so a reused pid never matches.
    Without a create time any live process with the pid matches: only for a
    process this code just started, or to judge liveness; never to signal one
    (see `find_known`). A pid or time that is not a sane number matches nothing."""
    if type(pid) is not int or not 0 < pid <= MAX_PID:
        return None
    if started_at is not None and not _a_time(started_at):
        return None
    try:
        proc = psutil.Process(pid)
        if started_at is not None and abs(proc.create_time() - started_at) > _CREATE_TIME_SLACK:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except (psutil.Error, ValueError, OverflowError):
        return None


def find_known(pid: int | None, started_at: float | None) -> psutil.Process | None:
    """`find` for a process about to be signalled: its create time must be known,
    so a row that lost it (or never had it) never gets another process stopped."""
    return None if started_at is None else find(pid, started_at)


def _a_time(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value >= 0


def alive(proc: psutil.Process) -> bool:
    """Still running (the same process: psutil checks the create time), not a zombie."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def tree(root: psutil.Process) -> list[psutil.Process]:
    """The root and every descendant, snapshotted now."""
    procs = [root]
    with contextlib.suppress(psutil.Error):
        procs += root.children(recursive=True)
    return procs


def another_run(proc: psutil.Process) -> bool:
    """A supervisor (of another run, which a training script may have started):
    never stopped, nor sampled, as part of this run."""
    try:
        return "workbench.runs.supervisor" in proc.cmdline()[1:3]
    except psutil.Error:
        return False


def record(run_id: int, procs: Iterable[psutil.Process], seen: dict[int, float]) -> None:
    """Append the processes not in `seen` (pid -> create time) to the run's list."""
    lines = []
    for proc in procs:
        try:
            born = proc.create_time()
        except psutil.Error:
            continue
        if proc.pid in seen and seen[proc.pid] == born:
            continue
        if another_run(proc):
            seen[proc.pid] = born
            continue
        seen[proc.pid] = born
        lines.append(f"{proc.pid} {born!r}\n")
    if lines:
        with open(paths.run_dir(run_id) / PROCESSES_FILE, "a") as out:
            out.write("".join(lines))


def recorded(run_id: int) -> list[psutil.Process]:
    """The run's recorded processes that are still alive (same pid and create time)."""
    try:
        text = (paths.run_dir(run_id) / PROCESSES_FILE).read_text(errors="replace")
    except OSError:
        return []
    found: dict[int, psutil.Process] = {}
    for line in text.splitlines():
        try:
            pid, born = line.split()
            proc = find(int(pid), float(born))
        except ValueError:
            continue  # a line cut short by a kill
        if proc is not None and proc.pid != os.getpid() and not another_run(proc):
            found.setdefault(proc.pid, proc)
    return list(found.values())


def terminate_all(
    procs: Iterable[psutil.Process], grace: float, groups: Iterable[int] = ()
) -> list[psutil.Process]:
    """SIGTERM every process (and process group) given, wait up to `grace`
    seconds, SIGKILL what is left. Returns those still alive afterwards."""
    procs = {p.pid: p for p in procs if p.pid != os.getpid()}.values()
    groups = [g for g in groups if g and g != os.getpgid(0)]
    for group in groups:
        with contextlib.suppress(OSError):
            os.killpg(group, signal.SIGTERM)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(list(procs), timeout=grace)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    for group in groups:
        with contextlib.suppress(OSError):
            os.killpg(group, signal.SIGKILL)
    _, alive = psutil.wait_procs(alive, timeout=2)
    return alive


def terminate(root: psutil.Process, grace: float) -> list[psutil.Process]:
    """SIGTERM the whole tree (snapshotted first), wait `grace`, SIGKILL what is left.

    The root's process group is signalled too, which reaches descendants that
    were orphaned (re-parented to init) but stayed in the group. Returns the
    processes still alive afterwards (normally none).
    """
    leads_group = False
    with contextlib.suppress(OSError):
        leads_group = os.getpgid(root.pid) == root.pid
    return terminate_all(tree(root), grace, [root.pid] if leads_group else [])


def survivors(run: Run) -> list[psutil.Process]:
    """Processes of a run left alive after its supervisor died: the trainer
    (by pid and create time), every process the supervisor recorded (daemons
    that left the session included), and anything else still in the
    supervisor's session (a trainer started just before it could be recorded)."""
    found: dict[int, psutil.Process] = {}
    trainer = find_known(run.pid, run.pid_started_at)
    if trainer is not None:
        found[trainer.pid] = trainer
    for proc in recorded(run.id):
        found.setdefault(proc.pid, proc)
    session, born = run.supervisor_pid, run.supervisor_started_at
    # The dead supervisor's session, only when the row has its leader's pid and
    # start time (init's session, 1, is never a run's).
    if type(session) is int and 1 < session <= MAX_PID and born is not None and _a_time(born):
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
