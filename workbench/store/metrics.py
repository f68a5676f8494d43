"""Writing metric points and reading them back, fast for long series.

Every append keeps two summaries current in the same transaction: the latest
point and range of each series (`metric_series`), and min/max/mean buckets of
BUCKET_SIZES points (`metric_buckets`). Reading the latest values never scans
points, and a million-point series is downsampled from about sixteen thousand
bucket rows at most.
"""

from __future__ import annotations

import contextlib
import functools
import math
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain
from operator import itemgetter
from typing import Any

BUCKET_SIZES = (64, 1024, 16384, 262144)
READ_LIMIT = 16384  # rows read at most to build one plotted series

# A buffered point of one series: (step, ts, value); None: no value (NaN or +/-inf logged).
Point = tuple[int | None, float, float | None]

_UPSERT_SERIES = """
UPDATE metric_series SET count = ?, step = ?, ts = ?, value = ?,
    min = COALESCE(MIN(min, ?), min, ?), max = COALESCE(MAX(max, ?), max, ?)
WHERE id = ?
"""

_INSERT_BUCKETS = """
INSERT INTO metric_buckets (series_id, size, bucket, count, first_step, last_step, last_ts,
                            min, max, sum, valued, last)
VALUES """
_BUCKET_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_ON_BUCKET_CONFLICT = """
ON CONFLICT (series_id, size, bucket) DO UPDATE SET
    count = count + excluded.count,
    last_step = excluded.last_step, last_ts = excluded.last_ts, last = excluded.last,
    min = COALESCE(MIN(min, excluded.min), min, excluded.min),
    max = COALESCE(MAX(max, excluded.max), max, excluded.max),
    sum = sum + excluded.sum, valued = valued + excluded.valued
"""
_INSERT_POINTS = "INSERT INTO metrics (series_id, idx, step, ts, value) VALUES "
_POINT_ROW = "(?, ?, ?, ?, ?)"


def append_points(
    conn: sqlite3.Connection, run_id: int, points: Mapping[str, Sequence[Point]]
) -> None:
    """Insert each key's points (in logged order) with their summaries.

    Call inside a write transaction: the point numbering reads the series'
    count, which the transaction keeps stable. The buckets are summarized
    once, at the smallest size; each larger size merges those summaries. Rows
    go many to a statement (`_insert_rows`).
    """
    bucket_rows: list[tuple] = []
    for key, pts in points.items():
        if not pts:
            continue
        series_id, start = _series(conn, run_id, key, pts[-1][1])
        values = list(map(_VALUE, pts))
        _insert_points(conn, series_id, start, pts, values)
        pieces = _smallest_buckets(start, pts, values)
        low = _least(p[5] for p in pieces)
        high = _most(p[6] for p in pieces)
        last = pts[-1]
        conn.execute(
            _UPSERT_SERIES,
            (start + len(pts), last[0], last[1], last[2], low, low, high, high, series_id),
        )
        small = BUCKET_SIZES[0]
        for size in BUCKET_SIZES:
            if size != small:
                pieces = _merge_buckets(pieces, size // small)
                small = size
            bucket_rows.extend((series_id, size, *p) for p in pieces)
    if bucket_rows:
        flat = list(chain.from_iterable(bucket_rows))
        _insert_rows(conn, _INSERT_BUCKETS, _BUCKET_ROW, _ON_BUCKET_CONFLICT, flat, 12)


MAX_ROWS_PER_STATEMENT = 4096  # rows of one INSERT at most (SQLite's variable limit allowing)
_STEP, _TS, _VALUE = itemgetter(0), itemgetter(1), itemgetter(2)


def _insert_points(
    conn: sqlite3.Connection, series_id: int, start: int, pts: Sequence[Point], values: list
) -> None:
    """The points as rows (series_id, idx, step, ts, value)."""
    n = len(pts)
    # The rows' parameters one after another, laid out by column with slice
    # assignments (C loops), not built as a tuple per row.
    flat: list = [series_id] * (5 * n)
    flat[1::5] = range(start, start + n)
    flat[2::5] = list(map(_STEP, pts))
    flat[3::5] = list(map(_TS, pts))
    flat[4::5] = values
    _insert_rows(conn, _INSERT_POINTS, _POINT_ROW, "", flat, 5)


def _insert_rows(
    conn: sqlite3.Connection, head: str, row: str, tail: str, flat: list, width: int
) -> None:
    """Insert the rows whose `width` parameters each lie one after another in
    `flat`, many rows to a statement: statements of a power of two rows (so
    that a few prepared statements serve every count), the largest first.

    One row a statement would pay SQLite's per-statement work once a row, and
    hand the GIL over once a row (the sqlite3 module releases it around each
    step): a thread logging meanwhile then holds the writer up at every row.
    """
    n = len(flat) // width
    size = _largest_statement(conn, width)
    done = 0
    while done < n:
        while size > n - done:
            size //= 2
        count = (n - done) // size
        step = size * width
        sql = _statement(head, row, tail, size)
        end = (done + count * size) * width
        conn.executemany(sql, [flat[i : i + step] for i in range(done * width, end, step)])
        done += count * size


def _largest_statement(conn: sqlite3.Connection, width: int) -> int:
    limit = 999  # SQLite's variable limit before 3.32
    with contextlib.suppress(AttributeError, sqlite3.Error):
        limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    rows = max(1, min(MAX_ROWS_PER_STATEMENT, limit // width))
    return 1 << (rows.bit_length() - 1)  # a power of two


@functools.cache
def _statement(head: str, row: str, tail: str, rows: int) -> str:
    return head + ", ".join([row] * rows) + tail


# A bucket's summary, as its row after (series_id, size):
# (bucket, count, first_step, last_step, last_ts, min, max, sum, valued, last)


def _smallest_buckets(start: int, pts: Sequence[Point], values: list) -> list[tuple]:
    """Summaries of the BUCKET_SIZES[0] buckets that points start.. fall in."""
    size = BUCKET_SIZES[0]
    out = []
    i, n = 0, len(values)
    while i < n:
        bucket = (start + i) // size
        end = min(n, (bucket + 1) * size - start)
        low, high, total, valued = _summary(values[i:end])
        first, tail = pts[i], pts[end - 1]
        out.append(
            (bucket, end - i, first[0], tail[0], tail[1], low, high, total, valued, tail[2])
        )
        i = end
    return out


def _merge_buckets(pieces: list[tuple], factor: int) -> list[tuple]:
    """Summaries `factor` times as large, from consecutive smaller ones."""
    out = []
    i, n = 0, len(pieces)
    while i < n:
        bucket = pieces[i][0] // factor
        end = i + 1
        while end < n and pieces[end][0] // factor == bucket:
            end += 1
        if end - i == 1:
            p = pieces[i]
            out.append((bucket, *p[1:]))
        else:
            part = pieces[i:end]
            first, tail = part[0], part[-1]
            out.append(
                (
                    bucket,
                    sum(p[1] for p in part),
                    first[2],
                    tail[3],
                    tail[4],
                    _least(p[5] for p in part),
                    _most(p[6] for p in part),
                    _total([p[7] for p in part]),
                    sum(p[8] for p in part),
                    tail[9],
                )
            )
        i = end
    return out


def _least(values: Iterable[float | None]) -> float | None:
    return min((v for v in values if v is not None), default=None)


def _most(values: Iterable[float | None]) -> float | None:
    return max((v for v in values if v is not None), default=None)


def _series(conn: sqlite3.Connection, run_id: int, key: str, ts: float) -> tuple[int, int]:
    found = conn.execute(
        "SELECT id, count FROM metric_series WHERE run_id = ? AND key = ?", (run_id, key)
    ).fetchone()
    if found:
        return found[0], found[1]
    cursor = conn.execute(
        "INSERT INTO metric_series (run_id, key, count, ts) VALUES (?, ?, 0, ?)", (run_id, key, ts)
    )
    return cursor.lastrowid, 0  # type: ignore[return-value]


def _summary(values: Sequence[float | None]) -> tuple[float | None, float | None, float, int]:
    present: Sequence[float] = (
        [v for v in values if v is not None] if None in values else values  # type: ignore[assignment]
    )
    if not present:
        return None, None, 0.0, 0
    return min(present), max(present), _total(present), len(present)


def _total(values: Iterable[float]) -> float:
    """An exact sum; +/-inf where finite values overflow it (shown as null)."""
    try:
        return math.fsum(values)
    except (OverflowError, ValueError):
        return sum(values)


def latest_values(
    conn: sqlite3.Connection, run_ids: Sequence[int]
) -> dict[int, dict[str, float | None]]:
    """The latest value of every metric key of each run, from the series summaries."""
    out: dict[int, dict[str, float | None]] = {}
    for chunk_start in range(0, len(run_ids), 500):
        chunk = list(run_ids[chunk_start : chunk_start + 500])
        marks = ",".join("?" * len(chunk))
        for run_id, key, value in conn.execute(
            f"SELECT run_id, key, value FROM metric_series WHERE run_id IN ({marks})"
            " ORDER BY run_id, key",
            chunk,
        ):
            out.setdefault(run_id, {})[key] = value
    return out


def series(
    conn: sqlite3.Connection, run_id: int, key: str, max_points: int = 1000
) -> dict[str, Any]:
    """A series for plotting: at most `max_points` points of (x, min, max, mean, last).

    x is the step of the last point in each bucket (its index when no step was
    logged). A series no longer than `max_points` comes back point by point
    (min = max = mean = value).
    """
    found = conn.execute(
        "SELECT id, count FROM metric_series WHERE run_id = ? AND key = ?", (run_id, key)
    ).fetchone()
    series_id, count = found if found else (None, 0)
    size = _bucket_size(count, max_points)
    if size == 1:
        rows = [
            (1, s if s is not None else i, ts, v, v, v or 0.0, int(v is not None), v)
            for i, s, ts, v in conn.execute(
                "SELECT idx, step, ts, value FROM metrics WHERE series_id = ? ORDER BY idx",
                (series_id,),
            )
        ]
    else:
        rows = [
            (c, x if x is not None else (b + 1) * size - 1, ts, lo, hi, total, valued, last)
            for b, c, x, ts, lo, hi, total, valued, last in conn.execute(
                "SELECT bucket, count, last_step, last_ts, min, max, sum, valued, last"
                " FROM metric_buckets WHERE series_id = ? AND size = ? ORDER BY bucket",
                (series_id, size),
            )
        ]
    return {
        "run_id": run_id,
        "key": key,
        "count": count,
        "bucket_size": size,
        "points": _merge(rows, max_points),
    }


def _bucket_size(count: int, max_points: int) -> int:
    """The coarsest stored bucket size that still gives at least half of
    `max_points` buckets (fewest rows to read and merge); 1 means read the
    points themselves."""
    enough = [s for s in BUCKET_SIZES if math.ceil(count / s) >= max_points / 2]
    if enough:
        return enough[-1]
    if count <= READ_LIMIT:
        return 1
    return next(s for s in BUCKET_SIZES if math.ceil(count / s) <= READ_LIMIT)


def _merge(rows: list[tuple], max_points: int) -> list[dict[str, Any]]:
    """Merge consecutive (count, x, ts, min, max, sum, valued, last) rows down to max_points."""
    groups = min(len(rows), max_points)
    if not groups:
        return []
    # Even boundaries, so the result has exactly `groups` points.
    bounds = [len(rows) * g // groups for g in range(groups + 1)]
    out = []
    for start, end in zip(bounds, bounds[1:], strict=False):
        part = rows[start:end]
        lows = [r[3] for r in part if r[3] is not None]
        highs = [r[4] for r in part if r[4] is not None]
        valued = sum(r[6] for r in part)
        out.append(
            {
                "x": part[-1][1],
                "ts": part[-1][2],
                "count": sum(r[0] for r in part),
                "min": min(lows) if lows else None,
                "max": max(highs) if highs else None,
                "mean": _mean([r[5] for r in part], valued),
                "last": part[-1][7],
            }
        )
    return out


def _mean(sums: list[float | None], valued: int) -> float | None:
    present = [v for v in sums if v is not None]
    if not valued or not present:
        return None
    mean = _total(present) / valued
    return mean if mean - mean == 0.0 else None  # an overflowed sum has no mean to show


def series_list(conn: sqlite3.Connection, run_id: int) -> list[dict[str, Any]]:
    """Every metric key of a run with its point count, latest point and range."""
    cursor = conn.execute(
        "SELECT key, count, step, value, min, max FROM metric_series WHERE run_id = ? ORDER BY key",
        (run_id,),
    )
    return [
        dict(zip(("key", "count", "step", "value", "min", "max"), row, strict=True))
        for row in cursor
    ]
