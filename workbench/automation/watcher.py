"""Watching data folders: telling when a new file is complete, and batching bursts.

Watchdog's threads only record what happened (under a lock); one checker thread
decides when a file is complete and hands each project's burst of completed
files to `submit` as one batch. A file is complete when no process holds it
open for writing (seen through /proc, see `writers`) and either it was moved in
(an atomic rename) or its size and mtime have not changed for the quiet period
since its last change or close. A close alone proves nothing: a writer that
appends in several open-append-close steps closes the file after each one.
Where /proc cannot tell, the quiet period is the only rule, and the status says
so. A file that changes again after it was handed over is handed over again;
the pipeline then treats the new content as superseding the old. Folders where
inotify cannot work (network filesystems, exhausted watches) are polled
instead, and a periodic rescan catches anything the events missed.

Split by responsibility: `folders` (filesystems, polling, preparing a folder),
`candidates` (a file not yet complete, a burst), `worker` (the thread running
queued pipelines); their public names are re-exported here. What the watcher
says goes to the `report` callback, or to this module's logger without one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from watchdog.events import (
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    FileSystemEvent,
)

from workbench.automation import writers
from workbench.automation.candidates import Batch, Candidate, Signature, signature
from workbench.core.datafiles import TEMP_SUFFIXES, is_data_file
from workbench.automation.folders import (
    NETWORK_FS,
    FolderWatch,
    filesystem_type,
    folder_identity,
    inotify_failure,
    polling_reason,
    prepare_folder,
)
from workbench.automation.fsevents import EVENT_TYPES, QUIET_STOP, Handler
from workbench.automation.intervals import (
    DEBOUNCE_RANGE,
    DEFAULT_DEBOUNCE,
    DEFAULT_QUIET,
    DEFAULT_RESCAN,
    QUIET_RANGE,
    RESCAN_RANGE,
    check_interval,
)
from workbench.automation.worker import WORKER_RETRY, PipelineWorker

__all__ = [
    "CLOSE_SETTLE",
    "EVENT_TYPES",
    "DEBOUNCE_RANGE",
    "DEFAULT_DEBOUNCE",
    "DEFAULT_QUIET",
    "DEFAULT_RESCAN",
    "NETWORK_FS",
    "QUIET_RANGE",
    "RESCAN_RANGE",
    "TEMP_SUFFIXES",
    "WORKER_RETRY",
    "FolderWatch",
    "PipelineWorker",
    "Signature",
    "Watcher",
    "check_interval",
    "filesystem_type",
    "is_data_file",
    "polling_reason",
    "prepare_folder",
]

log = logging.getLogger(__name__)

POLL_INTERVAL = 1.0
GONE_POLL = 1.0  # how often a deleted watched folder is looked for
# While a writer holds a file open, /proc is looked at again at most this often.
WRITER_RECHECK = 1.0
# Kept for callers that imported it: a close no longer completes a file sooner
# than the quiet period (a writer appending in steps closes after each one).
CLOSE_SETTLE = 0.0
# Observer threads wake this often with nothing to do (to notice a stop request).
OBSERVER_TIMEOUT = 5.0

Submit = Callable[[str, list[Path], str], "int | None"]
Report = Callable[[str], None]


class Watcher:
    """Watches projects' folders and submits one batch per burst of complete files.

    `submit(project, files, trigger)` queues the work (returns an id or None when
    nothing was new); `unprocessed(project)` lists files no pipeline has seen,
    for the rescan. Both are called only from the checker thread.
    """

    def __init__(
        self,
        projects: Iterable[tuple[str, Iterable[Path]]],
        submit: Submit,
        *,
        unprocessed: Callable[[str], list[Path]] | None = None,
        quiet: float = DEFAULT_QUIET,
        debounce: float = DEFAULT_DEBOUNCE,
        rescan: float = DEFAULT_RESCAN,
        poll_interval: float = POLL_INTERVAL,
        force_polling: bool = False,
        report: Report | None = None,
        on_submitted: Callable[[int], None] | None = None,
        writer_check: writers.WriterCheck | None = None,
    ) -> None:
        self.folders = [
            FolderWatch(name, Path(folder)) for name, folders in projects for folder in folders
        ]
        self._submit = submit
        self._unprocessed = unprocessed
        self.quiet = check_interval("--quiet", quiet, QUIET_RANGE)
        self.debounce = check_interval("--debounce", debounce, DEBOUNCE_RANGE)
        self.rescan_interval = check_interval("--rescan", rescan, RESCAN_RANGE)
        # Probed once: whether open writers can be seen does not change while we run.
        self.writer_check = writer_check or writers.probe()
        self._poll_interval = poll_interval
        self._force_polling = force_polling
        self._report = report or log.info  # logged unless the caller takes the lines
        self._on_submitted = on_submitted
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._dead_watches: set[str] = set()
        self._candidates: dict[tuple[str, str], Candidate] = {}
        self._batches: dict[str, Batch] = {}
        self._handed: dict[tuple[str, str], Signature] = {}
        self._odd: set[tuple[str, str]] = set()  # non-regular files already reported
        self._notes: list[str] = []  # said once the lock is released
        self._observers: list[Any] = []
        self._inotify: Any = None
        self._polling: Any = None
        self._thread: threading.Thread | None = None

    def completion_rule(self) -> str:
        """When a file counts as complete here, for status output."""
        return "moved in, or " + self.writer_check.describe(self.quiet)

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        """Watch every folder (inotify where it works, else polling) and start checking."""
        for watch in self.folders:
            prepare_folder(watch.path)
        for watch in self.folders:
            self._schedule(watch)
        for watch in self.folders:
            if watch.mode == "polling":
                self._say(
                    f"{watch.project}: polling {watch.path} every {self._poll_interval:g} s"
                    f" ({watch.reason})"
                )
            else:
                self._say(f"{watch.project}: watching {watch.path} (inotify)")
        if not self.writer_check.available:
            self._say(
                f"open writers cannot be seen ({self.writer_check.scope}): a file counts as"
                f" complete once unchanged for {self.quiet:g} s"
            )
        self._thread = threading.Thread(target=self._run, name="workbench-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the observers and the checker; files not yet submitted are left
        for the next start's rescan."""
        self._stop.set()
        self._wake.set()
        for observer in self._observers:
            observer.stop()
        for observer in self._observers:
            observer.join(timeout=10)
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _schedule(self, watch: FolderWatch) -> None:
        watch.identity = folder_identity(watch.path)
        reason = "--poll given" if self._force_polling else polling_reason(watch.path)
        if reason is None:
            try:
                handler = Handler(self, watch.project, str(watch.path))
                watch.observed = self._schedule_inotify(handler, watch.path)
                watch.observer, watch.mode, watch.reason = self._inotify, "inotify", None
                return
            except OSError as exc:
                reason = inotify_failure(exc)
            except ImportError:
                reason = "inotify is not available on this system"
        watch.mode, watch.reason = "polling", reason
        if self._polling is None:
            from watchdog.observers.polling import PollingObserver

            self._polling = PollingObserver(timeout=self._poll_interval)
            self._polling.start()
            self._observers.append(self._polling)
        watch.observer = self._polling
        watch.observed = self._polling.schedule(
            Handler(self, watch.project, str(watch.path)),
            str(watch.path),
            recursive=True,
            event_filter=EVENT_TYPES,
        )

    def _rewatch(self) -> None:
        """Watch again a folder that was deleted and made again (or replaced):
        the old watch died with the old folder. Files put in it meanwhile are
        found by the rescan that follows."""
        with self._lock:
            dead, self._dead_watches = self._dead_watches, set()
        for watch in self.folders:
            identity = folder_identity(watch.path)
            if identity == watch.identity and str(watch.path) not in dead:
                continue
            if identity is None:
                watch.identity = None  # a folder made again may reuse the inode
                if not watch.gone:
                    watch.gone = True
                    self._say(
                        f"{watch.project}: {watch.path} is gone; it is watched again"
                        " once it is back"
                    )
                continue
            if watch.observer is not None and watch.observed is not None:
                # Its emitter may have stopped already, with the old folder.
                with contextlib.suppress(KeyError, OSError):
                    watch.observer.unschedule(watch.observed)
            self._schedule(watch)
            watch.gone = False
            self._say(f"{watch.project}: {watch.path} is back; watching it again ({watch.mode})")

    def _schedule_inotify(self, handler: Handler, folder: Path) -> Any:
        """Add an inotify watch; raises OSError (ENOSPC, EMFILE...) when it cannot."""
        if self._inotify is None:
            from watchdog.observers.inotify import InotifyObserver

            logging.getLogger("watchdog.observers.inotify").addFilter(QUIET_STOP)  # idempotent
            # Full events: a rename from outside the folder arrives as a move
            # (complete) rather than as a create (possibly still being written).
            observer = InotifyObserver(timeout=OBSERVER_TIMEOUT, generate_full_events=True)
            observer.start()
            self._observers.append(observer)
            self._inotify = observer
        return self._inotify.schedule(
            handler, str(folder), recursive=True, event_filter=EVENT_TYPES
        )

    # -- watchdog's threads --------------------------------------------------

    def _on_event(self, project: str, folder: str, event: FileSystemEvent) -> None:
        src = os.fsdecode(event.src_path)
        dest = os.fsdecode(event.dest_path) if event.dest_path else ""
        now = time.monotonic()
        if isinstance(event, (DirDeletedEvent, DirMovedEvent)):
            if src.rstrip(os.sep) == folder.rstrip(os.sep):
                with self._lock:
                    self._dead_watches.add(folder)  # its watch died with it
                self._wake.set()
            return
        with self._lock:
            if isinstance(event, FileMovedEvent):
                self._candidates.pop((project, src), None)
                self._retract(project, src)
                if dest and self._wanted(folder, dest):
                    self._retract(project, dest)
                    self._touch(project, dest, now, moved=True)
                    self._wake.set()
            elif isinstance(event, FileDeletedEvent):
                self._candidates.pop((project, src), None)
                self._retract(project, src)
            elif self._wanted(folder, src):
                closed = isinstance(event, FileClosedEvent)
                self._retract(project, src)
                if self._touch(project, src, now, closed=closed):
                    self._wake.set()  # a new file to look at

    @staticmethod
    def _wanted(folder: str, path: str) -> bool:
        # Subfolders too, like the pipeline's rescan.
        return path.startswith(folder.rstrip(os.sep) + os.sep) and is_data_file(
            os.path.basename(path)
        )

    def _touch(
        self, project: str, path: str, now: float, *, moved: bool = False, closed: bool = False
    ) -> bool:
        """Record a change to `path`; true when it is a new candidate."""
        key = (project, path)
        found = self._candidates.get(key)
        if found is None:
            self._candidates[key] = Candidate(now, now, moved=moved, closed=closed)
            return True
        found.last_event = now
        found.moved = found.moved or moved
        found.closed = closed
        return False

    def _retract(self, project: str, path: str) -> None:
        """A file waiting in a burst changed (or went): it is not complete after
        all, and goes back to being a candidate (under the lock)."""
        batch = self._batches.get(project)
        if batch is not None and batch.files.pop(path, None) is not None and not batch.files:
            del self._batches[project]

    # -- the checker thread ----------------------------------------------------

    def _run(self) -> None:
        next_rescan = time.monotonic()  # at once: files that arrived while not watching
        while not self._stop.is_set():
            now = time.monotonic()
            if self._dead_watches or any(w.gone for w in self.folders):
                self._rewatch()  # a gone folder is looked for once a second
            if now >= next_rescan:
                self._rescan(now)
                next_rescan = now + self.rescan_interval
            self._check(now)
            self._flush(time.monotonic())
            timeout = self._next_due(next_rescan) - time.monotonic()
            if timeout > 0:
                self._wake.wait(timeout)
            self._wake.clear()

    def _next_due(self, next_rescan: float) -> float:
        with self._lock:
            dues = [c.due(self.quiet) for c in self._candidates.values()]
            dues += [b.flush_at for b in self._batches.values()]
        if any(w.gone for w in self.folders):
            dues.append(time.monotonic() + GONE_POLL)
        return min([next_rescan, *dues])

    def _check(self, now: float) -> None:
        """Complete the due candidates that pass the time rule and that no
        process holds open for writing; /proc is read once for all of them."""
        with self._lock:
            due = [(key, c) for key, c in self._candidates.items() if c.due(self.quiet) <= now]
        if not due:
            return
        looked = {key: signature(key[1]) for key, _ in due}  # stat outside the lock
        wall = time.time()
        with self._lock:
            settled = [
                (key, c, c.last_event, how)
                for key, c in due
                if self._candidates.get(key) is c  # not deleted or moved away meanwhile
                and (how := self._settled(key, c, looked[key], now, wall))
            ]
        held: dict[str, list[int]] = {}
        if settled and self.writer_check.available:
            held = writers.open_for_writing(key[1] for key, *_ in settled)
        complete: dict[tuple[str, str], list[str]] = {}
        busy: list[tuple[str, str, list[int]]] = []
        with self._lock:
            for key, c, last_event, how in settled:
                if self._candidates.get(key) is not c or c.last_event != last_event:
                    continue  # it changed while we looked: due again later
                pids = held.get(key[1])
                if pids:
                    if tuple(pids) != c.writers:
                        busy.append((key[0], os.path.basename(key[1]), pids))
                    c.writers = tuple(pids)
                    # Polled folders learn of a close only at the next poll.
                    c.writer_until = now + max(0.0, WRITER_RECHECK - self.quiet)
                    if self._polling is not None:
                        c.writer_until += self._poll_interval
                    continue
                if self._take(key, c):
                    complete.setdefault((key[0], how), []).append(os.path.basename(key[1]))
            notes, self._notes = self._notes, []
        for note in notes:
            self._say(note)
        for project, name, pids in busy:
            which = ", ".join(str(p) for p in pids[:5])
            self._say(f"{project}: {name} is still open for writing (pid {which}); waiting")
        for (project, how), names in complete.items():
            if len(names) == 1:
                self._say(f"{project}: {names[0]} is complete ({how})")
                continue
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            self._say(f"{project}: {len(names)} files are complete ({how}): {shown}")

    def _settled(
        self,
        key: tuple[str, str],
        c: Candidate,
        looked: tuple[Signature, float] | str | None,
        now: float,
        wall: float,
    ) -> str | None:
        """Look at a due candidate (under the lock): how it passes the time rule
        (moved in, or quiet long enough), or None while it does not."""
        if looked is None:
            del self._candidates[key]
            return None
        if isinstance(looked, str):  # a FIFO, a socket: never read, said once
            del self._candidates[key]
            if key not in self._odd:
                self._odd.add(key)
                self._notes.append(f"{key[0]}: {os.path.basename(key[1])} is {looked}; ignored")
            return None
        sig, mtime = looked
        if sig != c.sig:
            # The change happened after we last looked; the mtime says when
            # (clamped, in case the file server's clock is off).
            c.changed_at = min(max(now - (wall - mtime), c.seen_at), now)
            c.sig = sig
        c.seen_at = now
        empty = sig[0] == 0
        if c.moved and not empty and not c.writer_until:
            return "moved in"
        if now - c.quiet_since() >= self.quiet:
            closed = "closed, " if c.closed or c.writer_until else ""
            return f"{closed}unchanged for {self.quiet:g} s"
        return None

    def _take(self, key: tuple[str, str], c: Candidate) -> bool:
        """Put a complete file into its project's burst (under the lock); false
        when it was already handed over as it is."""
        del self._candidates[key]
        project, path = key
        if c.sig is None or self._handed.get(key) == c.sig:
            return False
        batch = self._batches.setdefault(project, Batch())
        batch.files[path] = c.sig
        batch.triggers.add(c.trigger)
        batch.flush_at = time.monotonic() + self.debounce
        return True

    def _flush(self, now: float) -> None:
        with self._lock:
            ready = [p for p, b in self._batches.items() if b.flush_at <= now]
            batches = {project: self._batches.pop(project) for project in ready}
        for project, batch in batches.items():
            files = sorted(batch.files)
            trigger = "rescan" if batch.triggers == {"rescan"} else "watch"
            try:
                pipeline_id = self._submit(project, [Path(f) for f in files], trigger)
            except Exception as exc:  # noqa: BLE001 - the next rescan retries these files
                self._say(f"{project}: could not queue {len(files)} file(s): {exc}; will retry")
                continue
            with self._lock:
                for path in files:
                    self._handed[(project, path)] = batch.files[path]
            if pipeline_id is None:
                self._say(f"{project}: nothing new in {len(files)} file(s)")
                continue
            self._say(f"{project}: pipeline {pipeline_id} queued for {len(files)} file(s)")
            if self._on_submitted is not None:
                self._on_submitted(pipeline_id)

    def _rescan(self, now: float) -> None:
        self._rewatch()
        if self._unprocessed is None:
            return
        for project in dict.fromkeys(w.project for w in self.folders):
            try:
                found = [str(p) for p in self._unprocessed(project)]
            except Exception as exc:  # noqa: BLE001 - keep watching; the next rescan retries
                self._say(f"{project}: rescan failed: {exc}")
                continue
            with self._lock:
                queued = self._batches.get(project)
                new = [
                    path
                    for path in found
                    if (project, path) not in self._candidates
                    and not (queued and path in queued.files)
                ]
                for path in new:
                    self._candidates[(project, path)] = Candidate(now, now, trigger="rescan")
            if new:
                self._say(
                    f"{project}: rescan found {len(new)} file(s) not yet handed to a pipeline"
                )

    def _say(self, message: str) -> None:
        self._report(message)


