"""Reading a data file for checking: every way a file can be unreadable becomes a
`Malformed` reason a person can act on, never a traceback. Files are only read."""

from __future__ import annotations

import codecs
import gzip
import zlib
import contextlib
import hashlib
import os
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.data.versions import file_format

SNIFF_BYTES = 64 * 1024
KEPT_TABLES = 1  # checked tables kept in the cache: the batch just validated


class Malformed(Exception):
    """The file cannot be read as a table; `check` names what failed."""

    def __init__(self, check: str, message: str) -> None:
        super().__init__(message)
        self.check = check
        self.message = message


def read_checked(
    path: Path,
    expected_columns: list[str] | None = None,
    *,
    keep: bool = False,
    reuse: bool = False,
) -> pd.DataFrame:
    """The file as a DataFrame (strings kept as strings), or `Malformed`.

    `keep` stores the table read from a CSV in the cache (`checked_tables`), keyed
    by the file's path, size, modification time and inode; `reuse` reads it back
    from there when the file is unchanged, instead of parsing and checking the
    text again. `data validate` keeps, `data drift` reuses: a batch checked for
    drift right after its validation is read once."""
    if reuse and path.suffix.lower() != ".parquet":
        cached = _cached_table(path)
        if cached is not None:
            return _unique_columns(path, _frame_of(path, cached, expected_columns))
    if not path.exists():
        raise Malformed("readable", f"{path}: no such file")
    if path.is_dir():
        raise Malformed("readable", f"{path} is a directory, not a data file")
    try:
        fmt = file_format(path)
    except Exception as exc:
        raise Malformed("format", str(exc)) from exc
    if path.stat().st_size == 0:
        raise Malformed("empty", f"{path.name} is empty (0 bytes)")
    if fmt == "parquet":
        return _unique_columns(path, _read_parquet(path))
    # The key is taken before reading: a file changed while it is read is kept
    # under its old identity, which no later read matches.
    key = _table_key(path) if keep else None
    raw = _opener(path, fmt)
    _check_text(path, raw, fmt)
    return _unique_columns(path, _read_csv(path, fmt, expected_columns, key))


def _unique_columns(path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    """Refuse a header that names a column twice: every check reads a column by name."""
    twice = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
    if twice:
        raise Malformed(
            "header", f"{path.name} names column(s) {', '.join(twice)} more than once"
        )
    return frame


def _opener(path: Path, fmt: str):
    return (lambda: gzip.open(path, "rb")) if fmt == "csv.gz" else (lambda: open(path, "rb"))


def _check_text(path: Path, open_raw, fmt: str) -> None:
    """Binary content and bad encodings, found by streaming through the file once."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = line = 0
    try:
        with open_raw() as fh:
            first = True
            while chunk := fh.read(1 << 20):
                if first and b"\x00" in chunk[:SNIFF_BYTES]:
                    raise Malformed(
                        "text", f"{path.name} holds binary content (NUL bytes), not CSV text"
                    )
                first = False
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    where = offset + exc.start
                    line_no = line + chunk[: exc.start].count(b"\n") + 1
                    raise Malformed(
                        "encoding",
                        f"{path.name} is not UTF-8 text: byte 0x{chunk[exc.start]:02x} at offset"
                        f" {where} (line {line_no}); save it as UTF-8",
                    ) from None
                offset += len(chunk)
                line += chunk.count(b"\n")
            decoder.decode(b"", final=True)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise Malformed(
            "truncated", f"{path.name}: the gzip stream is damaged or cut short ({exc})"
        ) from None
    except UnicodeDecodeError:
        raise Malformed(
            "encoding", f"{path.name} ends in the middle of a UTF-8 character"
        ) from None


def _read_csv(
    path: Path, fmt: str, expected: list[str] | None, keep: str | None = None
) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.csv as pc

    try:
        table = pc.read_csv(
            path,
            convert_options=pc.ConvertOptions(strings_can_be_null=True),
            memory_pool=_memory_pool(),
        )
    except pa.ArrowInvalid as exc:
        text = str(exc)
        if "Expected" in text and "columns" in text:
            raise Malformed(
                "ragged",
                f"{path.name} has rows with the wrong number of fields"
                f" ({text.removeprefix('CSV parse error: ')})",
            ) from None
        if "Empty CSV file" in text:
            raise Malformed("empty", f"{path.name} has no header and no rows") from None
        raise Malformed("parse", f"{path.name} is not valid CSV: {text}") from None
    except (EOFError, zlib.error, OSError) as exc:
        raise Malformed("truncated", f"{path.name} is damaged or cut short ({exc})") from None
    if keep is not None:
        _keep_table(keep, table)
    return _frame_of(path, table, expected)


def _frame_of(path: Path, table: Any, expected: list[str] | None) -> pd.DataFrame:
    frame = table.to_pandas(memory_pool=_memory_pool())
    header = list(frame.columns)
    if expected and len(expected) > 1 and len(header) == 1:
        for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
            if sep in header[0]:
                raise Malformed(
                    "delimiter",
                    f"{path.name} seems to be separated by {name}, not commas: its header is one"
                    f" column ({header[0][:60]!r}); save it as comma-separated CSV",
                )
    if len(frame) == 0:
        raise Malformed("empty", f"{path.name} has a header but no rows")
    return frame


def _memory_pool():
    """The C allocator's pool for reading a whole table. Arrow's default (mimalloc)
    hands freshly mapped pages to a large read one by one: on a 238 MiB CSV that
    was 1.3-1.6 s of system time against 0.2-0.4 s with malloc, the same user time
    and the same table (`benchmarks/bench_data_checks.py`)."""
    import pyarrow as pa

    return pa.system_memory_pool()


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        frame = pq.read_table(path).to_pandas()
    except (pa.ArrowInvalid, OSError) as exc:
        raise Malformed("parse", f"{path.name} is not a valid Parquet file: {exc}") from None
    if len(frame) == 0:
        raise Malformed("empty", f"{path.name} has no rows")
    return frame


# --------------------------------------------------------------------------- kept tables


def _table_key(path: Path) -> str | None:
    """What identifies the file's content without reading it (as `register_version`
    trusts an unchanged size and modification time)."""
    try:
        info = path.resolve().stat()
    except OSError:
        return None
    identity = f"{path.resolve()}|{info.st_size}|{info.st_mtime_ns}|{info.st_ino}"
    return hashlib.sha256(identity.encode("utf-8", "surrogateescape")).hexdigest()


def _tables_dir() -> Path:
    from workbench.core.paths import cache_dir

    return cache_dir() / "checked-tables"


def _keep_table(key: str, table: Any) -> None:
    """Write the table as Arrow IPC (what reads back without parsing), keeping only
    the newest `KEPT_TABLES`; a cache that cannot be written is no error."""
    import pyarrow as pa

    folder = _tables_dir()
    with contextlib.suppress(OSError, pa.ArrowException):
        folder.mkdir(parents=True, exist_ok=True)
        kept = sorted(folder.glob("*.arrow"), key=lambda p: p.stat().st_mtime_ns)
        for old in kept[: max(len(kept) - KEPT_TABLES + 1, 0)]:
            old.unlink(missing_ok=True)
        partial = folder / f".{key}.{os.getpid()}.partial"
        with pa.OSFile(str(partial), "wb") as sink, pa.ipc.new_file(sink, table.schema) as out:
            out.write_table(table)
        partial.replace(folder / f"{key}.arrow")


def _cached_table(path: Path) -> Any:
    """The table kept for this unchanged file, or None."""
    import pyarrow as pa

    key = _table_key(path)
    if key is None:
        return None
    cached = _tables_dir() / f"{key}.arrow"
    try:
        with pa.memory_map(str(cached), "r") as source:
            return pa.ipc.open_file(source).read_all()
    except (OSError, pa.ArrowException):
        return None
