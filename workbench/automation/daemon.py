"""The watcher as a process: one per store, found through a lock and a state file.

`serve` runs it in this process (the foreground `workbench watch`, or the
detached child `python -m workbench.automation.daemon SPEC`). It holds an
exclusive `flock` on `$WORKBENCH_HOME/watcher.lock` while it runs, so a second
watcher refuses to start and `--status` can tell a live watcher from a state
file left by a dead one. The state file says what it watches and how.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from workbench.core import files, paths, spawn
from workbench.automation.watcher import (
    DEBOUNCE_RANGE,
    DEFAULT_DEBOUNCE,
    DEFAULT_QUIET,
    DEFAULT_RESCAN,
    QUIET_RANGE,
    RESCAN_RANGE,
    PipelineWorker,
    Watcher,
    check_interval,
    prepare_folder,
)
from workbench.core.errors import UsageError, WorkbenchError

# Named, not __name__: this module also runs as __main__ (the detached watcher).
logger = logging.getLogger("workbench.automation.daemon")

HEARTBEAT = 30.0  # seconds between state-file refreshes while idle
START_TIMEOUT = 30.0  # how long --detach waits for the child to report in
STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL
LOCK_RETRY = 0.5  # a `--status` may hold the lock for an instant; retry this long
NOTHING_TO_WATCH = (
    "nothing to watch: no registered project has [data] watch folders with"
    ' [automation] on_new_data other than "off"'
)


@dataclass
class Options:
    """How `serve` watches; what `--detach` hands to the child."""

    projects: list[str]
    quiet: float = DEFAULT_QUIET
    debounce: float = DEFAULT_DEBOUNCE
    rescan: float = DEFAULT_RESCAN
    poll: bool = False


def watcher_dir() -> Path:
    folder = paths.home() / "watcher"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def lock_path() -> Path:
    return paths.home() / "watcher.lock"


def state_path() -> Path:
    return watcher_dir() / "state.json"


def log_path() -> Path:
    return watcher_dir() / "watcher.log"


# -- the lock -----------------------------------------------------------------


def _try_lock() -> IO[bytes] | None:
    return files.try_lock(lock_path())  # held for the watcher's lifetime


def _holder_pid() -> int | None:
    try:
        return int(lock_path().read_text().strip())
    except (OSError, ValueError):
        return None


def is_running() -> bool:
    """True while some process holds the watcher lock of this store."""
    handle = _try_lock()
    if handle is None:
        return True
    handle.close()  # closing releases the lock
    return False


def _already_running() -> WorkbenchError:
    pid = _holder_pid()
    which = f" (pid {pid})" if pid else ""
    return WorkbenchError(
        f"a watcher is already running for this store{which}; "
        "see `workbench watch status`, stop it with `workbench watch stop`",
        title="Watcher running",
    )


def acquire_lock() -> IO[bytes]:
    """Take the store's watcher lock and write our pid in it; raises when held."""
    deadline = time.monotonic() + LOCK_RETRY
    while (handle := _try_lock()) is None:
        if time.monotonic() >= deadline:
            raise _already_running()
        time.sleep(0.05)
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n".encode())
    handle.flush()
    return handle


# -- the state file -------------------------------------------------------------


def read_state() -> dict[str, Any] | None:
    try:
        return json.loads(state_path().read_text())
    except (OSError, ValueError):
        return None


class _State:
    """The running watcher's state file, rewritten whole (atomically) on each change."""

    def __init__(self, options: Options) -> None:
        self._lock = threading.RLock()
        self.doc: dict[str, Any] = {
            "pid": os.getpid(),
            "started_at": time.time(),
            "heartbeat": time.time(),
            "projects": [],
            "folders": None,  # set once every folder is watched
            "complete_when": None,  # when a file counts as complete, in words
            "writer_check": None,  # whether open writers can be seen (/proc)
            "last_event": None,
            "options": asdict(options),
            "log": str(log_path()),
            "stopped_at": None,
        }
        self._write()

    def update(self, **changes: Any) -> None:
        with self._lock:
            self.doc.update(changes, heartbeat=time.time())
            self._write()

    def _write(self) -> None:
        target = state_path()
        # Not files.atomic_write_text: the heartbeat rewrites this often, unsynced on purpose.
        temporary = target.with_name(f".{target.name}.{os.getpid()}")
        temporary.write_text(json.dumps(self.doc, indent=2))
        os.replace(temporary, target)


# -- running --------------------------------------------------------------------


class _StoreCalls:
    """The pipeline's functions bound to a store opened in the calling thread
    (SQLite connections are per thread); the watcher calls them from one thread."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._opened: list[Any] = []

    def _store(self) -> Any:
        store = getattr(self._local, "store", None)
        if store is None:
            from workbench.store import open_store

            store = self._local.store = open_store(migrate=False)
            self._opened.append(store)
        return store

    def submit(self, project: str, files: list[Path], trigger: str) -> int | None:
        from workbench.automation import pipeline

        return pipeline.submit(self._store(), project, files, trigger)

    def unprocessed(self, project: str) -> list[Path]:
        from workbench.automation import pipeline

        return pipeline.unprocessed_files(self._store(), project)

    def close(self) -> None:
        for store in self._opened:
            store.close()


def _step_line(pipeline_id: int, step: dict[str, Any]) -> str:
    name = step.get("step", "step")
    file = Path(step["file"]).name if step.get("file") else ""
    status = step.get("status") or ""
    summary = step.get("summary") or ""
    run = f"(run {step['run']})" if step.get("run") else ""
    parts = [f"pipeline {pipeline_id}: {name}", file, status, run]
    return " ".join(p for p in parts if p) + (f": {summary}" if summary else "")


def _install_signals(stop: threading.Event, received: list[int], detached: bool) -> None:
    """Signals only set `stop` (the main loop reports them): a handler that
    printed or took a lock could interrupt the main thread doing the same."""
    if threading.current_thread() is not threading.main_thread():
        return

    def request_stop(signum: int, _frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            os._exit(130)  # a second Ctrl-C: leave now; pipelines resume on the next start
        received.append(signum)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    # Detached, no terminal can hang up on us; in the foreground a closed
    # terminal stops the watcher cleanly.
    signal.signal(signal.SIGHUP, signal.SIG_IGN if detached else request_stop)


def serve(options: Options, *, detached: bool = False, echo: Any = None) -> None:
    """Watch until SIGTERM / Ctrl-C; raises when another watcher holds the store."""
    from workbench.automation import pipeline
    from workbench.store import open_store

    _check_intervals(options)
    lock = acquire_lock()
    try:
        store = open_store()  # migrates, before any thread opens the store
        try:
            projects = pipeline.watched_projects(store, options.projects or None)
        finally:
            store.close()
        if not projects:
            raise UsageError(NOTHING_TO_WATCH)
        for _, folders in projects:
            for folder in folders:
                prepare_folder(folder)  # refused here, before any state is written
        _watch(options, projects, detached, echo or _print)
    finally:
        lock.close()


def _print(line: str) -> None:
    logger.info(line)


def _watch(
    options: Options, projects: list[tuple[str, list[Path]]], detached: bool, echo: Any
) -> None:
    from workbench.automation import pipeline
    from workbench.store import open_store, pipelines

    state = _State(options)
    stop = threading.Event()

    stamp = "%Y-%m-%d %H:%M:%S" if detached else "%H:%M:%S"  # a log outlives a day

    def say(message: str) -> None:
        echo(f"{datetime.now():{stamp}} {message}")
        state.update(last_event={"ts": time.time(), "message": message})

    def run_pending(store: Any, stop_: threading.Event) -> None:
        def on_step(pipeline_id: int, step: dict[str, Any]) -> None:
            say(_step_line(pipeline_id, step))

        for pipeline_id in pipeline.run_pending(store, stop_, on_step=on_step):
            ended = pipelines.get(store, pipeline_id)
            if ended is not None:
                say(f"pipeline {pipeline_id} {ended.state}: {ended.outcome}")

    received: list[int] = []
    _install_signals(stop, received, detached)
    worker = PipelineWorker(
        run_pending,
        lambda: open_store(migrate=False),
        stop,
        report=say,
    )
    calls = _StoreCalls()
    watcher = Watcher(
        projects,
        calls.submit,
        unprocessed=calls.unprocessed,
        quiet=options.quiet,
        debounce=options.debounce,
        rescan=options.rescan,
        force_polling=options.poll,
        report=say,
        on_submitted=lambda _id: worker.kick(),
    )
    try:
        watcher.start()
        state.update(
            projects=[name for name, _ in projects],
            folders=[watch.as_dict() for watch in watcher.folders],
            complete_when=watcher.completion_rule(),
            writer_check=watcher.writer_check.available,
        )
        worker.start()
        how_to_stop = "`workbench watch stop`" if detached else "Ctrl-C"
        say(f"watcher ready (pid {os.getpid()}); {how_to_stop} stops it")
        while not stop.wait(HEARTBEAT):
            state.update()
    finally:
        stop.set()
        cause = signal.Signals(received[0]).name if received else "exiting"
        say(f"stopping ({cause}); files not yet queued are picked up on the next start")
        watcher.stop()
        if not worker.stop(timeout=STOP_GRACE / 2):
            say("a pipeline step is still running; it resumes on the next start")
        calls.close()
        state.update(stopped_at=time.time())


# -- controlling a watcher from another process ---------------------------------------


def status() -> dict[str, Any]:
    """Whether a watcher runs for this store, and what it watches."""
    state = read_state() or {}
    running = is_running()
    doc: dict[str, Any] = {
        "running": running,
        "pid": None,
        "since": None,
        "projects": [],
        "folders": [],
        "last_event": state.get("last_event"),
        "heartbeat": None,
        "complete_when": None,
        "writer_check": None,
        "log": str(log_path()),
    }
    if running:
        pid = _holder_pid()
        current = state.get("pid") == pid
        doc.update(
            pid=pid,
            since=state.get("started_at") if current else None,
            projects=state.get("projects", []) if current else [],
            folders=(state.get("folders") or []) if current else [],
            heartbeat=state.get("heartbeat") if current else None,
            last_event=state.get("last_event") if current else None,
            complete_when=state.get("complete_when") if current else None,
            writer_check=state.get("writer_check") if current else None,
            starting=not current or state.get("folders") is None,
        )
    return doc


def detach(options: Options) -> dict[str, Any]:
    """Start the watcher in a new session, detached from this terminal; returns
    its status once it watches every folder."""
    _check_intervals(options)
    if is_running():
        raise _already_running()
    _check_projects(options)
    child = spawn.spawn_detached(
        [sys.executable, "-m", "workbench.automation.daemon", json.dumps(asdict(options))],
        log=log_path(),
    )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        code = child.poll()
        if code is not None:
            raise WorkbenchError(f"the watcher exited ({code}) as it started: {_log_tail()}")
        state = read_state()
        if state and state.get("pid") == child.pid and state.get("folders") is not None:
            return status()
        time.sleep(0.05)
    raise WorkbenchError(
        f"the watcher (pid {child.pid}) did not report in within {START_TIMEOUT:g} s;"
        f" see {log_path()}"
    )


def _check_projects(options: Options) -> None:
    """Fail here, in the terminal, rather than in the detached child's log."""
    from workbench.automation import pipeline
    from workbench.store import open_store

    store = open_store()
    try:
        projects = pipeline.watched_projects(store, options.projects or None)
    finally:
        store.close()
    if not projects:
        raise UsageError(NOTHING_TO_WATCH)
    for _, folders in projects:
        for folder in folders:
            prepare_folder(folder)


def _check_intervals(options: Options) -> None:
    check_interval("--quiet", options.quiet, QUIET_RANGE)
    check_interval("--debounce", options.debounce, DEBOUNCE_RANGE)
    check_interval("--rescan", options.rescan, RESCAN_RANGE)


def _log_tail() -> str:
    try:
        lines = log_path().read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return lines[-1] if lines else "no output"


def stop(grace: float = STOP_GRACE) -> dict[str, Any]:
    """SIGTERM the running watcher, SIGKILL it after `grace` seconds."""
    if not is_running():
        return {"was_running": False, "pid": None, "killed": False}
    pid = _holder_pid()
    for _ in range(20):  # the holder writes its pid just after taking the lock
        if pid is not None:
            break
        time.sleep(0.05)
        pid = _holder_pid()
    if pid is None:
        raise WorkbenchError(f"a watcher holds {lock_path()} but its pid is not in it")
    _signal(pid, signal.SIGTERM)
    killed = not _wait_released(grace)
    if killed:
        _signal(pid, signal.SIGKILL)
        if not _wait_released(5.0):
            raise WorkbenchError(f"the watcher (pid {pid}) did not exit after SIGKILL")
    return {"was_running": True, "pid": pid, "killed": killed}


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _wait_released(timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_running():
            return True
        time.sleep(0.1)
    return not is_running()


def main(argv: list[str]) -> int:
    """The detached child: `python -m workbench.automation.daemon '<options JSON>'`."""
    from workbench.runs import process_log

    # The log's lines carry their own time stamps (see `_watch`).
    process_log.setup("%(message)s")
    options = Options(**json.loads(argv[0]))
    try:
        serve(options, detached=True)
    except WorkbenchError as exc:
        logger.error("error: %s", exc.message)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
