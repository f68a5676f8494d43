"""Which files some process still holds open for writing, read from Linux's /proc.

A writer that pauses with its file open (a slow export, a script between two
chunks) looks exactly like a finished file to a quiet period; its open file
descriptor does not. `/proc/PID/fd/N` links name the open files and
`/proc/PID/fdinfo/N` holds the open flags, so a descriptor opened O_WRONLY or
O_RDWR on a watched path means "not complete yet". Only files the watcher is
about to declare complete are looked up, in one pass over /proc for all of them.

Where /proc is missing (macOS, a container without it) or hides other
processes (`hidepid`, other users' processes for a non-root watcher), the
quiet period is all there is; `describe()` says which applies.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

PROC = "/proc"


@dataclass(frozen=True)
class WriterCheck:
    """Whether open writers can be seen, and a line saying so for status output."""

    available: bool
    scope: str  # "all processes", "this user's processes", or why it is unavailable

    def describe(self, quiet: float) -> str:
        if self.available:
            return (
                f"no process has it open for writing (/proc, {self.scope})"
                f" and unchanged for {quiet:g} s"
            )
        return f"unchanged for {quiet:g} s only ({self.scope}: open writers cannot be seen)"


def probe(proc: str = PROC) -> WriterCheck:
    """Can this process see open writers through `proc`?"""
    try:
        own = os.listdir(os.path.join(proc, str(os.getpid()), "fd"))
        flags = _flags(os.path.join(proc, str(os.getpid()), "fdinfo", own[0])) if own else None
    except OSError:
        return WriterCheck(False, f"{proc} is not available")
    if flags is None:
        return WriterCheck(False, f"{proc}/PID/fdinfo has no open flags")
    if os.geteuid() == 0:
        return WriterCheck(True, "all processes")
    return WriterCheck(True, "this user's processes")


def _flags(fdinfo: str) -> int | None:
    try:
        with open(fdinfo, "rb") as fh:
            for line in fh:
                if line.startswith(b"flags:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        return None
    return None


def open_for_writing(paths: Iterable[str], proc: str = PROC) -> dict[str, list[int]]:
    """The subset of `paths` that some process holds open for writing, each with
    the writers' pids. Processes that vanish or cannot be read are skipped;
    nothing is opened but /proc's own entries (never the files themselves)."""
    targets: dict[str, str] = {}
    for path in paths:
        targets[os.path.realpath(path)] = path
        targets.setdefault(os.path.abspath(path), path)
    found: dict[str, list[int]] = {}
    if not targets:
        return found
    try:
        pids = [name for name in os.listdir(proc) if name.isdigit()]
    except OSError:
        return found
    write_modes = (os.O_WRONLY, os.O_RDWR)
    for pid in pids:
        fd_dir = os.path.join(proc, pid, "fd")
        try:
            fds = os.listdir(fd_dir)
        except OSError:  # gone, or another user's process
            continue
        for fd in fds:
            try:
                link = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            path = targets.get(link)
            if path is None:
                continue
            flags = _flags(os.path.join(proc, pid, "fdinfo", fd))
            if flags is not None and flags & os.O_ACCMODE in write_modes:
                pids_for = found.setdefault(path, [])
                if int(pid) not in pids_for:
                    pids_for.append(int(pid))
    return found
