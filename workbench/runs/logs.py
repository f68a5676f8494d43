"""Reading a run's output: streamed in chunks (never the whole file in memory),
across the rotated `output.log.1` and the current `output.log`, tailed by
seeking back from the end, and followed across a rotation while the run goes on.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from workbench.core import paths

CHUNK = 64 * 1024


def log_files(run_id: int) -> list[Path]:
    """The run's log files, oldest first, that exist."""
    return [p for p in (paths.rotated_run_log(run_id), paths.run_log(run_id)) if p.exists()]


def tail_start(files: list[Path], lines: int) -> tuple[int, int]:
    """(index into `files`, byte offset) where the last `lines` lines begin.

    Reads blocks backwards from the end, so the cost follows the size of the
    tail, not of the log. A final newline ends the last line; it does not start
    an empty one.
    """
    if not files:
        return 0, 0
    sizes = [_size(p) for p in files]
    if lines <= 0:
        return len(files) - 1, sizes[-1]
    found = 0
    skip_final_newline = True
    for index in range(len(files) - 1, -1, -1):
        pos = sizes[index]
        if pos == 0:
            continue
        with open(files[index], "rb") as fh:
            while pos > 0:
                start = max(0, pos - CHUNK)
                fh.seek(start)
                block = fh.read(pos - start)
                if skip_final_newline:
                    skip_final_newline = False
                    if block.endswith(b"\n"):
                        block = block[:-1]
                end = len(block)
                while True:
                    at = block.rfind(b"\n", 0, end)
                    if at < 0:
                        break
                    found += 1
                    if found == lines:
                        return index, start + at + 1
                    end = at
                pos = start
    return 0, 0


def read_from(files: list[Path], index: int, offset: int) -> Iterator[bytes]:
    """Every byte of `files` from (index, offset) on, in chunks."""
    for i in range(index, len(files)):
        try:
            fh = open(files[i], "rb")  # noqa: SIM115 - closed below, generator-safe
        except FileNotFoundError:
            continue
        with fh:
            fh.seek(offset if i == index else 0)
            while chunk := fh.read(CHUNK):
                yield chunk


def follow(
    current: Path, offset: int, running: Callable[[], bool], poll: float = 0.2
) -> Iterator[bytes]:
    """New output of `current` from `offset` on until `running()` says the run
    ended; when the log is rotated (renamed to `.1`, a new file started), the
    rest of the old file comes first, then the new file from its start."""
    fh = None
    try:
        while True:
            if fh is None and current.exists():
                fh = open(current, "rb")  # noqa: SIM115 - closed in finally
                fh.seek(offset)
            alive = running()
            if fh is not None:
                while chunk := fh.read(CHUNK):
                    yield chunk
                if _replaced(fh, current):
                    while chunk := fh.read(CHUNK):  # what was written before the rename
                        yield chunk
                    fh.close()
                    fh, offset = None, 0
                    continue
                if os.fstat(fh.fileno()).st_size < fh.tell():  # truncated in place
                    fh.seek(0)
                    continue
            if not alive:
                return  # everything written before the run ended has been read
            time.sleep(poll)
    finally:
        if fh is not None:
            fh.close()


def _replaced(fh, current: Path) -> bool:
    try:
        now = current.stat()
    except FileNotFoundError:
        return False  # renamed, the new one not made yet: wait for it
    then = os.fstat(fh.fileno())
    return (now.st_ino, now.st_dev) != (then.st_ino, then.st_dev)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
