"""The tracking API for training code: params, metrics and artifacts of the current run.

Inside a run started by the workbench it attaches to that run (the supervisor
sets `WORKBENCH_RUN_ID`); elsewhere `with start_run(project=...)` creates one.
Calls never wait on the disk: points go to an in-memory buffer that a
background thread writes in one transaction every `FLUSH_INTERVAL` seconds,
and at exit or SIGTERM. Artifacts are the exception: the file is copied when
logged, since the caller may overwrite it right after.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import signal
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from workbench import paths
from workbench.errors import UsageError

FLUSH_INTERVAL = 0.5
FLUSH_AT_POINTS = 50_000  # flush early when this many points are waiting


class ActiveRun:
    """A run being written to by this process."""

    def __init__(self, run_id: int, params: dict[str, Any], project_dir: Path | None) -> None:
        from workbench.store import open_store

        self.id = run_id
        self.params = params
        self.project_dir = project_dir
        self._store = open_store(migrate=False)
        self._metrics: dict[str, list[tuple[int | None, float, float | None]]] = {}
        self._pending = 0  # points in self._metrics
        self._params: dict[str, str] = {}
        self._artifacts: list[tuple] = []
        self._lock = threading.Lock()  # guards the buffers
        self._write_lock = threading.Lock()  # one flush at a time
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(
            target=self._flush_loop, name="workbench-flush", daemon=True
        )
        self._thread.start()

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        point = (None if step is None else int(step), time.time(), _number(key, value))
        with self._lock:
            series = self._metrics.get(key)
            if series is None:
                series = self._metrics[str(key)] = []
            series.append(point)
            self._pending += 1
            if self._pending >= FLUSH_AT_POINTS:
                self._wake.set()

    def log_metrics(self, values: Mapping[str, float], step: int | None = None) -> None:
        now = time.time()
        step = None if step is None else int(step)
        points = [(k, (step, now, _number(k, v))) for k, v in values.items()]
        with self._lock:
            for key, point in points:
                series = self._metrics.get(key)
                if series is None:
                    series = self._metrics[str(key)] = []
                series.append(point)
            self._pending += len(points)
            if self._pending >= FLUSH_AT_POINTS:
                self._wake.set()

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
        with self._lock:
            self._artifacts.append((self.id, name or source.name, sha256, size, kind, time.time()))
        return sha256

    def flush(self) -> None:
        """Write everything buffered so far; durable once this returns."""
        from workbench.store.metrics import append_points

        with self._write_lock:
            with self._lock:
                metrics, self._metrics = self._metrics, {}
                pending, self._pending = self._pending, 0
                params, self._params = self._params, {}
                artifacts, self._artifacts = self._artifacts, []
            if not (metrics or params or artifacts):
                return
            try:
                with self._store.write() as conn:
                    append_points(conn, self.id, metrics)
                    conn.executemany(
                        "INSERT OR REPLACE INTO params (run_id, key, value) VALUES (?, ?, ?)",
                        [(self.id, k, v) for k, v in params.items()],
                    )
                    conn.executemany(
                        "INSERT OR REPLACE INTO artifacts (run_id, name, sha256, size, kind,"
                        " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                        artifacts,
                    )
            except BaseException:
                # Nothing was written: put it all back, ahead of newer points.
                with self._lock:
                    for key, newer in self._metrics.items():
                        metrics.setdefault(key, []).extend(newer)
                    self._metrics = metrics
                    self._pending += pending
                    self._params = {**params, **self._params}
                    self._artifacts[:0] = artifacts
                raise

    def _flush_loop(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(FLUSH_INTERVAL)
            self._wake.clear()
            try:
                self.flush()
            except Exception as exc:  # keep training; the final flush will retry
                print(f"workbench: could not write tracking data yet: {exc}", flush=True)

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._wake.set()
        self._thread.join(timeout=5)
        self.flush()
        self._store.close()


def _number(key: str, value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"metric {key!r} must be a number, got {value!r}") from None
    return None if number != number else number  # NaN is stored as NULL


def _store_blob(source: Path) -> tuple[str, int]:
    folder = paths.artifacts_dir()
    folder.mkdir(parents=True, exist_ok=True)
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
    with _active_lock:
        if _active is not None:
            return _active
        run_id = os.environ.get("WORKBENCH_RUN_ID")
        if not run_id:
            raise UsageError(
                "no active run: start this script with `workbench run start`, "
                "or wrap it in `with workbench.start_run(project=...)`"
            )
        project_dir = os.environ.get("WORKBENCH_PROJECT_DIR")
        _active = ActiveRun(
            int(run_id),
            json.loads(os.environ.get("WORKBENCH_PARAMS") or "{}"),
            Path(project_dir) if project_dir else None,
        )
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
    (registered on the way). The run is marked succeeded when the block ends,
    failed when it raises, and lost if this process dies first.
    """
    global _active
    import psutil

    from workbench.projects import add_project, get_project
    from workbench.store import open_store

    if _active is not None:
        raise UsageError(f"run {_active.id} is already active in this process")
    store = open_store()
    try:
        folder = Path(project)
        if (folder / "workbench.toml").is_file():
            row = add_project(store, folder)
        else:
            row = get_project(store, str(project))
        me = psutil.Process()
        now = time.time()
        with store.write() as conn:
            run_id = conn.execute(
                "INSERT INTO runs (project_id, status, trainer, created_at, started_at,"
                " supervisor_pid, supervisor_started_at, pid, pid_started_at, heartbeat_at)"
                " VALUES (?, 'running', 'inline', ?, ?, ?, ?, ?, ?, ?)",
                (row["id"], now, now, me.pid, me.create_time(), me.pid, me.create_time(), now),
            ).lastrowid
            store.add_event(
                "run.running",
                f"run {run_id} started in process {me.pid}",
                ts=now,
                project_id=row["id"],
                run_id=run_id,
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
            if status == "succeeded":
                _register_model(store, run_id, run.project_dir)
            end = time.time()
            with store.write() as conn:
                conn.execute(
                    "UPDATE runs SET status = ?, exit_code = ?, ended_at = ?, heartbeat_at = ?"
                    " WHERE id = ?",
                    (status, code, end, end, run_id),
                )
                store.add_event(
                    f"run.{status}",
                    f"run {run_id} {status}",
                    ts=end,
                    project_id=row["id"],
                    run_id=run_id,
                )
    finally:
        store.close()


def _register_model(store: Any, run_id: int, folder: Path | None) -> None:
    """A version for the model the block logged (`log_model`), as the supervisor
    registers a supervised run's, before the run reads as succeeded."""
    from workbench.config import load_config
    from workbench.models.registry import register_run

    try:
        config = load_config(folder) if folder is not None else None
        register_run(store, run_id, config, trainer_succeeded=True)
    except Exception as exc:  # noqa: BLE001 - the run itself succeeded; say why the model is missing
        import sys

        print(f"workbench: cannot register run {run_id}'s model: {exc}", file=sys.stderr)


# Module-level API, bound to the active run.


def log_metric(key: str, value: float, step: int | None = None) -> None:
    active_run().log_metric(key, value, step)


def log_metrics(values: Mapping[str, float], step: int | None = None) -> None:
    active_run().log_metrics(values, step)


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
    from workbench.config import load_config

    return load_config(project_dir()).train_file


def holdout_split(
    features: Any, target: Any, test_size: float | None = None, seed: int | None = None
):
    """(x_train, x_test, y_train, y_test) split as the built-in trainers split:
    by a hash of each row's content, so a row is on the same side in every run
    that sees it and a retrained model's hold-out is fair to the champion.
    `test_size` and `seed` default to the project's `[train]` settings."""
    from workbench.config import load_config
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
    from workbench.config import load_config

    return load_config(project_dir()).raw


def flush() -> None:
    """Write buffered points now (they are also written every 0.5 s and at exit)."""
    active_run().flush()
