"""A run's journal: what a job writes instead of opening the store, and how the
workbench ingests it.

A job on a cluster node never opens the SQLite store (SQLite over NFS corrupts).
Its wrapper (`executors.job`) and the tracking API inside the trainer append
JSON lines to `journal.jsonl` in the job's folder on the shared filesystem:

    {"t": "start", "ts": ..., "node": "gpu07", "job_id": "1234", "pid": 4242}
    {"t": "params", "v": {"lr": "0.1"}}                    values as JSON text
    {"t": "m", "k": "loss", "s": [steps], "ts": [times], "v": [values]}  by column;
                                                            a value null: NaN/inf
    {"t": "res", "ts": ..., "cpu_percent": ..., ...}        a resource sample
    {"t": "a", "name": "model.txt", "sha256": ..., "size": ..., "kind": ..., "ts": ...}
    {"t": "exit", "ts": ..., "code": 0, "status": "succeeded", "message": null, ...}

Each batch of whole lines goes out in one `write` on a file opened O_APPEND,
so the two writers (on one node) never interleave within a line. Artifacts'
bytes go to `blobs/<sha256>` beside the journal.

Ingestion reads from the run's byte offset, takes only whole lines (a last line
still being written waits for the next read), and moves the offset in the same
transaction as the rows it adds: a journal read twice adds nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import shutil
import stat
import tempfile
import threading
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core import env, paths
from workbench.core.errors import UsageError
from workbench.store import Store
from workbench.store import jobs as job_store
from workbench.store import runs as run_store
from workbench.store.jobs import Job
from workbench.store.metrics import append_columns
from workbench.store.runs import RunStatus

logger = logging.getLogger("workbench.runs.executors.journal")

JOURNAL_ENV = env.JOURNAL  # set for a job's trainer: the journal to write
JOURNAL_NAME = "journal.jsonl"
LOG_NAME = "output.log"
BLOBS = "blobs"
FLUSH_INTERVAL = 0.5
READ_CHUNK = 16 << 20  # bytes of journal ingested per transaction at most
MAX_KEY_LENGTH = 250
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SAMPLE_KEYS = (
    "ts",
    "cpu_percent",
    "rss_bytes",
    "num_threads",
    "num_procs",
    "read_bytes",
    "write_bytes",
    "sys_cpu_percent",
    "sys_mem_percent",
    "sys_mem_used",
    "gpu",
)
_FINISHED_BY_JOB = {"succeeded", "failed", "stopped"}
SIGNALLED = "signalled"  # the job was signalled: the scheduler knows why


class JournalWarning(UserWarning):
    """A metric point was refused by the journal writer; the run goes on."""


# --- writing (on the node) ----------------------------------------------------------


class JournalWriter:
    """Appends records to a journal, each batch in one `write` (O_APPEND)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._lock = threading.Lock()

    def write(self, *records: Mapping[str, Any]) -> None:
        if not records:
            return
        data = "".join(
            json.dumps(r, separators=(",", ":"), allow_nan=False) + "\n" for r in records
        ).encode()
        with self._lock:
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]

    def sync(self) -> None:
        with self._lock:
            os.fsync(self._fd)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


class JournalRun:
    """The tracking API's run inside a job: the same calls as `tracking.ActiveRun`,
    written to the journal (buffered, flushed every FLUSH_INTERVAL and at exit)."""

    def __init__(
        self, run_id: int, params: dict[str, Any], project_dir: Path | None, journal: Path
    ) -> None:
        self.id = run_id
        self.params = params
        self.project_dir = project_dir
        self.journal = journal
        self._writer = JournalWriter(journal)
        self._series: dict[str, list[tuple[int | None, float, float | None]]] = {}
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        self._model_logged = False
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="workbench-journal", daemon=True)
        self._thread.start()

    # -- the API ------------------------------------------------------------------

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        self.log_metrics({key: value}, step)

    def log_metrics(self, values: Mapping[str, float], step: int | None = None) -> None:
        if step is not None:
            try:
                step = int(step) if float(step).is_integer() else None
            except (TypeError, ValueError, OverflowError):
                step = None
            if step is None or not -(2**63) <= step < 2**63:
                self._warn("step", "a step must be a whole number in SQLite's range")
                return
        now = time.time()
        with self._lock:
            for key, value in values.items():
                name = self._key(key)
                if name is None:
                    continue
                try:
                    number: float | None = float(value)
                except Exception:  # noqa: BLE001 - whatever a hostile __float__ raises
                    self._warn("value", f"metric {name!r}: the value is not a number")
                    continue
                if number is not None and not math.isfinite(number):
                    number = None  # kept as a point with no value, as the store keeps it
                self._series.setdefault(name, []).append((step, now, number))

    def log_params(self, values: Mapping[str, Any]) -> None:
        encoded = {str(k): json.dumps(v, default=str) for k, v in values.items()}
        self._writer.write({"t": "params", "v": encoded})

    def log_artifact(
        self, path: str | os.PathLike, name: str | None = None, kind: str | None = None
    ) -> str:
        """Copy a file beside the journal (by content) and record it; its SHA-256."""
        source = Path(path)
        if not source.is_file():
            raise UsageError(f"log_artifact: {source} is not a file")
        blobs = self.journal.parent / BLOBS
        blobs.mkdir(exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        with open(source, "rb") as src, tempfile.NamedTemporaryFile(dir=blobs, delete=False) as tmp:
            while chunk := src.read(1 << 20):
                digest.update(chunk)
                tmp.write(chunk)
                size += len(chunk)
        sha256 = digest.hexdigest()
        os.replace(tmp.name, blobs / sha256)
        stored = name or source.name
        if kind == "model" or stored == "feature_schema.json":
            self._model_logged = True
        self._writer.write(
            {"t": "a", "name": stored, "sha256": sha256, "size": size, "kind": kind, "ts": time.time()}
        )
        return sha256

    def flush(self) -> None:
        with self._lock:
            taken, self._series = self._series, {}
        # By column: a list of numbers parses several times faster than a list of
        # [step, ts, value] lists (no list per point), which is what ingestion costs.
        self._writer.write(
            *(
                {
                    "t": "m",
                    "k": k,
                    "s": [p[0] for p in pts],
                    "ts": [round(p[1], 4) for p in pts],
                    "v": [p[2] for p in pts],
                }
                for k, pts in taken.items()
            )
        )

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._thread.join(timeout=5)
        self.flush()
        self._writer.close()

    # -- helpers -------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._closed.wait(FLUSH_INTERVAL):
            try:
                self.flush()
            except OSError as exc:  # a full or gone filesystem: keep training, say it once
                self._warn("write", f"cannot write the journal: {exc}")

    def _key(self, key: Any) -> str | None:
        if isinstance(key, (int, float)) and not isinstance(key, bool):
            key = str(key)
        if not isinstance(key, str):
            self._warn("key", "metric keys are strings")
            return None
        name = str.__str__(key)
        if not name.strip() or len(name) > MAX_KEY_LENGTH or not name.isprintable():
            self._warn("key", f"metric key {name[:40]!r} is empty, too long or not printable")
            return None
        return name

    def _warn(self, kind: str, message: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            warnings.warn(
                f"workbench: run {self.id}: {message}; the point is refused (warned once per run)",
                JournalWarning,
                stacklevel=4,
            )


# --- reading (on the workbench side) --------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ingested:
    """What one ingestion added: journal bytes, records, and the job's exit record."""

    bytes: int = 0
    records: int = 0
    skipped: int = 0  # lines that were not records (a damaged journal)
    exit: dict[str, Any] | None = None


def whole_lines(data: bytes) -> tuple[list[bytes], int]:
    """The complete lines of `data` and how many bytes they take; a last line with
    no newline yet is left for later."""
    end = data.rfind(b"\n") + 1
    return (data[:end].splitlines() if end else []), end


def parse(line: bytes) -> dict[str, Any] | None:
    """A journal record, or None for a line that is not one."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("t"), str) else None


def job_folder(job: Job) -> Path | None:
    return Path(job.journal_path).parent if job.journal_path else None


def ingest(store: Store, job: Job) -> Ingested:
    """Add what the job's journal holds past the run's offset to the store, in
    transactions that move the offset with the rows; returns what was added
    (and the exit record, once, when it is read). Also copies new output into the
    run's log."""
    if not job.journal_path:
        return Ingested()
    folder = Path(job.journal_path).parent
    _copy_log(folder / LOG_NAME, job.run_id)
    path = Path(job.journal_path)
    total = Ingested()
    offset = job_store.journal_offset(store, job.run_id)
    while True:
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read(READ_CHUNK)
        except FileNotFoundError:
            return total
        lines, _ = whole_lines(data)
        records: list[dict[str, Any]] = []
        skipped = consumed = exit_length = 0
        exit_record = None
        for line in lines:
            record = parse(line)
            if record is not None and record["t"] == "exit":
                exit_record, exit_length = record, len(line) + 1
                break  # the outcome is applied after everything before it
            consumed += len(line) + 1
            if record is None:
                skipped += int(bool(line.strip()))
            else:
                records.append(record)
        added = 0
        if consumed:
            with store.write() as conn:
                if not job_store.advance_journal(conn, job.run_id, offset, offset + consumed):
                    return total  # another reader took these bytes
                added = _apply(store, conn, job, folder, records)
            offset += consumed
        if exit_record is not None:
            if exit_record.get("status") == "succeeded" and job.parent_id is None:
                register_model(store, job.run_id)  # before the run reads as succeeded
            with store.write() as conn:
                if not job_store.advance_journal(conn, job.run_id, offset, offset + exit_length):
                    return total
                _finish(store, job, exit_record)
            offset += exit_length
        total = Ingested(
            total.bytes + consumed + exit_length,
            total.records + added + (exit_record is not None),
            total.skipped + skipped,
            exit_record or total.exit,
        )
        if exit_record is not None or len(data) < READ_CHUNK or not consumed:
            return total  # done, or a line longer than a chunk: never a record of ours


def register_model(store: Store, run_id: int) -> None:
    """A version in the registry for the model the job saved, as the supervisor
    registers a local run's (a sweep's trials are left to the sweep)."""
    from workbench.config.project import load_config
    from workbench.models.registry import register_run

    run = run_store.get(store, run_id)
    try:
        config = load_config(Path(run.project_path)) if run and run.project_path else None
        register_run(store, run_id, config, trainer_succeeded=True)
    except Exception as exc:  # noqa: BLE001 - the run itself succeeded; say why the model is missing
        logger.warning("run %s: cannot register the model: %r", run_id, exc)


def _apply(
    store: Store, conn: Any, job: Job, folder: Path, records: list[dict[str, Any]]
) -> int:
    """Write the records into the open transaction; a malformed one is skipped."""
    rid = job.run_id
    # Each key's (steps, times, values), columns as the records carry them.
    columns: dict[str, tuple[list, list, list]] = {}
    samples: list[dict[str, Any]] = []
    added = 0
    heartbeat = None
    for record in records:
        kind = record["t"]
        try:
            if kind == "m":
                steps, times, values = _columns(record)
                held = columns.setdefault(_metric_key(record["k"]), ([], [], []))
                held[0].extend(steps)
                held[1].extend(times)
                held[2].extend(values)
            elif kind == "res":
                sample = {key: record.get(key) for key in _SAMPLE_KEYS}
                if not isinstance(sample["ts"], (int, float)):
                    continue
                sample["gpu"] = json.dumps(sample["gpu"]) if sample["gpu"] is not None else None
                sample["run_id"] = rid
                samples.append(sample)
                heartbeat = float(sample["ts"])
            elif kind == "params":
                values = record["v"]
                if isinstance(values, dict) and all(isinstance(v, str) for v in values.values()):
                    run_store.put_params(conn, rid, {str(k): v for k, v in values.items()})
            elif kind == "a":
                _artifact(conn, rid, folder, record)
            elif kind == "start":
                _started(store, job, record)
            else:
                continue
        except (KeyError, TypeError, ValueError, OSError) as exc:
            logger.warning("run %s: a journal record was skipped: %r", rid, exc)
            continue
        added += 1
    if columns:
        append_columns(conn, rid, columns)
    if samples:
        run_store.add_samples(conn, samples)
        run_store.update(store, rid, heartbeat_at=heartbeat)
    return added


def _metric_key(key: Any) -> str:
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"not a metric key: {str(key)[:40]!r}")
    return key


_STEP_TYPES = frozenset({int, type(None)})
_TIME_TYPES = frozenset({int, float})
_VALUE_TYPES = frozenset({int, float, type(None)})


def _columns(record: dict[str, Any]) -> tuple[Any, Any, Any]:
    """A metric record's (steps, times, values) columns: as written ("s", "ts",
    "v"), or from rows ("p"); every column checked whole, so one bad point drops
    the record."""
    if "p" in record:
        steps, times, values = zip(*record["p"], strict=True) if record["p"] else ((), (), ())
    else:
        steps, times, values = record["s"], record["ts"], record["v"]
    if not (
        isinstance(steps, (list, tuple))
        and isinstance(times, (list, tuple))
        and isinstance(values, (list, tuple))
        and len(steps) == len(times) == len(values)
    ):
        raise ValueError("metric columns of different lengths")
    # The types of a column as a set: one C loop, not a Python call per point.
    if not set(map(type, steps)) <= _STEP_TYPES:
        raise ValueError("a step is a whole number")
    if not set(map(type, times)) <= _TIME_TYPES:
        raise ValueError("a time is a number")
    if not set(map(type, values)) <= _VALUE_TYPES:
        raise ValueError("a value is a number or null")
    return steps, times, values


def _artifact(conn: Any, rid: int, folder: Path, record: dict[str, Any]) -> None:
    sha256 = record["sha256"]
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise ValueError("not a SHA-256")
    size = record["size"]
    if type(size) is not int or size < 0:
        raise ValueError("an artifact's size is a whole number")
    target = paths.artifact_file(sha256)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{sha256}.{os.getpid()}.tmp")
        try:
            _copy_blob(folder / BLOBS / sha256, tmp, sha256, size)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, target)
    kind = record.get("kind")
    run_store.put_artifacts(
        conn,
        [
            (
                rid,
                str(record["name"])[:500],
                sha256,
                size,
                kind if isinstance(kind, str) else None,
                float(record.get("ts") or time.time()),
            )
        ],
    )


def _copy_blob(source: Path, tmp: Path, sha256: str, size: int) -> None:
    """Copy a job's blob to `tmp`, checked: a regular file, never through a link
    (a blob linked to a device or to someone else's file is refused unread), of
    the size its record says and with that SHA-256."""
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    digest = hashlib.sha256()
    left = size
    with open(fd, "rb") as src:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"artifact {sha256[:12]}: not a regular file")
        with open(tmp, "wb") as out:
            while left >= 0 and (chunk := src.read(min(1 << 20, left + 1))):
                digest.update(chunk)
                out.write(chunk)
                left -= len(chunk)
    if left != 0 or digest.hexdigest() != sha256:
        raise ValueError(f"artifact {sha256[:12]}: its bytes do not match its size and SHA-256")


def _started(store: Store, job: Job, record: dict[str, Any]) -> None:
    """The job started on a node: the run is running there."""
    node = str(record.get("node") or "")[:255] or None
    ts = float(record.get("ts") or time.time())
    if job.executor == "slurm":  # the job's own word that Slurm runs it
        job_store.set_fields(store, job.run_id, node=node, slurm_state="RUNNING", slurm_reason=None)
    else:
        job_store.set_fields(store, job.run_id, node=node)
    run_store.transition(
        store,
        job.run_id,
        RunStatus.RUNNING,
        expect=RunStatus.QUEUED,
        event_message=f"run {job.run_id} running on {node} (Slurm job {job.job_id})",
        started_at=ts,
        heartbeat_at=ts,
        message=None,
        hostname=remote_hostname(node),
    )


def remote_hostname(node: str | None) -> str:
    """What a job's run records as its host: never this machine's name, so that
    liveness judges it by its heartbeat (the job's samples, Slurm's word), not
    by a local pid."""
    return f"slurm:{node or '?'}"


def _finish(store: Store, job: Job, record: dict[str, Any]) -> None:
    """The job's own outcome, inside the transaction that consumes its record."""
    status = record.get("status")
    if status not in _FINISHED_BY_JOB and status != SIGNALLED:
        status = "failed"
    code = record.get("code")
    message = record.get("message")
    ts = record.get("ts")
    end = float(ts) if isinstance(ts, (int, float)) else time.time()
    fields: dict[str, Any] = {
        "exit_code": code if type(code) is int else None,
        "message": str(message)[:2000] if message else None,
        "ended_at": end,
        "heartbeat_at": end,
        "started_at": run_store.IfNull(end),
    }
    for key in ("cpu_time_s", "max_rss_bytes"):
        value = record.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value):
            fields[key] = int(value) if key == "max_rss_bytes" else float(value)
    if status == SIGNALLED:
        # Stopped by the scheduler (a cancel, a time limit, a preemption): the
        # scheduler's state says which, so the outcome is left to its poll.
        fields.pop("started_at")
        run_store.update(store, job.run_id, expect=(RunStatus.QUEUED, RunStatus.RUNNING), **fields)
        return
    if job.executor == "slurm":
        # What Slurm will say of a batch script that exits so (its exit is the job's).
        job_store.set_fields(
            store, job.run_id, slurm_state="COMPLETED" if code == 0 else "FAILED", slurm_reason=None
        )
    run_store.transition(
        store,
        job.run_id,
        status,
        expect=(RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.LOST),
        **fields,
    )


def _copy_log(source: Path, run_id: int) -> None:
    """Append the job's new output to the run's log (the local copy `run logs`
    reads); the copy's size is how far the job's log has been copied."""
    try:
        size = source.stat().st_size
    except OSError:
        return
    target = paths.run_log(run_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    done = target.stat().st_size if target.exists() else 0
    if size <= done:
        return
    with open(source, "rb") as src, open(target, "ab") as out:
        src.seek(done)
        shutil.copyfileobj(src, out, 1 << 20)
