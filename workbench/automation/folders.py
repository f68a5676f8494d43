"""Watched folders: which filesystem holds each one (inotify cannot see
changes made on other machines of a network filesystem), why a folder is
polled instead, and refusing a folder that cannot be watched."""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.errors import UsageError

# Filesystems whose changes made elsewhere never reach this machine's inotify.
NETWORK_FS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "ncpfs",
        "9p",
        "afs",
        "ceph",
        "glusterfs",
        "lustre",
        "gpfs",
        "beegfs",
        "davfs",
        "fuse.sshfs",
        "fuse.rclone",
        "fuse.s3fs",
        "fuse.gcsfuse",
        "fuse.glusterfs",
        "fuse.davfs2",
    }
)

def _unescape_mount(field_: str) -> str:
    # /proc/mounts writes space, tab, newline and backslash as octal escapes.
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field_ = field_.replace(code, char)
    return field_


def filesystem_type(folder: Path, mounts: str | None = None) -> str | None:
    """The type of the filesystem holding `folder` (longest matching mount point)."""
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text()
        except OSError:
            return None  # not Linux
    target = os.path.realpath(folder)
    best, best_len = None, -1
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        point = _unescape_mount(parts[1])
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) > best_len:
            best, best_len = parts[2], len(point)
    return best


def polling_reason(folder: Path, mounts: str | None = None) -> str | None:
    """Why inotify would miss changes in `folder`, or None when it will not."""
    fstype = filesystem_type(folder, mounts)
    if fstype in NETWORK_FS:
        return f"{fstype} filesystem: inotify does not see changes made on other machines"
    return None


def inotify_failure(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "out of inotify watches (raise fs.inotify.max_user_watches)"
    if exc.errno == errno.EMFILE:
        return "out of inotify instances (raise fs.inotify.max_user_instances)"
    return f"inotify failed: {exc.strerror or exc}"


@dataclass
class FolderWatch:
    """One watched folder and how it is watched."""

    project: str
    path: Path
    mode: str = "inotify"  # or "polling"
    reason: str | None = None
    # What is watching it, and the folder's (device, inode) then: a folder deleted
    # and made again is a new folder, and needs a new watch.
    observer: Any = field(default=None, repr=False)
    observed: Any = field(default=None, repr=False)
    identity: tuple[int, int] | None = None
    gone: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "path": str(self.path),
            "mode": self.mode,
            "reason": self.reason,
        }


def folder_identity(folder: Path) -> tuple[int, int] | None:
    """The folder's (device, inode), or None when it is not there."""
    try:
        st = os.stat(folder)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def prepare_folder(folder: Path) -> None:
    """Make a missing watch folder; refuse one that cannot be watched (a file, a
    broken link or a symlink loop, unreadable) with the reason, as bad input."""
    where = f"[data] watch folder {folder}"
    try:
        st = os.stat(folder)
    except FileNotFoundError:
        if os.path.islink(folder):
            raise UsageError(f"{where} is a broken symbolic link") from None
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"{where} cannot be made: {exc.strerror or exc}") from None
        return
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UsageError(f"{where} is a symbolic link loop") from None
        if exc.errno == errno.ENOTDIR:
            blocker = next((p for p in folder.parents if p.is_file()), folder.parent)
            raise UsageError(f"{where} cannot be made: {blocker} is a file") from None
        raise UsageError(f"{where} cannot be read: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{where} is a file, not a folder")
    if not os.access(folder, os.R_OK | os.X_OK):
        raise UsageError(f"{where} cannot be read: permission denied")
