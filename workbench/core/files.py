"""Writing a file so that readers see the old content or the new, never half of
it; hashing a file; holding an exclusive lock on a file between processes."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def atomic_write_bytes(
    path: str | os.PathLike[str], data: bytes, *, mode: int | None = None
) -> None:
    """Replace `path` with `data` in one step: written to a temporary file in the
    same folder, flushed to disk, then renamed over `path`. A crash leaves the old
    file (or none) and at most a `.<name>.*.tmp` file beside it, never a torn one.

    The new file gets `mode` when given (e.g. 0o600 for a secret), else the
    permissions a plain `open(path, "w")` would give it.
    """
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else mode)
    try:
        try:
            if mode is not None:
                os.fchmod(fd, mode)  # exactly `mode`, whatever the umask
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _sync_folder(target.parent)


def atomic_write_text(
    path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8", mode: int | None = None
) -> None:
    """`atomic_write_bytes` for text."""
    atomic_write_bytes(path, text.encode(encoding), mode=mode)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable; a filesystem that cannot sync a folder
    (some network and FUSE mounts) still has the file, so that costs nothing."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's bytes, as 64 hex digits, read in chunks."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """Hold an exclusive `flock` on `path` (created if missing) for the block,
    waiting for any other holder. The lock goes with the process, so a holder
    that dies frees it; it is advisory: it excludes only other lockers."""
    with open(path, "ab") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield handle
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def try_lock(path: str | os.PathLike[str]) -> IO[bytes] | None:
    """An exclusive `flock` on `path` without waiting: the open file, which holds
    the lock until it is closed (or the process ends), or None when another
    process holds it. For a lock held for a process's lifetime (one daemon per store)."""
    handle = open(path, "ab")  # noqa: SIM115 - the caller keeps it open to hold the lock
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    except BaseException:
        handle.close()
        raise
    return handle
