"""The prediction log: requests a served model answered, as per-day Parquet files
under the project, written off the request path.

Layout: `<project>/.workbench/predictions/YYYY-MM-DD/part-<ms>-<pid>-<n>.parquet`
(UTC days). The log lives with the project, not in the store: it is the
project's data (inputs seen in production), it is bounded by the project's own
`[monitor]` settings, any Parquet tool reads it, and a million requests in the
store's SQLite file would slow every other query and swell every backup.

One row per predicted row: `ts` (epoch seconds), `request_id`, `row` (its
place in the request), `source` ("serve" or "predict"), `model`
(project@version), `version`, `status` (HTTP status; 200 for batch
predictions), `latency_ms` (of the whole request), `error`, `prediction`
(text for a classifier, a number for a regressor), `proba:<class>` and
`input:<feature>` columns. A refused request is one row with no inputs.

`PredictionLog.record` only puts the record on a bounded queue: a full queue
drops the record and counts it, so a slow disk never slows or blocks a
request. A writer thread turns records into row groups of a Parquet file,
which is renamed into place (`part-*.parquet`) after `roll_seconds` or on
`close`, so readers only ever see whole files. After each file, day folders
older than `retention_days` are deleted and, while the log is over `max_mb`,
its oldest parts.

That thread serves `predict --log`, where no one waits on a request. `serve`
writes with a process of its own (`monitor.writer`): the thread's conversions
hold the GIL, and requests answered meanwhile waited for it.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import queue
import random
import shutil
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.config.monitor import MonitorConfig

log = logging.getLogger("workbench.monitor")

LOG_FOLDER = Path(".workbench") / "predictions"
INPUT_PREFIX = "input:"
PROBA_PREFIX = "proba:"
META_COLUMNS = (
    "ts",
    "request_id",
    "row",
    "source",
    "model",
    "version",
    "status",
    "latency_ms",
    "error",
    "prediction",
)
QUEUE_SIZE = 10_000  # records waiting for the writer; beyond it they are dropped
FLUSH_ROWS = 5_000  # a row group at most this many rows ...
FLUSH_SECONDS = 1.0  # ... or this old
ROLL_SECONDS = 60.0  # a part file is closed and renamed into place this often
MAX_ERROR_CHARS = 300


def log_folder(project_root: Path) -> Path:
    """Where a project's prediction log lives."""
    return project_root / LOG_FOLDER


def day_name(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%d")


@dataclass
class LogStats:
    """What the writer did, for the shutdown note and the tests."""

    received: int = 0  # records handed to `record`
    sampled_out: int = 0  # left out by sample_rate
    dropped: int = 0  # the queue was full
    written_rows: int = 0
    parts: int = 0
    evicted_parts: int = 0  # deleted to stay under max_mb or retention
    failures: int = 0  # row groups the writer could not write
    last_error: str | None = None
    paths: list[str] = field(default_factory=list)


class PredictionLog:
    """A bounded, non-blocking request log for one project (see the module)."""

    def __init__(
        self,
        project_root: Path,
        settings: MonitorConfig,
        *,
        version: int | None = None,
        source: str = "serve",
        queue_size: int = QUEUE_SIZE,
        flush_seconds: float = FLUSH_SECONDS,
        roll_seconds: float = ROLL_SECONDS,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.folder = log_folder(project_root)
        self.settings = settings
        self.version = version
        self.source = source
        self.flush_seconds = flush_seconds
        self.roll_seconds = roll_seconds
        self.stats = LogStats()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._rng = rng
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._open: _OpenPart | None = None
        self._seq = 0
        self._closing = threading.Event()

    # -- the request side: never blocks ---------------------------------------------

    def start(self) -> PredictionLog:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def sampled(self) -> bool:
        """Whether the next request is logged (`[monitor] sample_rate`)."""
        rate = self.settings.sample_rate
        return rate >= 1.0 or self._rng() < rate

    def record(self, event: dict[str, Any]) -> None:
        """Hand one answered request to the writer; drops it (counted) when the
        queue is full or sampling leaves it out. Never blocks, never raises."""
        self.stats.received += 1
        # A batch chunk comes with its rows already sampled ("rows").
        if event.get("rows") is None and not self.sampled():
            self.stats.sampled_out += 1
            return
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.stats.dropped += 1

    def close(self, timeout: float = 30.0) -> LogStats:
        """Write what is queued and close the open part (on shutdown)."""
        self._closing.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return self.stats

    # -- the writer thread ----------------------------------------------------------

    def _run(self) -> None:
        # The writer wakes once per flush interval and takes the whole queue, rather
        # than waking for each record: a thread woken per request would contend for
        # the GIL with the server's event loop on every request.
        try:
            self.enforce_limits()
        except OSError as exc:
            self._failed(exc)
        while True:
            closing = self._closing.wait(self.flush_seconds)
            batch: list[dict[str, Any]] = []
            rows = 0
            for record in self._drain():
                batch.append(record)
                rows += _rows_of(record)
                if rows >= FLUSH_ROWS:
                    self._flush(batch)
                    batch, rows = [], 0
            self._flush(batch)
            if closing:
                self._roll()
                return
            if self._open is not None and time.monotonic() - self._open.opened >= self.roll_seconds:
                self._roll()

    def _drain(self) -> list[dict[str, Any]]:
        taken = []
        while True:
            try:
                taken.append(self._queue.get_nowait())
            except queue.Empty:
                return taken

    def _flush(self, pending: list[Any]) -> None:
        if not pending:
            return
        try:
            frame = self._frame(pending)
            for day, part in frame.groupby(frame["ts"].map(day_name), sort=True):
                self._write(str(day), part)
        except Exception as exc:  # noqa: BLE001 - a broken write must not stop the log
            self._failed(exc)

    def _frame(self, pending: list[Any]) -> Any:
        return records_frame(pending, self.source, self.version)

    def _write(self, day: str, frame: Any) -> None:
        """Append `frame` as a row group of the day's open part (a new part when the
        day or the columns changed)."""
        import pyarrow as pa

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._open is not None and self._open.day == day:
            table = _conform(table, self._open.schema)
        if self._open is not None and (self._open.day != day or table is None):
            self._roll()
            table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._open is None:
            self._open = self._new_part(day, table.schema)
        self._open.writer.write_table(table)
        self._open.rows += table.num_rows
        self.stats.written_rows += table.num_rows

    def write_part(self, day: str, frame: Any) -> None:
        """Write `frame` and close its part at once (tests and benchmarks)."""
        self._write(day, frame)
        self._roll()

    def _new_part(self, day: str, schema: Any) -> _OpenPart:
        import pyarrow.parquet as pq

        folder = self.folder / day
        folder.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        name = f"part-{int(time.time() * 1000)}-{os.getpid()}-{self._seq}.parquet"
        temporary = folder / f".{name}.inprogress"
        writer = pq.ParquetWriter(temporary, schema, compression="zstd")
        return _OpenPart(day, folder / name, temporary, schema, writer, time.monotonic())

    def _roll(self) -> None:
        """Close the open part and rename it into place, then apply the limits."""
        part, self._open = self._open, None
        if part is None:
            return
        try:
            part.writer.close()
            os.replace(part.temporary, part.path)
            self.stats.parts += 1
            self.stats.paths.append(str(part.path))
            self.enforce_limits()
        except OSError as exc:
            self._failed(exc)

    def enforce_limits(self, now: float | None = None) -> None:
        """Delete day folders past `retention_days`, then the oldest parts while the
        log is larger than `max_mb`."""
        now = time.time() if now is None else now
        oldest_kept = day_name(now - (self.settings.retention_days - 1) * 86_400)
        for day in sorted(p for p in self.folder.iterdir() if _is_day(p)):
            if day.name < oldest_kept:
                self.stats.evicted_parts += sum(1 for _ in day.glob("part-*.parquet"))
                shutil.rmtree(day, ignore_errors=True)
        parts = list(iter_parts(self.folder))
        total = sum(_size(p) for p in parts)
        for part in parts:  # oldest first
            if total <= self.settings.max_bytes:
                break
            total -= _size(part)
            with contextlib.suppress(OSError):
                part.unlink()
                self.stats.evicted_parts += 1

    def _failed(self, exc: BaseException) -> None:
        self.stats.failures += 1
        self.stats.last_error = f"{type(exc).__name__}: {exc}"
        if self.stats.failures == 1:
            log.warning("the prediction log could not write: %s", self.stats.last_error)


@dataclass
class _OpenPart:
    day: str
    path: Path
    temporary: Path
    schema: Any
    writer: Any
    opened: float
    rows: int = 0


def _conform(table: Any, schema: Any) -> Any:
    """`table` in the open part's schema (its missing columns as nulls), or None
    when it has columns or types the part has not: then a new part begins."""
    import pyarrow as pa

    if table.schema.equals(schema):
        return table
    arrays = []
    for name, kind in zip(schema.names, schema.types, strict=True):
        if name in table.column_names:
            column = table.column(name)
            if column.type != kind and not (column.null_count == len(column)):
                return None
            arrays.append(column.cast(kind) if column.type != kind else column)
        else:
            arrays.append(pa.nulls(table.num_rows, kind))
    if set(table.column_names) - set(schema.names):
        return None
    return pa.Table.from_arrays(arrays, schema=schema)


def _rows_of(record: dict[str, Any]) -> int:
    frame = record.get("frame")
    return 1 if frame is None else max(len(frame), 1)


def _is_day(path: Path) -> bool:
    name = path.name
    return path.is_dir() and len(name) == 10 and name[4] == "-" and name[7] == "-"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def iter_parts(folder: Path) -> Iterator[Path]:
    """Every whole part of a prediction log, oldest first (by day, then name)."""
    if not folder.is_dir():
        return
    for day in sorted(p for p in folder.iterdir() if _is_day(p)):
        yield from sorted(day.glob("part-*.parquet"), key=_part_order)


def _part_order(path: Path) -> tuple[int, str]:
    pieces = path.name.split("-")
    return (int(pieces[1]) if len(pieces) > 1 and pieces[1].isdigit() else 0, path.name)


# -- records to rows ---------------------------------------------------------------


def records_frame(records: list[dict[str, Any]], source: str, version: int | None) -> Any:
    """The log rows of answered requests (the module says which columns).

    Built column by column from numpy blocks, one per request, not cell by cell:
    the writer turns a second of traffic into rows in a few milliseconds."""
    import numpy as np

    meta: dict[str, list[Any]] = {name: [] for name in META_COLUMNS if name != "prediction"}
    inputs: list[tuple[list[str], Any, int]] = []  # (columns, values, first row)
    probas: list[tuple[list[str], Any, int]] = []
    predictions: list[Any] = []
    total = 0
    classifier = False
    for record in records:
        frame = record.get("frame")
        n = len(frame) if frame is not None and len(frame) else 1
        rows = record.get("rows")
        _add_meta(meta, record, n, source, version)
        if rows is not None:
            meta["row"][-n:] = [int(r) for r in rows]
        classes = record.get("classes")
        classifier = classifier or bool(classes)
        predicted = record.get("predictions")
        if predicted is None:
            predictions.append(np.full(n, None, dtype=object))
        else:
            predictions.append(np.asarray(predicted).astype(object).reshape(-1))
        if frame is not None and len(frame):
            inputs.append(([str(c) for c in frame.columns], frame.to_numpy(dtype=object), total))
        proba = record.get("probabilities")
        if proba is not None and classes:
            probas.append(([str(c) for c in classes], np.asarray(proba, dtype=float), total))
        total += n
    columns: list[dict[str, Any]] = []
    for blocks, empty in ((inputs, None), (probas, np.nan)):
        filled: dict[str, Any] = {}
        for names, values, first in blocks:
            for j, name in enumerate(names):
                column = filled.get(name)
                if column is None:
                    kind = object if empty is None else float
                    column = filled[name] = np.full(total, empty, dtype=kind)
                column[first : first + len(values)] = values[:, j]
        columns.append(filled)
    predicted_all = np.concatenate(predictions) if predictions else np.empty(0, dtype=object)
    return _assemble(meta, predicted_all, classifier, columns[0], columns[1])


def _add_meta(
    meta: dict[str, list[Any]], record: dict[str, Any], n: int, source: str, version: Any
) -> None:
    """The request's columns, once for each of its `n` rows."""
    error = record.get("error")
    meta["ts"] += [float(record["ts"])] * n
    meta["request_id"] += [str(record["request_id"])] * n
    meta["row"] += range(n)
    meta["source"] += [record.get("source") or source] * n
    meta["model"] += [record.get("model")] * n
    meta["version"] += [record.get("version", version)] * n
    meta["status"] += [int(record["status"])] * n
    meta["latency_ms"] += [float(record["latency_s"]) * 1000.0] * n
    meta["error"] += [None if error is None else str(error)[:MAX_ERROR_CHARS]] * n


def _assemble(
    meta: dict[str, list[Any]],
    predicted: Any,
    classifier: bool,
    inputs: dict[str, Any],
    probas: dict[str, Any],
) -> Any:
    """The log's DataFrame from its columns: the one place that fixes each column's
    type, whichever way the rows were gathered (`records_frame` from a thread's
    request objects, `wire_frame` from the bytes a writer process received)."""
    import pandas as pd

    out = pd.DataFrame(meta)
    out["version"] = pd.array(out["version"], dtype="Int64")
    out["status"] = out["status"].astype("int16")
    out["row"] = out["row"].astype("int32")
    out["error"] = out["error"].astype("string")
    if classifier:
        out["prediction"] = pd.array(
            [None if v is None else str(v) for v in predicted.tolist()], dtype="string"
        )
    else:
        out["prediction"] = pd.to_numeric(pd.Series(predicted), errors="coerce").astype(
            "float64"
        )
    for name in sorted(inputs):
        out[f"{INPUT_PREFIX}{name}"] = _uniform(pd.Series(inputs[name]))
    for name in sorted(probas):
        out[f"{PROBA_PREFIX}{name}"] = probas[name]
    return out


def wire_frame(records: list[WireRecord], source: str, version: int | None) -> Any:
    """The log rows of requests as a writer process receives them (`WireRecord`):
    the request body is decoded again (it was accepted, so it decodes as it did
    for the model) and the predictions are read back from the answer's JSON. The
    rows and their types are those `records_frame` gives for the same requests."""
    import json

    import numpy as np

    from workbench.models.bundle_runtime import decode_body, rows_from_json

    meta: dict[str, list[Any]] = {name: [] for name in META_COLUMNS if name != "prediction"}
    inputs: dict[str, list[Any]] = {}
    probas: dict[str, list[float]] = {}
    predicted: list[Any] = []
    total = 0
    classifier = False
    for record in records:
        rows: list[dict[str, Any]] = []
        answer: dict[str, Any] = {}
        if record.status < 400 and record.body and record.response:
            try:
                rows = _typed_as_a_frame(rows_from_json(decode_body(record.body)))
                answer = json.loads(record.response)
                if len(answer["predictions"]) != len(rows):
                    raise ValueError("predictions and rows differ in number")
            except (ValueError, TypeError, KeyError, RecursionError):
                rows, answer = [], {}  # logged without its inputs rather than not at all
        n = len(rows) or 1
        event = {
            "ts": record.ts,
            "request_id": record.request_id,
            "model": record.model,
            "status": record.status,
            "latency_s": record.latency_s,
            "error": record.error,
        }
        _add_meta(meta, event, n, source, version)
        classifier = classifier or record.classifier
        predicted += answer["predictions"] if answer else [None] * n
        for row in rows:
            for name, value in row.items():
                column = inputs.get(str(name))
                if column is None:
                    column = inputs[str(name)] = [None] * total
                elif len(column) < total:
                    column += [None] * (total - len(column))
                column.append(value)
            total += 1
        if not rows:
            total += 1
        classes, proba = answer.get("classes"), answer.get("probabilities")
        if classes and isinstance(proba, list) and len(proba) == n:
            for j, label in enumerate(classes):
                column_ = probas.get(str(label))
                if column_ is None:
                    column_ = probas[str(label)] = [np.nan] * (total - n)
                elif len(column_) < total - n:
                    column_ += [np.nan] * (total - n - len(column_))
                column_ += [float(p[j]) for p in proba]
    for name, column in inputs.items():
        column += [None] * (total - len(column))
    for name, column_ in probas.items():
        column_ += [np.nan] * (total - len(column_))
    values = np.empty(total, dtype=object)
    values[:] = predicted
    objects = {}
    for name, column in inputs.items():
        cells = np.empty(total, dtype=object)
        cells[:] = column
        objects[name] = cells
    return _assemble(
        meta,
        values,
        classifier,
        objects,
        {name: np.asarray(column_, dtype=float) for name, column_ in probas.items()},
    )


def _typed_as_a_frame(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows' values as the request's DataFrame held them: in a column of numbers
    with a float or a gap, pandas made every number a float (7 became 7.0, which
    shows when the column is logged as text). One row keeps its values as sent."""
    if len(rows) < 2:
        return rows
    for name in {name for row in rows for name in row}:
        values = [row.get(name) for row in rows]
        numbers = [v for v in values if v is not None]
        if (
            numbers
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers)
            and (len(numbers) < len(values) or any(isinstance(v, float) for v in numbers))
        ):
            for row in rows:
                if isinstance(row.get(name), int):
                    row[name] = float(row[name])
    return rows


@dataclass(frozen=True, slots=True)
class WireRecord:
    """One answered request as the serving process sends it to the log's writer
    process: the meta columns, and the request and answer as the bytes they were."""

    ts: float
    latency_s: float
    status: int
    classifier: bool
    request_id: str
    model: str | None
    error: str | None
    body: bytes
    response: bytes


def _uniform(values: Any) -> Any:
    """One type per column, whatever each request sent: numbers as float64 (so
    parts concatenate), anything else as text."""
    import pandas as pd

    present = values.dropna()
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return pd.to_numeric(values, errors="coerce").astype("float64")
    return values.map(lambda v: None if _missing(v) else str(v)).astype("string")


def _missing(value: Any) -> bool:
    # A null sent as JSON null arrives as None; one read from a file as NaN or NA.
    import pandas as pd

    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


# -- reading -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Damaged:
    """A part of the log that could not be read, and why (it is left in place)."""

    path: str
    reason: str


def read_log(
    folder: Path,
    since: float | None = None,
    columns: list[str] | None = None,
    *,
    skip: Collection[str] = (),
    request_ids: Collection[str] | None = None,
) -> tuple[Any, list[Damaged]]:
    """The logged rows (a DataFrame, sorted by time) of every whole part, and the
    parts that could not be read. Parts are never changed or deleted here: a
    damaged one is reported and skipped, so nothing is lost to a reader.

    Only `columns` (all when None) less `skip` are read: Parquet reads each column
    apart, and the text columns cost the most to read and convert. With
    `request_ids`, the `request_id` column keeps only those ids (missing
    elsewhere): a label join needs no more, and a million ids as Python text
    would cost more than the rest of the log."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    tables, damaged = [], []
    first_day = day_name(since) if since is not None else None
    wanted = None if request_ids is None else pa.array(list(request_ids), type=pa.large_string())
    for part in iter_parts(folder):
        if first_day is not None and part.parent.name < first_day:
            continue
        try:
            names = pq.read_schema(part).names
            missing = [c for c in ("ts", "request_id", "row", "status") if c not in names]
            if missing:
                raise ValueError(f"not a prediction log part (no {', '.join(missing)} column)")
            chosen = [
                c for c in names if (columns is None or c in columns) and c not in skip
            ]
            table = pq.read_table(part, columns=chosen)
            if wanted is not None and "request_id" in chosen:
                ids = table.column("request_id").cast(pa.large_string())
                kept = pc.if_else(pc.is_in(ids, value_set=wanted), ids, None)
                table = table.set_column(chosen.index("request_id"), "request_id", kept)
        except (OSError, ValueError, pa.ArrowException) as exc:
            reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
            damaged.append(Damaged(str(part), reason))
            continue
        tables.append(table)
    if not tables:
        return pd.DataFrame({"ts": pd.Series(dtype="float64")}), damaged
    try:
        combined = pa.concat_tables(tables, promote_options="permissive")
    except pa.ArrowException:
        # Columns whose types cannot be unified (a feature once sent as numbers, once
        # as text): pandas keeps them as objects instead.
        combined = None
    if combined is not None:
        frame = combined.to_pandas()
    else:
        frame = pd.concat([t.to_pandas() for t in tables], ignore_index=True)
    if since is not None:
        frame = frame[frame["ts"] >= since]
    if frame["ts"].is_monotonic_increasing:  # parts are written in time order: no reshuffle
        return frame.reset_index(drop=True), damaged
    return frame.sort_values("ts", kind="stable").reset_index(drop=True), damaged
