"""Dataset versions: a file registered by the SHA-256 of its content, with its
shape; the same content twice is one version."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import time
from pathlib import Path
from typing import Any

from workbench.core.errors import UsageError
from workbench.store import Store

CHUNK = 1 << 20


def file_format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith(".csv.gz"):
        return "csv.gz"
    if name.endswith(".csv"):
        return "csv"
    raise UsageError(f"{path}: expected a .csv, .csv.gz or .parquet file")


def sha256_of(path: Path) -> str:
    """Streamed, so a file of any size is hashed in constant memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def shape_of(path: Path, fmt: str) -> tuple[int, list[str]]:
    """Rows and column names without building the table: line counting at C speed,
    unless quotes could hide newlines inside fields, then a real CSV parse."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(path)
        return meta.metadata.num_rows, list(meta.schema_arrow.names)
    opener = gzip.open if fmt == "csv.gz" else open
    with opener(path, "rb") as fh:
        header = next(csv.reader([fh.readline().decode("utf-8-sig")]), [])
        lines, quoted, last = 0, False, b"\n"
        while chunk := fh.read(CHUNK):
            lines += chunk.count(b"\n")
            quoted = quoted or b'"' in chunk
            last = chunk[-1:]
    if quoted:
        import pyarrow.csv as pc

        return pc.read_csv(path).num_rows, header
    return lines + (last != b"\n"), header


def register(
    store: Store, project_id: int, path: Path, shape: tuple[int, list[str]] | None = None
) -> dict[str, Any]:
    """Register `path` as a version of the project's data (idempotent by content).

    An unchanged file (same path, size and mtime as a known version) is not
    hashed again; `shape` (rows, columns) saves reading a table the caller has.
    """
    path = path.expanduser().resolve()
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    fmt = file_format(path)
    stat = path.stat()
    known = store.row(
        "SELECT * FROM dataset_versions WHERE project_id = ? AND path = ? AND size_bytes = ?"
        " AND mtime_ns = ?",
        (project_id, str(path), stat.st_size, stat.st_mtime_ns),
    )
    if known:
        return _decode(known)
    sha256 = sha256_of(path)
    same = store.row(
        "SELECT * FROM dataset_versions WHERE project_id = ? AND sha256 = ?", (project_id, sha256)
    )
    if same:
        return _decode(same)
    try:
        rows, columns = shape or shape_of(path, fmt)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read it as {fmt}: {exc}") from exc
    now = time.time()
    with store.write() as conn:
        conn.execute(
            "INSERT OR IGNORE INTO dataset_versions (project_id, sha256, path, format, rows,"
            " columns, size_bytes, mtime_ns, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                project_id,
                sha256,
                str(path),
                fmt,
                rows,
                json.dumps(columns),
                stat.st_size,
                stat.st_mtime_ns,
                now,
            ),
        )
        store.add_event(
            "data.added",
            f"data version {sha256[:12]} ({path.name}, {rows} rows)",
            ts=now,
            project_id=project_id,
            data={"sha256": sha256},
        )
    return _decode(
        store.row(  # type: ignore[arg-type]
            "SELECT * FROM dataset_versions WHERE project_id = ? AND sha256 = ?",
            (project_id, sha256),
        )
    )


def list_versions(store: Store, project_id: int) -> list[dict[str, Any]]:
    rows = store.rows(
        """SELECT v.*, (SELECT COUNT(*) FROM run_datasets rd WHERE rd.dataset_version_id = v.id)
               AS runs
           FROM dataset_versions v WHERE v.project_id = ? ORDER BY v.id DESC""",
        (project_id,),
    )
    return [_decode(r) for r in rows]


def link_run(store: Store, run_id: int, version_id: int, role: str = "train") -> None:
    with store.write() as conn:
        conn.execute(
            "INSERT OR IGNORE INTO run_datasets (run_id, dataset_version_id, role)"
            " VALUES (?, ?, ?)",
            (run_id, version_id, role),
        )


def run_datasets(store: Store, run_id: int) -> list[dict[str, Any]]:
    return [
        _decode(r)
        for r in store.rows(
            "SELECT v.*, rd.role FROM run_datasets rd JOIN dataset_versions v"
            " ON v.id = rd.dataset_version_id WHERE rd.run_id = ? ORDER BY v.id",
            (run_id,),
        )
    ]


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["columns"] = json.loads(out["columns"])
    return out
