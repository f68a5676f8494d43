"""Reading a data file for checking: every way a file can be unreadable becomes a
`Malformed` reason a person can act on, never a traceback. Files are only read."""

from __future__ import annotations

import codecs
import gzip
import zlib
from pathlib import Path

import pandas as pd

from workbench.data.versions import file_format

SNIFF_BYTES = 64 * 1024


class Malformed(Exception):
    """The file cannot be read as a table; `check` names what failed."""

    def __init__(self, check: str, message: str) -> None:
        super().__init__(message)
        self.check = check
        self.message = message


def read_checked(path: Path, expected_columns: list[str] | None = None) -> pd.DataFrame:
    """The file as a DataFrame (strings kept as strings), or `Malformed`."""
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
    raw = _opener(path, fmt)
    _check_text(path, raw, fmt)
    return _unique_columns(path, _read_csv(path, fmt, expected_columns))


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


def _read_csv(path: Path, fmt: str, expected: list[str] | None) -> pd.DataFrame:
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
