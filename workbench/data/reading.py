"""Reading a data file for checking: every way a file can be unreadable becomes a
`Malformed` reason a person can act on, never a traceback. Files are only read.

One read does two things at once, on two threads: the raw bytes are streamed
once to check the text (binary content, UTF-8, a damaged gzip stream) and to
hash them (the SHA-256 that registers the dataset version), while pyarrow parses
the file. Both spend their time outside the GIL, so they overlap with each other
and with whatever the caller imports meanwhile (`start_read`). pandas is not
imported here until a table is turned into a DataFrame."""

from __future__ import annotations

import codecs
import contextlib
import gzip
import hashlib
import io
import os
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from workbench.data.versions import file_format

if TYPE_CHECKING:
    import pandas as pd

SNIFF_BYTES = 64 * 1024
CHUNK = 1 << 20
KEPT_TABLES = 1  # checked tables kept in the cache: the batch just validated

T = TypeVar("T")


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
    return read_batch(path, expected_columns, keep=keep, reuse=reuse).frame


def read_batch(
    path: Path,
    expected_columns: list[str] | None = None,
    *,
    keep: bool = False,
    reuse: bool = False,
) -> Batch:
    """`read_checked`, with the SHA-256 of the bytes read (None for a kept table,
    which was not read from the file)."""
    if reuse and path.suffix.lower() != ".parquet":
        cached = _cached_table(path)
        if cached is not None:
            return Batch(_unique_columns(path, _frame_of(path, cached, expected_columns)), None)
    with start_read(path) as pending:
        return pending.result(expected_columns, keep=keep)


class Batch:
    """A file read and checked: its DataFrame and the SHA-256 of its bytes (None
    when the file changed while it was read: the caller hashes it again)."""

    __slots__ = ("frame", "sha256")

    def __init__(self, frame: pd.DataFrame, sha256: str | None) -> None:
        self.frame = frame
        self.sha256 = sha256


def start_read(path: Path) -> PendingRead:
    """Start reading `path` on threads; `.result(expected)` waits for the table.
    Use it as a context manager: leaving the block waits for the threads, so that
    an error raised meanwhile never leaves a parse running as the process exits."""
    return PendingRead(path)


class PendingRead:
    """A file being read: the text check and hash on one thread, the parse on
    another (see the module's docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fmt = ""
        self._refused: Malformed | None = None
        self._text: _Worker[str] | None = None
        self._parse: _Worker[Any] | None = None
        try:
            self.fmt = _format_of(path)
        except Malformed as exc:
            self._refused = exc
            return
        # Taken before reading and compared after: the hash belongs to these bytes
        # only when the file did not change in between.
        self._identity = _identity(path)
        self._text = _Worker(_check_text, path, self.fmt)
        self._parse = _Worker(_read_parquet if self.fmt == "parquet" else _read_csv, path)

    def __enter__(self) -> PendingRead:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_exc: object) -> None:
        if exc_type is None or not issubclass(exc_type, KeyboardInterrupt):
            self.wait()  # an interrupted command exits now, not when the parse ends

    def wait(self) -> None:
        """Wait for both threads, whatever they found."""
        for worker in (self._text, self._parse):
            if worker is not None:
                worker.thread.join()

    def result(self, expected: list[str] | None = None, *, keep: bool = False) -> Batch:
        """The checked table (`Malformed` when it is not one). `expected`: the
        columns the file should have, to recognise another delimiter; `keep`:
        store the parsed CSV's table for a later `reuse` (`read_checked`)."""
        if self._refused is not None:
            raise self._refused
        assert self._text is not None and self._parse is not None
        # The text is judged first: a file that is not UTF-8 text is reported as
        # such, whatever the parser made of it.
        sha256 = self._text.get()
        table = self._parse.get()
        self._parse.forget()  # the table is not kept alive beside its DataFrame
        if self.fmt == "parquet":
            frame = _parquet_frame(self.path, table)
        else:
            if keep:
                key = _table_key(self.path, self._identity)
                if key is not None:
                    _keep_table(key, table)
            frame = _frame_of(self.path, table, expected)
        unchanged = self._identity is not None and self._identity == _identity(self.path)
        return Batch(_unique_columns(self.path, frame), sha256 if unchanged else None)


class _Worker(Generic[T]):
    """A function run on a daemon thread; `get` waits and returns its result or
    raises what it raised."""

    def __init__(self, function: Callable[..., T], *args: Any) -> None:
        self._value: T | None = None
        self._error: BaseException | None = None
        self.thread = threading.Thread(
            target=self._run, args=(function, *args), name=f"read: {function.__name__}", daemon=True
        )
        self.thread.start()

    def _run(self, function: Callable[..., T], *args: Any) -> None:
        try:
            self._value = function(*args)
        except BaseException as exc:  # noqa: BLE001 - raised again by get() on the caller's thread
            self._error = exc

    def get(self) -> T:
        self.thread.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]

    def forget(self) -> None:
        self._value = None


def _format_of(path: Path) -> str:
    """The file's format, after the refusals that need no reading."""
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
    return fmt


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_size, info.st_mtime_ns, info.st_ino


def _unique_columns(path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    """Refuse a header that names a column twice: every check reads a column by name."""
    twice = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
    if twice:
        raise Malformed(
            "header", f"{path.name} names column(s) {', '.join(twice)} more than once"
        )
    return frame


class _Hashing(io.RawIOBase):
    """A raw file that hashes every byte read through it: a gzip file's SHA-256 is
    of its compressed bytes, which the gzip reader pulls through this."""

    def __init__(self, raw: io.BufferedReader, hasher: Any) -> None:
        self._raw = raw
        self._hasher = hasher

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._raw.readinto(buffer)
        if n:
            self._hasher.update(memoryview(buffer)[:n])
        return n or 0


def _check_text(path: Path, fmt: str) -> str:
    """The SHA-256 of the file's bytes, and for CSV the text checked on the way:
    binary content and bad encodings, found by streaming through the file once.
    ASCII chunks, the usual case, are checked at C speed without decoding."""
    hasher = hashlib.sha256()
    if fmt == "parquet":
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    decoder = codecs.getincrementaldecoder("utf-8")()
    buffer = bytearray(CHUNK)
    offset = 0
    try:
        with open(path, "rb", buffering=0) as raw:
            if fmt == "csv.gz":
                source: Any = gzip.GzipFile(fileobj=_Hashing(raw, hasher), mode="rb")
            else:
                source = raw
            while n := source.readinto(buffer):
                chunk = buffer if n == CHUNK else buffer[:n]
                if fmt == "csv":
                    hasher.update(chunk)
                if offset == 0 and b"\x00" in chunk[:SNIFF_BYTES]:
                    raise Malformed(
                        "text", f"{path.name} holds binary content (NUL bytes), not CSV text"
                    )
                if not (chunk.isascii() and not decoder.getstate()[0]):
                    _decode(path, fmt, decoder, chunk, offset)
                offset += n
            decoder.decode(b"", final=True)
            if fmt == "csv.gz":
                while n := raw.readinto(buffer):  # bytes after the gzip stream: hashed too
                    hasher.update(memoryview(buffer)[:n])
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise Malformed(
            "truncated", f"{path.name}: the gzip stream is damaged or cut short ({exc})"
        ) from None
    except UnicodeDecodeError:
        raise Malformed(
            "encoding", f"{path.name} ends in the middle of a UTF-8 character"
        ) from None
    return hasher.hexdigest()


def _decode(
    path: Path, fmt: str, decoder: codecs.IncrementalDecoder, chunk: Any, offset: int
) -> None:
    """Decode a chunk that is not all ASCII; `Malformed` names the first bad byte,
    its offset in the (uncompressed) text and its line."""
    try:
        decoder.decode(chunk)
    except UnicodeDecodeError as exc:
        # exc.object: the bytes a previous chunk left undecoded, then this chunk.
        where = offset - (len(exc.object) - len(chunk)) + exc.start
        raise Malformed(
            "encoding",
            f"{path.name} is not UTF-8 text: byte 0x{exc.object[exc.start]:02x} at offset"
            f" {where} (line {_line_at(path, fmt, where)}); save it as UTF-8",
        ) from None


def _line_at(path: Path, fmt: str, offset: int) -> int:
    """The line holding the byte at `offset`: counted only when an error is
    reported, so that reading a good file never counts lines."""
    opener = gzip.open if fmt == "csv.gz" else open
    with opener(path, "rb") as fh:
        return fh.read(offset).count(b"\n") + 1


def _read_csv(path: Path) -> Any:
    """The CSV parsed by pyarrow into an Arrow table, or `Malformed`."""
    import pyarrow as pa
    import pyarrow.csv as pc

    try:
        return pc.read_csv(
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
    except pa.ArrowException as exc:  # any other refusal of the parser: a reason, not a trace
        raise Malformed("parse", f"{path.name} is not valid CSV: {exc}") from None


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


def _memory_pool() -> Any:
    """The C allocator's pool for reading a whole table. Arrow's default (mimalloc)
    hands freshly mapped pages to a large read one by one: on a 238 MiB CSV that
    was 1.3-1.6 s of system time against 0.2-0.4 s with malloc, the same user time
    and the same table (`benchmarks/bench_data_checks.py`)."""
    import pyarrow as pa

    return pa.system_memory_pool()


def _read_parquet(path: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise Malformed("parse", f"{path.name} is not a valid Parquet file: {exc}") from None


def _parquet_frame(path: Path, table: Any) -> pd.DataFrame:
    frame = table.to_pandas()
    if len(frame) == 0:
        raise Malformed("empty", f"{path.name} has no rows")
    return frame


# --------------------------------------------------------------------------- kept tables


def _table_key(path: Path, identity: tuple[int, int, int] | None = None) -> str | None:
    """What identifies the file's content without reading it (as `register_version`
    trusts an unchanged size and modification time). `identity`: the file's size,
    modification time and inode taken before it was read, so that a file changed
    while it is read is kept under its old identity, which no later read matches."""
    identity = identity or _identity(path)
    if identity is None:
        return None
    size, mtime_ns, inode = identity
    text = f"{path.resolve()}|{size}|{mtime_ns}|{inode}"
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


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
