"""Writing metric points and reading them back, fast for long series.

Points are stored by series in chunks of `CHUNK` (1,024) points, one row each
(`metric_chunks`, packed as `workbench.store.metric_chunks` describes), so a
flush of a thousand points writes about one row, not a thousand. A series'
last chunk may be partial: the next append reads it back, adds its points and
writes it again (with the chunks it fills after it).

Why rewrite the partial chunk rather than keep its points as plain rows until
it fills: appends come from flushes, every half second or every few thousand
points, so with many keys each key's share of a flush is often hundreds of
points: as rows they would cost what a row per point always cost (and a read
and a delete when the chunk fills). Rewriting costs at most one chunk (16-24
KiB) per key and flush; a series logged a point at a time rewrites more bytes
than it logs, about what the row-per-point layout wrote anyway (SQLite writes
whole pages: the point's page of the points, and of each bucket size, and of
the series). Readers then have one layout to decode.

Every append also keeps the series' summary current (`metric_series`: count,
latest point, range), so reading the latest values never touches points. A
series is plotted from the chunks' summaries (count, last step and time,
min/max/sum/valued, last value) when its buckets are a chunk or larger, and
from its decoded points when they are smaller.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from workbench.core.errors import StoreError
from workbench.store.metric_chunks import (
    CHUNK,
    pack_floats,
    pack_steps,
    pack_values,
    unpack_floats,
    unpack_steps,
    unpack_values,
)

BUCKET_SIZES = (64, CHUNK, 16 * CHUNK, 256 * CHUNK)  # plotted bucket sizes, in points
READ_LIMIT = 16384  # rows (points, buckets or chunks) read at most to build one plotted series

# A point of one series: (step, ts, value); None: no value (NaN or +/-inf logged).
Point = tuple[int | None, float, float | None]

_UPSERT_SERIES = """
UPDATE metric_series SET count = ?, step = ?, ts = ?, value = ?,
    min = COALESCE(MIN(min, ?), min, ?), max = COALESCE(MAX(max, ?), max, ?)
WHERE id = ?
"""
# A new chunk, or the partial chunk of a series rewritten longer.
_PUT_CHUNK = (
    "INSERT OR REPLACE INTO metric_chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class FlatPoints:
    """A series' points laid end to end in one list: step, ts, value, step, ts,
    value, ... (what the tracking API buffers: no tuple is made per point, and
    three slices split it by column). `append_points` takes one in place of a
    sequence of `Point`s."""

    __slots__ = ("items",)

    def __init__(self, items: list) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items) // 3

    def columns(self) -> tuple[list[int | None], list[float], list[float | None]]:
        items = self.items
        return items[0::3], items[1::3], items[2::3]


def append_points(
    conn: sqlite3.Connection, run_id: int, points: Mapping[str, Sequence[Point] | FlatPoints]
) -> None:
    """Append each key's points (in logged order) and keep its summary.

    Call inside a write transaction: the point numbering reads the series'
    count, which the transaction keeps stable. A value that is not a finite
    number is stored as missing (None), as the tracking API logs it.
    """
    # By column (C loops), then sliced by chunk.
    append_columns(
        conn,
        run_id,
        {
            key: (
                pts.columns()
                if isinstance(pts, FlatPoints)
                else (list(map(_STEP, pts)), list(map(_TS, pts)), list(map(_VALUE, pts)))
            )
            for key, pts in points.items()
            if pts
        },
    )


def append_columns(
    conn: sqlite3.Connection,
    run_id: int,
    columns: Mapping[str, tuple[list[int | None], list[float], list[float | None]]],
) -> None:
    """`append_points` for points already by column: each key's (steps, times,
    values), lists of one length, in logged order (a journal's records come so:
    no tuple per point is made and split again). Call inside a write transaction."""
    for key, (steps, times, values) in columns.items():
        if not values:
            continue
        series_id, start = _series(conn, run_id, key, times[-1])
        low, high, last = _append(conn, series_id, start, steps, times, values)
        conn.execute(
            _UPSERT_SERIES,
            (start + len(values), steps[-1], times[-1], last, low, low, high, high, series_id),
        )


def _append(
    conn: sqlite3.Connection,
    series_id: int,
    start: int,
    steps: list[int | None],
    times: list[float],
    values: list[float | None],
) -> tuple[float | None, float | None, float | None]:
    """Store points start.. of a series: the partial chunk they continue
    rewritten with them, then the chunks they fill. Returns the points' min,
    max and last value (as stored)."""
    n, held = len(values), start % CHUNK  # held: points of the partial chunk
    rows = []
    done = 0
    if held:
        old_steps, old_times, old_values, _ = read_columns(conn, series_id, start - held)
        done = min(n, CHUNK - held)
        rows.append(
            _chunk_row(
                series_id,
                start // CHUNK,
                old_steps + steps[:done],
                old_times + times[:done],
                old_values + values[:done],
            )
        )
    while done < n:
        end = min(n, done + CHUNK)
        rows.append(
            _chunk_row(
                series_id, (start + done) // CHUNK, steps[done:end], times[done:end],
                values[done:end],
            )
        )  # fmt: skip
        done = end
    conn.executemany(_PUT_CHUNK, rows)
    # (A rewritten chunk's range includes its older points: harmless, the
    # series' range holds them already.)
    lows = [r[6] for r in rows if r[6] is not None]
    highs = [r[7] for r in rows if r[7] is not None]
    return min(lows, default=None), max(highs, default=None), rows[-1][10]


def _chunk_row(
    series_id: int, chunk: int, steps: list, times: list, values: list[float | None]
) -> tuple:
    values, low, high, total, valued = _finite_summary(values)
    return (
        series_id, chunk, len(values), steps[0], steps[-1], times[-1], low, high, total, valued,
        values[-1], pack_steps(steps), pack_floats(times), pack_values(values),
    )  # fmt: skip


def _finite_summary(
    values: list[float | None],
) -> tuple[list[float | None], float | None, float | None, float, int]:
    """(values, min, max, exact sum, how many have a value), any value that is
    not a finite number made None first. The exact sum tells whether there is
    any (NaN and infinities make it non-finite), so finite values cost no check;
    and `fsum` refusing a None is the test for missing values (a scan for None
    costs as much as the sum)."""
    if not values:
        return values, None, None, 0.0, 0
    try:
        total = math.fsum(values)  # type: ignore[arg-type]  # a None raises, as wanted
        present: list = values
    except TypeError:  # a value is None (or not a number: the sum below says so)
        present = [v for v in values if v is not None]
        if not present:
            return values, None, None, 0.0, 0
        total = _fsum(present)
    except (OverflowError, ValueError):  # infinities of both signs, or finite overflow
        present, total = values, math.nan
    if total - total != 0.0:
        values = [v if v is None or v - v == 0.0 else None for v in values]
        present = [v for v in values if v is not None]
        if not present:
            return values, None, None, 0.0, 0
        total = _total(present)
    return values, min(present), max(present), total, len(present)


def _fsum(values: list[float]) -> float:
    try:
        return math.fsum(values)
    except (OverflowError, ValueError):
        return math.nan


def pack_rows(conn: sqlite3.Connection) -> None:
    """Pack the points of an older store, a row each in `metric_rows` (the
    migration to chunks renames the old `metrics` table so), into chunks, then
    drop that table. Streams the rows, a chunk at a time."""
    rows = conn.execute("SELECT series_id, idx, step, ts, value FROM metric_rows ORDER BY 1, 2")
    part: list[tuple] = []
    for row in _batches(rows):
        if part and (row[0] != part[0][0] or len(part) == CHUNK):
            _put_rows(conn, part)
            part = []
        part.append(row)
    if part:
        _put_rows(conn, part)
    conn.execute("DROP TABLE metric_rows")


def _put_rows(conn: sqlite3.Connection, part: list[tuple]) -> None:
    """One chunk from rows (series_id, idx, step, ts, value) of one series,
    numbered from their first point (the old layout numbered from 0 without gaps)."""
    series, steps, times, values = part[0][0], [], [], []
    for _, _, step, ts, value in part:
        steps.append(step)
        times.append(ts)
        values.append(value)
    conn.execute(_PUT_CHUNK, _chunk_row(series, part[0][1] // CHUNK, steps, times, values))


def _batches(cursor: sqlite3.Cursor) -> Iterable[tuple]:
    while batch := cursor.fetchmany(CHUNK):
        yield from batch


_STEP, _TS, _VALUE = itemgetter(0), itemgetter(1), itemgetter(2)


# A bucket's summary, as (bucket, count, first_step, last_step, last_ts, min, max,
# sum, valued, last): a chunk's summary columns after its number, or the same
# computed from points.


def _point_buckets(columns: tuple[list, list, list], size: int, all_valued: bool) -> list[tuple]:
    """Summaries of the `size`-point buckets of a whole series' points."""
    steps, ts, values = columns
    out = []
    for bucket, i in enumerate(range(0, len(values), size)):
        end = min(len(values), i + size)
        part = values[i:end]
        if all_valued:
            low, high, total, valued = min(part), max(part), _total(part), end - i
        else:
            low, high, total, valued = _summary(part)
        out.append(
            (bucket, end - i, steps[i], steps[end - 1], ts[end - 1], low, high, total, valued,
             values[end - 1])
        )  # fmt: skip
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


def series_id(conn: sqlite3.Connection, run_id: int, key: str) -> tuple[int, int] | None:
    """(series id, point count) of a run's metric, or None when it has none."""
    found = conn.execute(
        "SELECT id, count FROM metric_series WHERE run_id = ? AND key = ?", (run_id, key)
    ).fetchone()
    return (int(found[0]), int(found[1])) if found else None


def read_columns(
    conn: sqlite3.Connection, series: int, start: int = 0
) -> tuple[list[int | None], list[float], list[float | None], bool]:
    """Points start.. of a series as (steps, times, values, every point has a
    value), in logged order, decoded from its chunks."""
    steps: list[int | None] = []
    times: list[float] = []
    values: list[float | None] = []
    all_valued = True
    for chunk, count, valued, packed_steps, packed_ts, packed_values in conn.execute(
        "SELECT chunk, count, valued, steps, ts, vals FROM metric_chunks"
        " WHERE series_id = ? AND chunk >= ? ORDER BY chunk",
        (series, start // CHUNK),
    ):
        skip = max(0, start - chunk * CHUNK)
        try:
            chunk_steps = unpack_steps(packed_steps, count)
            chunk_values = unpack_values(packed_values, valued == count)
            chunk_times = unpack_floats(packed_ts)
            if not len(chunk_steps) == len(chunk_times) == len(chunk_values) == count:
                raise ValueError(f"{count} points, arrays of other lengths")
        except (ValueError, TypeError, IndexError) as exc:
            # Only a damaged or hand-edited store gets here: say so in one line.
            raise StoreError(
                f"metric chunk {chunk} of series {series} cannot be read ({exc});"
                " `workbench fsck` checks the store"
            ) from exc
        if skip:
            chunk_steps, chunk_times = chunk_steps[skip:], chunk_times[skip:]
            chunk_values = chunk_values[skip:]
        all_valued = all_valued and (valued == count or None not in chunk_values)
        steps += chunk_steps
        times += chunk_times
        values += chunk_values
    return steps, times, values, all_valued


def read_points(conn: sqlite3.Connection, series: int, start: int = 0) -> list[Point]:
    """Points start.. of a series as (step, ts, value), in logged order."""
    steps, times, values, _ = read_columns(conn, series, start)
    return list(zip(steps, times, values, strict=True))


def series(
    conn: sqlite3.Connection, run_id: int, key: str, max_points: int = 1000
) -> dict[str, Any]:
    """A series for plotting: at most `max_points` points of (x, min, max, mean, last).

    x is the step of the last point in each bucket (its index when no step was
    logged). A series no longer than `max_points` comes back point by point
    (min = max = mean = value).
    """
    found = series_id(conn, run_id, key)
    sid, count = found if found else (None, 0)
    size = _bucket_size(count, max_points)
    plotted: list[dict[str, Any]] = []
    if sid is not None and size < CHUNK:
        plotted = _groups(read_columns(conn, sid), size, max_points)
    elif sid is not None:
        plotted = _merge(
            [
                (c, x if x is not None else (b + 1) * size - 1, ts, lo, hi, total, valued, last)
                for b, c, _, x, ts, lo, hi, total, valued, last in buckets(conn, sid, size)
            ],
            max_points,
        )
    return {
        "run_id": run_id,
        "key": key,
        "count": count,
        "bucket_size": size,
        "points": plotted,
    }


def _groups(
    columns: tuple[list[int | None], list[float], list[float | None], bool],
    size: int,
    max_points: int,
) -> list[dict[str, Any]]:
    """What `_merge` makes of a series' `size`-point buckets, computed from
    the points at once: the same groups of whole buckets (even boundaries), a
    C-level min, max and exact sum over each group's points."""
    steps, times, values, all_valued = columns
    n = len(values)
    buckets = math.ceil(n / size)
    groups = min(buckets, max_points)
    bounds = [buckets * g // groups for g in range(groups + 1)]
    out = []
    for low_bucket, high_bucket in zip(bounds, bounds[1:], strict=False):
        start, end = low_bucket * size, min(n, high_bucket * size)
        part = values[start:end]
        present: list[float] = (
            part  # type: ignore[assignment]
            if all_valued or None not in part
            else [v for v in part if v is not None]
        )
        step = steps[end - 1]
        out.append(
            {
                "x": step if step is not None else high_bucket * size - 1,
                "ts": times[end - 1],
                "count": end - start,
                "min": min(present) if present else None,
                "max": max(present) if present else None,
                "mean": _mean([_total(present)], len(present)),
                "last": part[-1],
            }
        )
    return out


def buckets(conn: sqlite3.Connection, sid: int, size: int) -> list[tuple]:
    """The summaries of a series' `size`-point buckets: from its points when a
    bucket is smaller than a chunk, else from the chunks' summaries (merged
    for buckets larger than a chunk)."""
    if size < CHUNK:
        steps, times, values, all_valued = read_columns(conn, sid)
        return _point_buckets((steps, times, values), size, all_valued)
    pieces = [
        tuple(row)
        for row in conn.execute(
            "SELECT chunk, count, first_step, last_step, last_ts, min, max, sum, valued, last"
            " FROM metric_chunks WHERE series_id = ? ORDER BY chunk",
            (sid,),
        )
    ]
    return pieces if size == CHUNK else _merge_buckets(pieces, size // CHUNK)


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
