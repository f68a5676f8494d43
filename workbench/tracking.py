"""The tracking API for training code: params, metrics and artifacts of the current run.

Inside a run started by the workbench it attaches to that run (the supervisor
sets `WORKBENCH_RUN_ID`); elsewhere `with start_run(project=...)` creates one.
Calls never wait on the disk, take no lock and wake no thread: points go to an
in-memory buffer that a background thread writes every `FLUSH_INTERVAL`
seconds (sooner once about `FLUSH_AT_POINTS` wait), and at exit or SIGTERM,
in short transactions (`TXN_ROWS` points or `TXN_SECONDS` at most) so
that no writer holds the store's lock for long. Artifacts are the exception:
the file is copied when logged, since the caller may overwrite it right after.

Each point is checked when logged; a bad one is refused with one warning per
kind of problem (`MetricWarning`) and the run's other points are kept:
  value  anything `float()` takes; NaN and +/-inf are kept as a point with no
         value (null), with one warning
  step   None, or a whole number within SQLite's signed 64-bit range
  key    a non-empty string of at most MAX_KEY_LENGTH printable characters;
         a number is turned into its string ("7"); anything else is refused
"""

from __future__ import annotations

import atexit
import contextlib
import json
import operator
import os
import signal
import sqlite3
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from workbench.core import env, paths
from workbench.core.errors import StoreError, UsageError

FLUSH_INTERVAL = 0.5
FLUSH_AT_POINTS = 10_000  # wake the flusher early when about this many points are waiting
# Points (plus a few per key) written per transaction at most: 64 chunks of the
# store's 1,024 points, about 64 rows and 1.5 MB, a few milliseconds of work.
TXN_ROWS = 65_536
TXN_SECONDS = 0.25  # a transaction is committed after this long, even if short of rows
_KEY_ROWS = 8  # what a key costs in a transaction besides its points (summary, partial chunk)
MAX_KEY_LENGTH = 250
STEP_MIN, STEP_MAX = -(2**63), 2**63 - 1  # SQLite INTEGER
_REFUSED = object()  # a step or key that was refused
_SCHEMA_ARTIFACT = "feature_schema.json"  # with a "model" artifact: what register_run reads
# A point's time: `time.time()` read when it is logged (`log_metrics` stamps
# its points with one reading). The clock's own resolution is a nanosecond on
# Linux; as a float of seconds since 1970 it keeps about 0.25 us. It costs
# about 40 ns a call. The cheaper clock, a value that another thread refreshes,
# was left out: its resolution would be that thread's period (milliseconds at
# best, since it must take the GIL from a busy loop to refresh), and on a busy
# machine each refresh can stall the training loop while that thread waits
# for a core.
_now = time.time


class MetricWarning(UserWarning):
    """A metric point was refused (or its value stored as missing); the run goes on."""


class ActiveRun:
    """A run being written to by this process.

    The hot path takes no lock and wakes no thread: a point is three items,
    step, time and value, added to its series' flat list by one `list.extend`
    of a tuple (atomic under the GIL, so the three of a point stay together
    when several threads log one key). No tuple per point is kept: the buffer
    holds no object that the garbage collector tracks, and the store splits
    it into columns with three slices (`store.metrics.FlatPoints`). The
    flusher takes what a list holds with one slice and one `del` of that
    prefix (each atomic too), so a point added meanwhile is never lost and the
    points of each thread stay in their order. A log call wakes the flusher
    only when its series holds `FLUSH_AT_POINTS` points (`log_metrics`: its
    last series' length times its number of keys), a length read instead of
    a shared counter updated on every call; otherwise the flusher runs on its
    timer (`FLUSH_INTERVAL`).
    """

    def __init__(self, run_id: int, params: dict[str, Any], project_dir: Path | None) -> None:
        import math

        from workbench.store import open_store

        self.id = run_id
        self.params = params
        self.project_dir = project_dir
        self._store = open_store(migrate=False)
        # A busy store delays the writes of a live run; it never costs its points.
        self._store.patience = math.inf
        # Each series' buffer: step, time, value, step, time, value, ...
        self._series: dict[str, list[int | float | None]] = {}
        self._keys: dict[str, list] = {}  # str keys checked once: as logged -> their series
        # The buffer length (3 items a point) at which a log call wakes the
        # flusher; sys.maxsize from a wake-up until the flusher takes the buffers.
        self._wake_len = 3 * FLUSH_AT_POINTS
        self.wakeups = 0  # times a log call woke the flusher (threshold crossings)
        self._refused: dict[str, int] = {}  # kind of problem -> points
        self._params: dict[str, str] = {}
        self._artifacts: list[tuple] = []
        self._model_logged = False  # an artifact that register_run would make a version of
        self._lock = threading.Lock()  # guards params and artifacts (not points)
        self._write_lock = threading.Lock()  # one flush at a time
        self._failing: str | None = None  # the last flush error, reported once
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._parent: int | None = None  # the supervisor, when it is our parent
        self._thread = threading.Thread(
            target=self._flush_loop, name="workbench-flush", daemon=True
        )
        self._thread.start()

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        # The common case (a float, an int step, a str key seen before) costs
        # three type checks and a dict lookup; anything else takes the slow branch.
        if type(value) is not float:
            try:
                value = float(value)
            except Exception:  # noqa: BLE001 - whatever a hostile __float__ raises
                self._refuse("value", f"metric {_show(key)}: {_show(value)} is not a number")
                return
        if value - value:  # NaN or +/-inf (0.0 for any finite value)
            value = self._missing(key, value)  # type: ignore[assignment]
        if step is not None and (type(step) is not int or not STEP_MIN <= step <= STEP_MAX):
            step = self._step(key, step)
            if step is _REFUSED:
                return
        try:
            series = self._keys[key] if type(key) is str else None
        except KeyError:
            series = None
        if series is None:
            series = self._series_for(key)
            if series is None:
                return
        series.extend((step, _now(), value))
        if len(series) >= self._wake_len:
            self._crossed()

    def log_metrics(self, values: Mapping[str, float], step: int | None = None) -> None:
        try:
            items = values.items()
        except AttributeError:
            self._refuse("value", f"log_metrics takes a mapping, got {_show(values)}")
            return
        if step is not None and (type(step) is not int or not STEP_MIN <= step <= STEP_MAX):
            step = self._step(", ".join(map(_show, list(values)[:3])), step)
            if step is _REFUSED:
                return
        now = _now()
        keys = self._keys
        series = None
        for key, value in items:
            if type(value) is not float:
                try:
                    value = float(value)
                except Exception:  # noqa: BLE001 - whatever a hostile __float__ raises
                    self._refuse("value", f"metric {_show(key)}: {_show(value)} is not a number")
                    continue
            if value - value:
                value = self._missing(key, value)  # type: ignore[assignment]
            try:
                series = keys[key] if type(key) is str else None
            except KeyError:
                series = None
            if series is None:
                series = self._series_for(key)
                if series is None:
                    continue
            series.extend((step, now, value))
        # The keys of one call usually grow together: the last series' length
        # times their number stands for the points waiting (one check a call).
        if series is not None and len(series) * len(values) >= self._wake_len:
            self._crossed()

    def _crossed(self) -> None:
        """Wake the flusher: about FLUSH_AT_POINTS points wait. Until it takes
        them, no other call wakes it."""
        self._wake_len = sys.maxsize
        self.wakeups += 1
        self._wake.set()

    def _series_for(self, key: Any) -> list | None:
        """The buffer of `key`'s series, made on first use; None if the key is refused."""
        name = self._key(key)
        if name is None:
            return None
        series = self._series.setdefault(name, [])  # atomic: two threads get one list
        if type(key) is str:
            self._keys[key] = series
        return series

    # -- checks off the hot path -------------------------------------------------

    def _key(self, key: Any) -> str | None:
        """The key as stored, or None (refused, with a warning)."""
        try:
            if isinstance(key, str):
                name = str.__str__(key)  # a plain str, whatever the subclass does
            elif isinstance(key, int | float) and not isinstance(key, bool) or _is_numeric(key):
                name = str(key)
            else:
                name = None
        except Exception:  # noqa: BLE001 - a hostile __str__
            name = None
        if name is None:
            self._refuse("key", f"metric keys are strings; {_show(key)} is not one")
            return None
        if not name or name.isspace():
            self._refuse("key", "a metric key is empty")
            return None
        if len(name) > MAX_KEY_LENGTH:
            self._refuse(
                "key",
                f"metric key {_show(name, 40)} is {len(name)} characters; at most {MAX_KEY_LENGTH}",
            )
            return None
        if not name.isprintable():
            self._refuse("key", f"metric key {_show(name)} holds control characters")
            return None
        return name

    def _step(self, key: Any, step: Any) -> Any:
        """The step as an int within SQLite's range, or _REFUSED (with a warning)."""
        try:
            if isinstance(step, float) and step.is_integer():
                step = int(step)
            else:
                step = operator.index(step)  # int subclasses, numpy integers
        except Exception:  # noqa: BLE001 - whatever a hostile __index__ raises
            self._refuse("step", f"metric {_show(key)}: step {_show(step)} is not a whole number")
            return _REFUSED
        if not STEP_MIN <= step <= STEP_MAX:
            self._refuse(
                "step", f"metric {_show(key)}: step {_show(step)} is outside SQLite's 64-bit range"
            )
            return _REFUSED
        return int(step)

    def _missing(self, key: Any, number: float) -> None:
        self._refuse(
            "non-finite",
            f"metric {_show(key)} got {number}: NaN and infinite values are stored as missing"
            " (null)",
            refused=False,
        )
        return None

    def _refuse(self, kind: str, message: str, refused: bool = True) -> None:
        """Count a bad point; warn once per kind of problem and run."""
        first = kind not in self._refused
        self._refused[kind] = self._refused.get(kind, 0) + 1
        if first:
            tail = "; the point is refused, the run's other points are kept" if refused else ""
            warnings.warn(
                f"workbench: run {self.id}: {message}{tail} (warned once per run)",
                MetricWarning,
                stacklevel=_caller_level(),
            )

    # -- params and artifacts --------------------------------------------------------

    def log_params(self, values: Mapping[str, Any]) -> None:
        encoded = {str(k): json.dumps(v, default=str) for k, v in values.items()}
        with self._lock:
            self._params.update(encoded)

    def log_artifact(
        self, path: str | os.PathLike, name: str | None = None, kind: str | None = None
    ) -> str:
        """Copy a file into the content-addressed store; returns its SHA-256."""
        source = Path(path)
        if not source.is_file():
            raise UsageError(f"log_artifact: {source} is not a file")
        sha256, size = _store_blob(source)
        stored = name or source.name
        with self._lock:
            self._artifacts.append((self.id, stored, sha256, size, kind, time.time()))
            if kind == "model" or stored == _SCHEMA_ARTIFACT:
                self._model_logged = True
        return sha256

    # -- writing -------------------------------------------------------------------------

    def flush(self) -> None:
        """Write everything buffered so far; durable once this returns."""
        with self._write_lock:
            taken: list[tuple[str, list]] = []
            pieces: list[tuple[str, list]] | None = None
            params: dict[str, str] = {}
            artifacts: list[tuple] = []
            self._written = 0
            try:
                # Taken inside the try: an exception (SIGTERM's SystemExit in the
                # main thread) at any point puts back whatever was taken.
                self._take(taken)
                with self._lock:
                    params, self._params = self._params, {}
                    artifacts, self._artifacts = self._artifacts, []
                if not (taken or params or artifacts):
                    return
                pieces = _pieces(taken)
                self._write(pieces, params, artifacts)
            except BaseException:
                # What was committed stays; put the rest back, ahead of newer points.
                rest = taken if pieces is None else pieces[self._written :]
                self._put_back(rest, params, artifacts)
                raise

    def _take(self, taken: list[tuple[str, list]]) -> None:
        """Move each series' buffered points to `taken`, without a lock: a copy of
        the list's prefix, then `del` of that prefix (a point added meanwhile
        stays, after it; a length is always whole points, as each point is one
        `extend`). Sets the next wake-up threshold."""
        self._wake_len = 3 * FLUSH_AT_POINTS
        for name, series in list(self._series.items()):
            n = len(series)
            if n:
                # Slice, del, append: no Python call between them for a signal
                # handler (which runs at calls and loops) to cut in.
                points = series[:n]
                del series[:n]
                taken.append((name, points))

    def _write(self, pieces: list[tuple[str, list]], params: dict, artifacts: list) -> None:
        """Write `pieces` in short transactions, params and artifacts with the last.

        `self._written` counts the pieces committed so far (the caller puts the
        rest back when this raises). The store failing (busy past patience,
        full, read-only) raises; a piece that fails for a reason of its own is
        dropped with a warning, so that it never blocks the others.
        """
        from workbench.store.metrics import FlatPoints, append_points

        extras = bool(params or artifacts)
        while self._written < len(pieces) or extras:
            start = end = self._written
            in_extras = False
            try:
                with self._store.write() as conn:
                    deadline = time.monotonic() + TXN_SECONDS
                    rows = 0
                    while end < len(pieces) and (
                        end == start or (rows < TXN_ROWS and time.monotonic() < deadline)
                    ):
                        key, pts = pieces[end]
                        append_points(conn, self.id, {key: FlatPoints(pts)})
                        rows += len(pts) // 3 + _KEY_ROWS
                        end += 1
                    if extras and end == len(pieces):
                        in_extras = True
                        _write_extras(conn, self.id, params, artifacts)
            except (sqlite3.OperationalError, OSError, StoreError):
                raise
            except Exception as exc:  # noqa: BLE001 - bad data: drop it, keep the rest
                if in_extras:
                    extras = False
                    self._refuse("write", f"params and artifacts not written ({exc!r})")
                else:
                    key, pts = pieces.pop(end)
                    self._refuse(
                        "write",
                        f"{len(pts) // 3} points of metric {_show(key)} not written ({exc!r})",
                    )
                continue
            self._written = end
            extras = extras and not in_extras
        if self._failing:
            print(f"workbench: run {self.id}: tracking data written again", file=sys.stderr)
            self._failing = None

    def _put_back(self, pieces: list, params: dict, artifacts: list) -> None:
        rest: dict[str, list] = {}
        for key, pts in pieces:
            rest.setdefault(key, []).extend(pts)
        for key, pts in rest.items():
            series = self._series.setdefault(key, [])
            series[:0] = pts  # one atomic slice assignment, ahead of newer points
        with self._lock:
            self._params = {**params, **self._params}
            self._artifacts[:0] = artifacts

    def _flush_loop(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(FLUSH_INTERVAL)
            self._wake.clear()
            if self._parent is not None and os.getppid() != self._parent:
                # Our supervisor died (where the kernel cannot kill us with it):
                # write what we have and stop, as on `run stop`.
                self._parent = None
                os.kill(os.getpid(), signal.SIGTERM)
            try:
                self.flush()
            except Exception as exc:  # keep training; the next flush retries
                if str(exc) != self._failing:
                    self._failing = str(exc)
                    print(
                        f"workbench: run {self.id}: could not write tracking data yet"
                        f" ({exc}); keeping it and retrying",
                        file=sys.stderr,
                        flush=True,
                    )

    def close(self) -> None:
        """Write what is left and release the store. Never raises for a failed
        write: it says on stderr how many points could not be written, and why."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._wake.set()
        self._thread.join(timeout=5)
        try:
            for attempt in range(3):
                try:
                    self.flush()
                    break
                except Exception as exc:  # noqa: BLE001 - reported below, never silently
                    if attempt == 2:
                        lost = sum(len(p) for p in self._series.values()) // 3
                        print(
                            f"workbench: run {self.id}: {lost} metric points,"
                            f" {len(self._params)} params and {len(self._artifacts)} artifacts"
                            f" could not be written: {exc}",
                            file=sys.stderr,
                            flush=True,
                        )
                    else:
                        time.sleep(0.5)
            if any(n > 1 for n in self._refused.values()):
                missing = self._refused.get("non-finite", 0)
                refused = sorted((k, n) for k, n in self._refused.items() if k != "non-finite")
                detail = ", ".join(f"{n} for their {kind}" for kind, n in refused) or "none"
                print(
                    f"workbench: run {self.id}: metric points refused: {detail};"
                    f" stored without a value (NaN/inf): {missing}",
                    file=sys.stderr,
                    flush=True,
                )
        finally:
            self._store.close()


def _pieces(metrics: list[tuple[str, list]]) -> list[tuple[str, list]]:
    """Each key's points (flat, 3 items a point), long series cut to at most
    TXN_ROWS points a piece."""
    out = []
    most = 3 * TXN_ROWS
    for key, pts in metrics:
        if len(pts) <= most:
            out.append((key, pts))
        else:
            out.extend((key, pts[i : i + most]) for i in range(0, len(pts), most))
    return out


def _write_extras(conn: sqlite3.Connection, run_id: int, params: dict, artifacts: list) -> None:
    from workbench.store import runs as run_store

    run_store.put_params(conn, run_id, params)
    run_store.put_artifacts(conn, artifacts)


def _is_numeric(key: Any) -> bool:
    """numpy and other number types (they define __index__ or __float__)."""
    import numbers

    return isinstance(key, numbers.Number) and not isinstance(key, bool)


def _caller_level() -> int:
    """The `stacklevel` that points a warning at the user's line, not ours."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename == __file__:
        frame, level = frame.f_back, level + 1
    return level


def _show(value: Any, limit: int = 60) -> str:
    """A short, safe rendering of a bad input for a warning."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a hostile __repr__
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit] + "..."


def _store_blob(source: Path) -> tuple[str, int]:
    import hashlib
    import tempfile

    folder = paths.artifacts_dir()
    folder.mkdir(parents=True, exist_ok=True)
    # Not core.files: one read both hashes and copies the file (the caller may
    # overwrite it right after), into a private (0o600) temporary, without fsync.
    digest = hashlib.sha256()
    size = 0
    with open(source, "rb") as src, tempfile.NamedTemporaryFile(dir=folder, delete=False) as tmp:
        while chunk := src.read(1 << 20):
            digest.update(chunk)
            tmp.write(chunk)
            size += len(chunk)
    sha256 = digest.hexdigest()
    target = paths.artifact_file(sha256)
    target.parent.mkdir(exist_ok=True)
    if target.exists():
        os.unlink(tmp.name)
    else:
        os.replace(tmp.name, target)
    return sha256, size


_active: ActiveRun | None = None
_active_lock = threading.Lock()


def active_run() -> ActiveRun:
    """The run this process writes to; attaches to the supervisor's run on first use."""
    global _active
    run = _active  # no lock once attached: a plain read of a module global
    if run is not None:
        return run
    with _active_lock:
        if _active is not None:
            return _active
        run_id = os.environ.get(env.RUN_ID)
        if not run_id:
            raise UsageError(
                "no active run: start this script with `workbench run start`, "
                "or wrap it in `with workbench.start_run(project=...)`"
            )
        project_dir = os.environ.get(env.PROJECT_DIR)
        journal = os.environ.get(env.JOURNAL)
        if journal:
            # A job on a cluster node: it never opens the store (SQLite over NFS
            # corrupts); it appends to the run's journal, which the workbench ingests.
            from workbench.runs.executors.journal import JournalRun

            _active = JournalRun(  # type: ignore[assignment]
                int(run_id),
                json.loads(os.environ.get(env.PARAMS) or "{}"),
                Path(project_dir) if project_dir else None,
                Path(journal),
            )
            _install_exit_hooks()
            return _active  # type: ignore[return-value]
        _active = ActiveRun(
            int(run_id),
            json.loads(os.environ.get(env.PARAMS) or "{}"),
            Path(project_dir) if project_dir else None,
        )
        supervisor = os.environ.get(env.SUPERVISOR_PID, "")
        if supervisor.isdigit() and int(supervisor) == os.getppid():
            # The trainer itself (not a process it started): it dies with its
            # supervisor. The kernel sees to that on Linux; this covers the rest.
            _active._parent = int(supervisor)
        _install_exit_hooks()
        return _active


def _install_exit_hooks() -> None:
    atexit.register(_close_active)
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, _flush_then_die)


def _close_active() -> None:
    if _active is not None:
        _active.close()


def _flush_then_die(signum: int, _frame: object) -> None:
    # Only unwind here: flushing inside the handler could wait forever on a lock
    # that the interrupted code holds. Unwinding releases it, and the atexit
    # hook writes what is buffered.
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def start_run(
    project: str | os.PathLike, params: Mapping[str, Any] | None = None
) -> Iterator[ActiveRun]:
    """Create and own a run outside the supervisor, e.g. in a notebook.

    `project` is a registered project's name or a folder with a workbench.toml
    (checked and registered on the way the first time; a registered folder is
    found by its path, without reading its workbench.toml). The run is marked succeeded when the block ends,
    failed when it raises, and lost if this process dies first.
    """
    global _active
    import math

    from workbench.store import open_store
    from workbench.store import runs as run_store
    from workbench.store.runs import RunStatus

    if _active is not None:
        raise UsageError(f"run {_active.id} is already active in this process")
    store = open_store()
    store.patience = math.inf  # a busy store delays this run's writes, never fails it
    try:
        row = _project_row(store, project)
        pid, born = os.getpid(), _process_started_at()
        now = time.time()
        run_id = run_store.create(
            store,
            row["id"],
            "inline",
            status=RunStatus.RUNNING,
            event_message=f"run {{id}} started in process {pid}",
            created_at=now,
            started_at=now,
            supervisor_pid=pid,
            supervisor_started_at=born,
            pid=pid,
            pid_started_at=born,
            heartbeat_at=now,
        )
        run = ActiveRun(run_id, dict(params or {}), Path(row["path"]))
        with _active_lock:
            _active = run
        if params:
            run.log_params(params)
        status, code = "failed", 1
        try:
            yield run
            status, code = "succeeded", 0
        finally:
            with _active_lock:
                _active = None
            run.close()
            if status == "succeeded" and run._model_logged:
                _register_model(store, run_id, run.project_dir)
            end = time.time()
            # Whatever was recorded meanwhile, this process knows how its block ended.
            run_store.transition(
                store,
                run_id,
                status,
                event_message=f"run {run_id} {status}",
                event_data={},
                exit_code=code,
                ended_at=end,
                heartbeat_at=end,
            )
    finally:
        store.close()


def _project_row(store: Any, project: str | os.PathLike) -> dict[str, Any]:
    """The project to start a run in. A folder registered already, or a name,
    is read from the store alone; only a folder met for the first time is read
    and checked (`workbench.projects`, which imports the config parser)."""
    from workbench.store import projects as records

    folder = Path(project)
    if (folder / "workbench.toml").is_file():
        known = records.by_path(store, str(folder.expanduser().resolve()))
        if known is not None:
            return known.as_dict()
        from workbench.projects import add_project

        return add_project(store, folder)
    known = records.by_name(store, str(project))
    if known is not None:
        return known.as_dict()
    from workbench.projects import get_project

    return get_project(store, str(project))  # NotFoundError, naming the known ones


def _process_started_at() -> float:
    """This process's start time as psutil's `create_time()` gives it (what
    liveness checks compare), read from /proc on Linux without importing psutil."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        with open("/proc/stat", "rb") as f:
            boot = next(float(line.split()[1]) for line in f if line.startswith(b"btime"))
        return int(fields[19]) / os.sysconf("SC_CLK_TCK") + boot
    except (OSError, ValueError, IndexError, StopIteration):
        import psutil

        return float(psutil.Process().create_time())


def _register_model(store: Any, run_id: int, folder: Path | None) -> None:
    """A version for the model the block logged (`log_model`), as the supervisor
    registers a supervised run's, before the run reads as succeeded."""
    from workbench.config.project import load_config
    from workbench.models.registry import register_run

    try:
        config = load_config(folder) if folder is not None else None
        register_run(store, run_id, config, trainer_succeeded=True)
    except Exception as exc:  # noqa: BLE001 - the run itself succeeded; say why the model is missing
        import sys

        print(f"workbench: cannot register run {run_id}'s model: {exc}", file=sys.stderr)


# Module-level API, bound to the active run.


def log_metric(key: str, value: float, step: int | None = None) -> None:
    (_active or active_run()).log_metric(key, value, step)


def log_metrics(values: Mapping[str, float], step: int | None = None) -> None:
    (_active or active_run()).log_metrics(values, step)


def log_params(values: Mapping[str, Any]) -> None:
    active_run().log_params(values)


def log_artifact(path: str | os.PathLike, name: str | None = None, kind: str | None = None) -> str:
    return active_run().log_artifact(path, name, kind)


def params() -> dict[str, Any]:
    """The run's params: `[train].params` merged with `run start --set` overrides."""
    return dict(active_run().params)


def project_dir() -> Path:
    run = active_run()
    if run.project_dir is None:
        raise UsageError("this run has no project folder")
    return run.project_dir


def train_file() -> Path:
    """The file to train on: the project's `[data] train`, or the reference plus
    accepted new data when an automation pipeline started the run."""
    override = active_run().params.get("_train_file")
    if override:
        return Path(override)
    from workbench.config.project import load_config

    return load_config(project_dir()).train_file


def holdout_split(
    features: Any, target: Any, test_size: float | None = None, seed: int | None = None
):
    """(x_train, x_test, y_train, y_test) split as the built-in trainers split:
    by a hash of each row's content, so a row is on the same side in every run
    that sees it and a retrained model's hold-out is fair to the champion.
    `test_size` and `seed` default to the project's `[train]` settings."""
    from workbench.config.project import load_config
    from workbench.trainers.tabular import holdout_split as split

    if test_size is None or seed is None:
        config = load_config(project_dir())
        test_size = config.test_size if test_size is None else test_size
        seed = config.seed if seed is None else seed
    try:
        return split(features, target, float(test_size), int(seed))
    except ValueError as exc:
        raise UsageError(f"holdout_split: {exc}") from exc


def log_model(model: Any, x_test: Any, y_test: Any, *, x_train: Any = None) -> str:
    """Save a fitted scikit-learn estimator or Pipeline as the run's model (skops,
    no pickle) with its hold-out rows. When the run succeeds it becomes a model
    version of the project, like a built-in trainer's: gated, promoted, exported,
    served. `x_test` holds the raw feature columns as `model.predict` takes them;
    `x_train`, when given, supplies the categories seen in training. Returns the
    model file's SHA-256."""
    from workbench.models import logged

    run = active_run()
    target = None
    if run.project_dir is not None:
        with contextlib.suppress(KeyError, UsageError):  # no target configured
            target = project_config()["data"]["target"]
    folder = paths.run_dir(run.id) / "outputs"
    model_file, schema_file, holdout_file = logged.save(
        folder, model, x_test, y_test, target=target, x_train=x_train
    )
    sha256 = run.log_artifact(model_file, kind="model")
    run.log_artifact(schema_file, kind="schema")
    run.log_artifact(holdout_file, kind="evaluation")
    return sha256


def project_config() -> dict[str, Any]:
    """The project's parsed workbench.toml, as a dict."""
    from workbench.config.project import load_config

    return load_config(project_dir()).raw


def flush() -> None:
    """Write buffered points now (they are also written every 0.5 s and at exit)."""
    active_run().flush()
