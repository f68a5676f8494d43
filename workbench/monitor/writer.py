"""The prediction log of `workbench serve`, written by a process of its own.

Why a process: a writer thread turning a second of requests into Parquet holds
the GIL for tens of milliseconds (pandas and pyarrow conversions are mostly
Python-level steps), and the requests that arrive meanwhile wait for it; those
are the slowest hundredth of requests, so p99 latency moved with logging on.
Here the serving process only packs each answered request into one message
(its meta columns, the request body and the answer as the bytes they already
are) and writes it to a pipe, without blocking: a full pipe drops the record
and counts it, as the thread's full queue does. The writer process
(`python -m workbench.monitor.writer SPEC`) decodes the bodies again, turns
them into the same rows `records_frame` makes (`log.wire_frame`), and writes
them as `PredictionLog` does: row groups of a part renamed into place when
whole, with the same limits.

When the pipe ends (the server shut down, or died) the writer writes what it
has, closes its part and prints its counts as one JSON line on stdout; so a
server killed outright still leaves every record it had sent.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.config.monitor import MonitorConfig
from workbench.monitor.log import (
    MAX_ERROR_CHARS,
    ROLL_SECONDS,
    LogStats,
    PredictionLog,
    WireRecord,
    wire_frame,
)

# One message: this header, then request_id, model, error, body and response,
# whose lengths it gives (little-endian, no padding).
HEAD = struct.Struct("<ddHB5I")
# Rows become visible only when a part is renamed into place (ROLL_SECONDS), so the
# writer may batch longer than the thread does: each flush costs some 15 ms whatever
# its size, and fewer, larger row groups also read faster.
FLUSH_SECONDS = 5.0
PIPE_BYTES = 1 << 20  # asked of the kernel (Linux; elsewhere the pipe keeps its size)
READ_PAUSE = 0.05  # the writer reads at most this often: a few requests per wake-up
PENDING_BYTES = 32 << 20  # a flush before the next interval when this much is waiting
MAX_MESSAGE = 1 << 30  # beyond it the stream is not ours: the writer stops reading it
MAX_BODIES = MAX_MESSAGE - (1 << 20)  # a larger request is logged without its inputs
F_SETPIPE_SZ = 1031


def encode(event: dict[str, Any]) -> bytes:
    """One answered request (`make_app`'s record) as a message. The bodies go only
    with answered requests: a refused one is logged without its inputs."""
    status = int(event["status"])
    error = event.get("error")
    body, response = bytes(event.get("body") or b""), bytes(event.get("response") or b"")
    if status >= 400 or len(body) + len(response) > MAX_BODIES:
        body = response = b""  # logged without its inputs
    fields = (
        str(event["request_id"]).encode(),
        str(event.get("model") or "").encode(),
        b"" if error is None else str(error)[:MAX_ERROR_CHARS].encode(errors="replace"),
        body,
        response,
    )
    head = HEAD.pack(
        float(event["ts"]),
        float(event["latency_s"]),
        status,
        (1 if event.get("classes") else 0) | (2 if error is not None else 0),
        *(len(f) for f in fields),
    )
    return head + b"".join(fields)


def decode(buffer: bytes | bytearray) -> tuple[list[WireRecord], int]:
    """The whole messages at the start of `buffer`, and how many bytes they took."""
    records, at, size = [], 0, len(buffer)
    with memoryview(buffer) as view:  # released before the caller resizes the buffer
        while size - at >= HEAD.size:
            ts, latency, status, flags, *lengths = HEAD.unpack_from(view, at)
            total = HEAD.size + sum(lengths)
            if total > MAX_MESSAGE:
                raise ValueError(f"a message of {total:,} bytes: the log's stream is damaged")
            if size - at < total:
                break
            start = at + HEAD.size
            parts = []
            for length in lengths:
                parts.append(bytes(view[start : start + length]))
                start += length
            request_id, model, error, body, response = parts
            records.append(
                WireRecord(
                    ts=ts,
                    latency_s=latency,
                    status=status,
                    classifier=bool(flags & 1),
                    request_id=request_id.decode(errors="replace"),
                    model=model.decode(errors="replace") or None,
                    error=error.decode(errors="replace") if flags & 2 else None,
                    body=body,
                    response=response,
                )
            )
            at = total + at
    return records, at


class LogProcess(PredictionLog):
    """The serving side: `record` packs and writes to the writer process's pipe,
    never blocking; `close` ends the pipe and collects the writer's counts."""

    def __init__(
        self,
        project_root: Path,
        settings: MonitorConfig,
        *,
        version: int | None = None,
        source: str = "serve",
        flush_seconds: float = FLUSH_SECONDS,
        roll_seconds: float = ROLL_SECONDS,
        rng: Callable[[], float] = random.random,
    ) -> None:
        super().__init__(
            project_root,
            settings,
            version=version,
            source=source,
            flush_seconds=flush_seconds,
            roll_seconds=roll_seconds,
            rng=rng,
        )
        self._root = project_root
        self._process: subprocess.Popen[bytes] | None = None
        self._fd = -1
        self._tail = b""  # the unwritten end of a message the pipe took only part of
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> LogProcess:
        """Start the writer process (OSError when it cannot be started)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        spec = {
            "root": str(self._root),
            "settings": dataclasses.asdict(self.settings),
            "version": self.version,
            "source": self.source,
            "flush_seconds": self.flush_seconds,
            "roll_seconds": self.roll_seconds,
        }
        self._process = subprocess.Popen(
            [sys.executable, "-m", "workbench.monitor.writer", json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            # Its own process group: Ctrl-C at the terminal stops the server, which
            # then ends the pipe; the writer must not die before it has written.
            process_group=0,
        )
        assert self._process.stdin is not None
        self._fd = self._process.stdin.fileno()
        with contextlib.suppress(OSError):
            import fcntl

            fcntl.fcntl(self._fd, F_SETPIPE_SZ, PIPE_BYTES)
        os.set_blocking(self._fd, False)
        return self

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def record(self, event: dict[str, Any]) -> None:
        """Hand one answered request to the writer process: a few microseconds and
        one write; dropped (counted) when the pipe is full. Never blocks or raises."""
        self.stats.received += 1
        if event.get("rows") is None and not self.sampled():
            self.stats.sampled_out += 1
            return
        try:
            message = encode(event)
        except (KeyError, TypeError, ValueError, struct.error):
            self.stats.dropped += 1
            return
        with self._lock:
            if self._closed or not self._send(message):
                self.stats.dropped += 1

    def _send(self, message: bytes) -> bool:
        """Whether the pipe took `message` (whole, or its start with the rest kept
        as the tail that goes before anything else)."""
        try:
            if self._tail:
                self._tail = self._tail[os.write(self._fd, self._tail) :]
                if self._tail:
                    return False
            written = os.write(self._fd, message)
        except BlockingIOError:
            return False
        except OSError as exc:  # the writer is gone: nothing more can be logged
            self._gone(exc)
            return False
        self._tail = message[written:]
        return True

    def _gone(self, exc: BaseException) -> None:
        if not self._closed:
            self._closed = True
            self._failed(exc)

    def close(self, timeout: float = 30.0) -> LogStats:
        """End the pipe; wait for the writer to write what it has and report."""
        process = self._process
        with self._lock:
            if process is None or process.stdin is None:
                return self.stats
            self._closed = True
            try:
                if self._tail:
                    os.set_blocking(self._fd, True)
                    os.write(self._fd, self._tail)
                    self._tail = b""
            except OSError as exc:
                self._failed(exc)
            with contextlib.suppress(OSError):
                process.stdin.close()
            process.stdin = None
        try:
            out, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            late = f"the log writer is still writing after {timeout:g} s (left to finish)"
            self._failed(TimeoutError(late))
            return self.stats
        self._merge(out, process.returncode)
        return self.stats

    def _merge(self, out: bytes, code: int) -> None:
        try:
            counts = json.loads(out.decode().strip().splitlines()[-1])
            for name in ("written_rows", "parts", "evicted_parts", "failures"):
                setattr(self.stats, name, getattr(self.stats, name) + int(counts[name]))
            self.stats.paths += [str(p) for p in counts["paths"]]
            self.stats.last_error = counts["last_error"] or self.stats.last_error
        except (ValueError, KeyError, TypeError, IndexError):
            self._failed(RuntimeError(f"the log writer exited with code {code}"))


class PipeWriter(PredictionLog):
    """The writer process's side: reads messages from a pipe until it ends."""

    def _frame(self, pending: list[Any]) -> Any:
        return wire_frame(pending, self.source, self.version)

    def drain_pipe(self, fd: int) -> LogStats:
        """Read, convert and write until the pipe ends; then close the open part."""
        try:
            self.enforce_limits()
        except OSError as exc:
            self._failed(exc)
        buffer = bytearray()
        pending: list[WireRecord] = []
        pending_bytes = 0
        next_flush = time.monotonic() + self.flush_seconds
        while True:
            ready, _, _ = select.select([fd], [], [], max(0.0, next_flush - time.monotonic()))
            ended = False
            if ready:
                chunk = os.read(fd, PIPE_BYTES)
                ended = not chunk
                buffer += chunk
                try:
                    records, used = decode(buffer)
                except ValueError as exc:
                    self._failed(exc)
                    records, used, ended = [], len(buffer), True
                del buffer[:used]
                pending += records
                pending_bytes += used
                self.stats.received += len(records)
            now = time.monotonic()
            if ended or now >= next_flush or pending_bytes >= PENDING_BYTES:
                self._flush(pending)
                pending, pending_bytes = [], 0
                if ended:
                    self._roll()
                    return self.stats
                if self._open is not None and now - self._open.opened >= self.roll_seconds:
                    self._roll()
                next_flush = now + self.flush_seconds
            if ready:
                time.sleep(READ_PAUSE)


def _import_converters() -> None:
    import pyarrow.parquet  # noqa: F401

    import workbench.models.bundle_runtime  # noqa: F401


def main(argv: list[str] | None = None) -> int:
    """The writer process: SPEC (JSON: root, settings, version, source,
    flush_seconds, roll_seconds) in argv, the messages on stdin, its counts
    printed as one JSON line on stdout when stdin ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # it ends when the pipe does
    spec = json.loads((sys.argv[1:] if argv is None else argv)[0])
    # What the first flush needs is imported beside the reading, not in its way: a
    # burst at start-up waits in this process's memory, not in the pipe.
    threading.Thread(target=_import_converters, name="imports", daemon=True).start()
    writer = PipeWriter(
        Path(spec["root"]),
        MonitorConfig(**spec["settings"]),
        version=spec["version"],
        source=spec["source"],
        flush_seconds=float(spec["flush_seconds"]),
        roll_seconds=float(spec["roll_seconds"]),
    )
    writer.folder.mkdir(parents=True, exist_ok=True)
    stats = writer.drain_pipe(sys.stdin.buffer.fileno())
    try:
        sys.stdout.write(json.dumps(dataclasses.asdict(stats)) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        # The server is gone (killed) and asks for no counts; the log is written.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
