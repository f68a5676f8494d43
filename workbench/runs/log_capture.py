"""A run's output, captured through a pipe into its log, size-capped.

The trainer writes its stdout and stderr into a pipe; a thread of the
supervisor copies them into `output.log`. When that file reaches half of
`[runs] max_log_mb` it is renamed `output.log.1` (replacing the previous one)
and a new `output.log` begins, so a run's output never takes more than
`max_log_mb` on disk however chatty its trainer is; the newest output is kept.
`run logs` reads both files in order and follows across a rotation.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

CHUNK = 64 * 1024
MIN_PART = 4 * 1024  # the smallest part a (test-sized) cap rotates at


class LogCapture:
    """The read end of the trainer's output pipe and the log it fills."""

    def __init__(self, path: Path, rotated: Path, max_bytes: int) -> None:
        self.path = path
        self.rotated = rotated
        self.part = max(MIN_PART, max_bytes // 2)  # each of the two files at most
        self._lock = threading.Lock()
        self._file = open(path, "ab", buffering=0)  # noqa: SIM115 - closed in close()
        self._size = self._file.seek(0, os.SEEK_END)
        self._read_fd, self.write_fd = os.pipe()
        self._thread: threading.Thread | None = None

    def write(self, data: bytes) -> None:
        """Append to the log (the supervisor's own messages go here too)."""
        with self._lock:
            if self._file.closed:
                return  # output after the run ended (a leftover process): dropped
            while data:
                room = self.part - self._size
                if room <= 0:
                    self._rotate()
                    room = self.part
                piece, data = data[:room], data[room:]
                self._file.write(piece)
                self._size += len(piece)

    def _rotate(self) -> None:
        self._file.close()
        os.replace(self.path, self.rotated)
        self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115
        self._size = 0

    def start(self) -> None:
        """Copy the pipe into the log from now on. Call once the trainer holds
        the write end; ours is closed here, so the end of the trainer (and of
        whatever inherited its output) is the end of the pipe."""
        self.close_write_end()
        self._thread = threading.Thread(target=self._copy, name="log-capture", daemon=True)
        self._thread.start()

    def close_write_end(self) -> None:
        if self.write_fd >= 0:
            os.close(self.write_fd)
            self.write_fd = -1

    def _copy(self) -> None:
        while True:
            try:
                chunk = os.read(self._read_fd, CHUNK)
            except OSError:
                return
            if not chunk:
                return
            self.write(chunk)

    def close(self, timeout: float = 2.0) -> None:
        """Wait (a while) for the rest of the output, then close the log. A
        process that escaped the run and still holds the pipe does not hold
        the supervisor up longer than `timeout`."""
        self.close_write_end()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            self._file.close()
        if self._thread is None or not self._thread.is_alive():
            with contextlib.suppress(OSError):
                os.close(self._read_fd)
