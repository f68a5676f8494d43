"""What an artifact looks like in a viewer: text, a CSV table or indented JSON,
read with limits (a run may log a file of any size), never executed. The TUI's
artifacts browser shows these previews."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

MAX_BYTES = 256 * 1024  # read at most this much of a file for a preview
MAX_JSON_BYTES = 2 * 1024 * 1024  # parse JSON up to this size; larger shows as text
MAX_ROWS = 500  # of a CSV
MAX_COLUMNS = 50


@dataclass(frozen=True, slots=True)
class Preview:
    """`kind` is text, csv, json, binary or missing; `text` what to show for
    all but csv, whose `columns` and `rows` make a table; `truncated` says
    that only the start of the file is shown."""

    kind: str
    text: str = ""
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    truncated: bool = False
    size: int = 0


def _head(path: Path, limit: int) -> tuple[bytes, int]:
    size = path.stat().st_size
    with open(path, "rb") as fh:
        return fh.read(limit), size


def preview(path: Path, name: str) -> Preview:
    """A preview of the file at `path`, shown by its logged `name` (whose
    suffix says CSV or JSON)."""
    try:
        head, size = _head(path, MAX_BYTES)
    except FileNotFoundError:
        return Preview("missing", f"the file is missing from the store ({path})")
    except OSError as exc:
        return Preview("missing", f"cannot read {path}: {exc.strerror or exc}")
    if b"\0" in head[:8192]:
        return Preview("binary", f"binary file, {size:,} bytes", size=size)
    truncated = size > len(head)
    suffix = name.lower().rsplit(".", 1)[-1] if "." in name else ""
    if suffix == "json" and size <= MAX_JSON_BYTES:
        try:
            data = json.loads(path.read_bytes())
        except (ValueError, RecursionError, OSError):
            pass  # not JSON after all: shown as text
        else:
            text = json.dumps(data, indent=2, ensure_ascii=False)
            cut = len(text) > MAX_BYTES
            return Preview("json", text[:MAX_BYTES], truncated=cut, size=size)
    text = head.decode("utf-8", "replace")
    if truncated:  # a multi-byte character may be cut at the end
        text = text.rsplit("\n", 1)[0] if "\n" in text else text
    if suffix in ("csv", "tsv"):
        table = _csv(text, "\t" if suffix == "tsv" else ",")
        if table is not None:
            columns, rows, more = table
            cut = truncated or more
            return Preview("csv", columns=columns, rows=rows, truncated=cut, size=size)
    return Preview("text", text, truncated=truncated, size=size)


def _csv(text: str, delimiter: str) -> tuple[list[str], list[list[str]], bool] | None:
    """Header and up to MAX_ROWS rows (at most MAX_COLUMNS wide), and whether
    rows were left out; None when the text is not a table."""
    try:
        reader = csv.reader(io.StringIO(text), delimiter=delimiter)
        header = next(reader, None)
        if not header:
            return None
        rows: list[list[str]] = []
        for row in reader:
            if len(rows) == MAX_ROWS:
                return header[:MAX_COLUMNS], rows, True
            rows.append(row[:MAX_COLUMNS])
    except csv.Error:
        return None
    return header[:MAX_COLUMNS], rows, False
