"""Dataset versions: a file registered by the SHA-256 of its content, with its
shape; the same content twice is one version."""

from __future__ import annotations

import codecs
import csv
import gzip
from pathlib import Path
from typing import Any

from workbench.core.errors import UsageError
from workbench.core.files import sha256_file
from workbench.store import Store, datasets
from workbench.store.datasets import DatasetVersion

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
    return sha256_file(path)


def shape_of(path: Path, fmt: str) -> tuple[int, list[str]]:
    """Rows and column names without building the table: line counting at C speed,
    unless quotes could hide newlines inside fields, then a real CSV parse.
    ValueError for CSV text that no reader would take: no header, NUL bytes, or
    bytes that are not UTF-8."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(path)
        return meta.metadata.num_rows, list(meta.schema_arrow.names)
    opener = gzip.open if fmt == "csv.gz" else open
    text = codecs.getincrementaldecoder("utf-8")()  # checks every byte is UTF-8
    with opener(path, "rb") as fh:
        first = fh.readline()
        _check_text(text, first, 0, final=False)
        if not first:
            raise ValueError("it is empty (0 bytes)")
        header = next(csv.reader([first.decode("utf-8-sig")]), [])
        if not any(name.strip() for name in header):
            raise ValueError("its first line is empty; expected the column names")
        lines, quoted, last, offset = 0, False, b"\n", len(first)
        while chunk := fh.read(CHUNK):
            _check_text(text, chunk, offset, final=False)
            lines += chunk.count(b"\n")
            quoted = quoted or b'"' in chunk
            last = chunk[-1:]
            offset += len(chunk)
        _check_text(text, b"", offset, final=True)
    if quoted:
        import pyarrow.csv as pc

        return pc.read_csv(path).num_rows, header
    return lines + (last != b"\n"), header


def _check_text(
    decoder: codecs.IncrementalDecoder, data: bytes, offset: int, *, final: bool
) -> None:
    if b"\0" in data:
        at = offset + data.index(b"\0")
        raise ValueError(f"it holds binary data (a NUL byte at offset {at}), not CSV text")
    if data.isascii() and not decoder.getstate()[0]:
        return  # ASCII is UTF-8; checked at C speed, nothing left over from the last chunk
    try:
        decoder.decode(data, final=final)
    except UnicodeDecodeError as exc:
        # exc.object: the bytes a previous chunk left undecoded, then `data`.
        at = offset - (len(exc.object) - len(data)) + exc.start
        raise ValueError(
            f"it is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {at});"
            " save it as UTF-8"
        ) from None


def register_version(
    store: Store,
    project_id: int,
    path: Path,
    shape: tuple[int, list[str]] | None = None,
    *,
    sha256: str | None = None,
) -> DatasetVersion:
    """Register `path` as a version of the project's data (idempotent by content).

    An unchanged file (same path, size and mtime as a known version) is not
    hashed again; `shape` (rows, columns) saves reading a table the caller has,
    and `sha256` hashing bytes the caller has just read (`reading.Batch`).
    """
    path = path.expanduser().resolve()
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    fmt = file_format(path)
    stat = path.stat()
    known = datasets.unchanged(store, project_id, str(path), stat.st_size, stat.st_mtime_ns)
    if known:
        return known
    sha256 = sha256 or sha256_of(path)
    same = datasets.by_sha256(store, project_id, sha256)
    if same:
        return same
    try:
        rows, columns = shape or shape_of(path, fmt)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read it as {fmt}: {exc}") from exc
    return datasets.add(
        store,
        project_id,
        sha256=sha256,
        path=str(path),
        fmt=fmt,
        rows=rows,
        columns=columns,
        size_bytes=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        event=f"data version {sha256[:12]} ({path.name}, {rows} rows)",
    )


def register(
    store: Store,
    project_id: int,
    path: Path,
    shape: tuple[int, list[str]] | None = None,
    *,
    profile: bool = True,
) -> dict[str, Any]:
    """`register_version` as the JSON document `data add --json` prints.

    With `profile` (`data add`, the watcher's intake), the version's drift profile
    is computed and stored now, unless it is stored already, so that checking
    drift against it later does not read and summarise the file again
    (`workbench.data.profiles`)."""
    version = register_version(store, project_id, path, shape)
    if profile:
        from workbench.data import profiles

        profiles.ensure(version.sha256, path.expanduser().resolve())
    return version.as_dict()


def list_versions(store: Store, project_id: int) -> list[dict[str, Any]]:
    """A project's versions, newest first, each with `runs`: how many used it."""
    return [v.as_dict() for v in datasets.for_project(store, project_id)]


def link_run(store: Store, run_id: int, version_id: int, role: str = "train") -> None:
    datasets.link_run(store, run_id, version_id, role)


def run_datasets(store: Store, run_id: int) -> list[dict[str, Any]]:
    """The versions a run used, each with its `role`."""
    return [v.as_dict() for v in datasets.for_run(store, run_id)]
