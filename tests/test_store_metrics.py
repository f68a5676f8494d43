"""Metric points stored in chunks: what is appended reads back exactly, through
the store's readers and through the plain-SQL views; plotted series match a
reference computed in Python from the points; an older store's points are
converted by the migration."""

from __future__ import annotations

import itertools
import math
import random
import sqlite3
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.store import metrics, open_store
from workbench.store.metric_chunks import CHUNK

STEP_MIN, STEP_MAX = -(2**63), 2**63 - 1
_EXAMPLES = itertools.count()


@pytest.fixture
def store(wb_home):
    store = open_store()
    with store.write() as conn:
        conn.execute("INSERT INTO projects (name, path, created_at) VALUES ('p', '/p', 0)")
        conn.execute(
            "INSERT INTO runs (project_id, status, trainer, created_at)"
            " VALUES (1, 'running', 'script', 0)"
        )
    yield store
    store.close()


def _points(seed: int, n: int, steps: str, missing: float) -> list[tuple]:
    """n points as logged: steps all ints / all None / mixed (with the int64
    extremes); values floats of every size, with None, NaN and +/-inf mixed in."""
    rnd = random.Random(seed)
    out = []
    now = 1.7e9 + rnd.random()
    for i in range(n):
        if steps == "none" or (steps == "mixed" and rnd.random() < 0.3):
            step = None
        elif steps == "mixed" and rnd.random() < 0.05:
            step = rnd.choice((STEP_MIN, STEP_MAX, 0, -1))
        else:
            step = i * 3 - 7
        roll = rnd.random()
        if roll < missing:
            value = rnd.choice((None, math.nan, math.inf, -math.inf))
        else:
            value = rnd.choice(
                (rnd.uniform(-1, 1), rnd.uniform(-1e300, 1e300), 5e-324, -0.0, float(i))
            )
        out.append((step, now + i * 1e-3 * rnd.random(), value))
    return out


def _stored(points: list[tuple]) -> list[tuple]:
    """What the store keeps: a value that is not a finite number is None."""
    return [(s, t, v if v is not None and v - v == 0 else None) for s, t, v in points]


def _append_in_flushes(store, key: str, points: list[tuple], sizes: list[int]) -> None:
    done = 0
    for size in [*sizes, len(points)]:
        part = points[done : done + size]
        if part:
            with store.write() as conn:
                metrics.append_points(conn, 1, {key: part})
        done += len(part)


def _reference_buckets(points: list[tuple], size: int) -> list[tuple]:
    out = []
    for b in range(math.ceil(len(points) / size)):
        part = points[b * size : (b + 1) * size]
        present = [v for _, _, v in part if v is not None]
        out.append(
            (b, len(part), part[0][0], part[-1][0], part[-1][1],
             min(present, default=None), max(present, default=None),
             math.fsum(present), len(present), part[-1][2])
        )  # fmt: skip
    return out


def _reference_series(points: list[tuple], size: int, max_points: int) -> list[dict]:
    """The plotted points: `size`-point buckets merged evenly to `max_points`."""
    if size == 1:
        rows = [[(i, p)] for i, p in enumerate(points)]
    else:
        rows = [
            list(enumerate(points))[b * size : (b + 1) * size]
            for b in range(math.ceil(len(points) / size))
        ]
    groups = min(len(rows), max_points)
    bounds = [len(rows) * g // groups for g in range(groups + 1)]
    out = []
    for start, end in zip(bounds, bounds[1:], strict=False):
        part = [p for row in rows[start:end] for p in row]
        present = [v for _, (_, _, v) in part if v is not None]
        last_idx, (last_step, last_ts, last_value) = part[-1]
        bucket_end = (end * size - 1) if size > 1 else last_idx
        try:
            mean = math.fsum(present) / len(present) if present else None
        except OverflowError:
            mean = None
        out.append(
            {
                "x": last_step if last_step is not None else bucket_end,
                "ts": last_ts,
                "count": len(part),
                "min": min(present, default=None),
                "max": max(present, default=None),
                "mean": mean if mean is None or mean - mean == 0 else None,
                "last": last_value,
            }
        )
    return out


def _check_series(store, key: str, points: list[tuple], max_points: int) -> None:
    got = metrics.series(store.conn, 1, key, max_points)
    assert got["count"] == len(points)
    want = _reference_series(points, got["bucket_size"], max_points)
    assert [{**p, "mean": None} for p in got["points"]] == [{**p, "mean": None} for p in want]
    for g, w in zip(got["points"], want, strict=True):
        if w["mean"] is None or g["mean"] is None:
            # an exact sum that overflows has no mean; summed by parts it may
            assert g["mean"] is None or w["mean"] is None or abs(g["mean"]) > 1e300
        else:
            assert g["mean"] == pytest.approx(w["mean"], rel=1e-9, abs=1e-300)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 2**32),
    n=st.integers(1, 3 * CHUNK + 100),
    steps=st.sampled_from(["int", "none", "mixed"]),
    missing=st.sampled_from([0.0, 0.1, 1.0]),
    sizes=st.lists(st.integers(0, 1500), max_size=12),
)
def test_any_appends_read_back_exactly_and_plot_like_the_reference(
    store, seed, n, steps, missing, sizes
):
    key = f"k{next(_EXAMPLES)}"  # the store outlives each example
    logged = _points(seed, n, steps, missing)
    _append_in_flushes(store, key, logged, sizes)
    expected = _stored(logged)

    sid, count = metrics.series_id(store.conn, 1, key)
    assert count == n
    assert metrics.read_points(store.conn, sid) == expected
    start = n // 3
    assert metrics.read_points(store.conn, sid, start) == expected[start:]
    # A row per chunk, every one full but the last.
    counts = [
        c for (c,) in store.conn.execute(
            "SELECT count FROM metric_chunks WHERE series_id = ? ORDER BY chunk", (sid,)
        )
    ]  # fmt: skip
    assert counts == [min(CHUNK, n - i) for i in range(0, n, CHUNK)]

    for size in (64, CHUNK):
        got = metrics.buckets(store.conn, sid, size)
        want = _reference_buckets(expected, size)
        assert [g[:7] + g[8:] for g in got] == [w[:7] + w[8:] for w in want]
    for max_points in (2, 60, 400, n + 5):
        _check_series(store, key, expected, max_points)

    summary = store.conn.execute(
        "SELECT count, step, ts, value, min, max FROM metric_series WHERE id = ?", (sid,)
    ).fetchone()
    present = [v for _, _, v in expected if v is not None]
    assert summary == (
        n, expected[-1][0], expected[-1][1], expected[-1][2],
        min(present, default=None), max(present, default=None),
    )  # fmt: skip


def test_the_views_decode_chunks_in_plain_sql(store, wb_home):
    logged = _points(7, 3 * CHUNK + 17, "mixed", 0.1)
    _append_in_flushes(store, "loss", logged, [1, 1000, 2000])
    _append_in_flushes(store, "steps", _points(8, CHUNK, "int", 0.0), [])
    _append_in_flushes(store, "nosteps", _points(9, CHUNK + 1, "none", 0.0), [])
    squares = [(i * i - 5, t, v) for i, (_, t, v) in enumerate(_points(10, 2 * CHUNK, "int", 0))]
    _append_in_flushes(store, "squares", squares, [])
    wide = [(STEP_MAX - i * (2**53 + 1), t, v) for i, (_, t, v) in enumerate(squares)]
    _append_in_flushes(store, "wide", wide, [])
    kinds = {
        k for (k,) in store.conn.execute("SELECT DISTINCT substr(steps, 1, 1) FROM metric_chunks")
    }
    assert kinds == {b"m", b"q", b"n", b"r"}  # every format of steps
    for key, logged in (("squares", squares), ("wide", wide)):
        sid, _ = metrics.series_id(store.conn, 1, key)
        assert metrics.read_points(store.conn, sid) == _stored(logged)
    # A connection with nothing registered on it, as any SQLite client opens.
    conn = sqlite3.connect(wb_home / "workbench.db")
    try:
        for key in ("loss", "steps", "nosteps", "squares", "wide"):
            sid, count = metrics.series_id(store.conn, 1, key)
            expected = metrics.read_points(store.conn, sid)
            by_view = conn.execute(
                "SELECT idx, step, ts, value FROM metric_points WHERE run_id = 1 AND key = ?"
                " ORDER BY idx",
                (key,),
            ).fetchall()
            assert [r[0] for r in by_view] == list(range(count))
            assert [r[1:] for r in by_view] == expected
            raw = conn.execute(
                "SELECT step, ts, value FROM metrics WHERE series_id = ? ORDER BY idx", (sid,)
            ).fetchall()
            assert raw == expected
            # bit for bit: -0.0 keeps its sign, subnormals their last bit
            signs = [math.copysign(1.0, v) for _, _, v in raw if v is not None]
            assert signs == [math.copysign(1.0, v) for _, _, v in expected if v is not None]
        assert conn.execute("SELECT COUNT(*) FROM metrics WHERE value = 5e-324").fetchone()[0]
    finally:
        conn.close()


def test_a_long_series_plots_from_chunk_summaries_like_the_reference(store):
    n = 20 * CHUNK + 300  # buckets of 16,384 points for a few hundred points
    logged = _points(3, n, "int", 0.02)
    _append_in_flushes(store, "long", logged, [CHUNK - 1, 5 * CHUNK + 2, 7])
    expected = _stored(logged)
    sid, _ = metrics.series_id(store.conn, 1, "long")
    for size in (CHUNK, 16 * CHUNK):
        got = metrics.buckets(store.conn, sid, size)
        want = _reference_buckets(expected, size)
        assert [g[:7] + g[8:] for g in got] == [w[:7] + w[8:] for w in want]
        assert [g[7] for g in got] == pytest.approx([w[7] for w in want], rel=1e-9)
    for max_points in (2, 30, 60, 400):
        _check_series(store, "long", expected, max_points)


def test_deleting_a_series_deletes_its_chunks(store):
    _append_in_flushes(store, "gone", _points(1, CHUNK + 5, "int", 0.0), [])
    with store.write() as conn:
        conn.execute("DELETE FROM metric_series WHERE run_id = 1")
    assert store.conn.execute("SELECT COUNT(*) FROM metric_chunks").fetchone() == (0,)


def test_the_migration_packs_the_points_of_an_older_store(wb_home, capsys):
    """A store made by the schema before chunks, its points written as that
    schema's rows (one per point, plus buckets), then opened by this version."""
    from sqlite_utils import Database
    from sqlite_utils.migrations import Migrations

    from workbench.store.migrations import _step
    from workbench.store.schema import STEPS

    wb_home.mkdir(parents=True, exist_ok=True)
    db_path = wb_home / "workbench.db"
    old = Migrations("workbench")
    for name, script in STEPS.items():
        if name != "m010_metric_chunks":
            old(name=name)(_step(script))
    db = Database(db_path)
    old.apply(db)
    series = {
        "long": _stored(_points(11, 3 * CHUNK + 5, "mixed", 0.1)),
        "exact": _stored(_points(12, 2 * CHUNK, "int", 0.0)),
        "short": _stored(_points(13, 10, "none", 0.0)),
    }
    conn = db.conn
    conn.execute("INSERT INTO projects (name, path, created_at) VALUES ('p', '/p', 0)")
    conn.execute(
        "INSERT INTO runs (project_id, status, trainer, created_at)"
        " VALUES (1, 'succeeded', 'script', 0)"
    )
    for sid, (key, points) in enumerate(series.items(), 1):
        last = points[-1]
        present = [v for _, _, v in points if v is not None]
        conn.execute(
            "INSERT INTO metric_series (id, run_id, key, count, step, ts, value, min, max)"
            " VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?)",
            (sid, key, len(points), *last, min(present), max(present)),
        )
        conn.executemany(
            "INSERT INTO metrics (series_id, idx, step, ts, value) VALUES (?, ?, ?, ?, ?)",
            [(sid, i, *p) for i, p in enumerate(points)],
        )
        conn.execute(
            "INSERT INTO metric_buckets VALUES (?, 64, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0)", (sid,)
        )
    conn.commit()
    before = conn.execute(
        "SELECT run_id, key, idx, step, ts, value FROM metric_points ORDER BY key, idx"
    ).fetchall()
    conn.close()

    capsys.readouterr()
    store = open_store()  # migrates
    try:
        said = capsys.readouterr().err.splitlines()
        assert said[0] == f"upgrading the store at {db_path} (m010_metric_chunks)…"
        assert said[1].startswith("store upgraded in ") and said[1].endswith(" s")
        tables = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master")}
        assert {"metric_chunks", "metrics", "metric_points"} <= tables
        assert not {"metric_buckets", "metric_rows"} & tables
        for key, points in series.items():
            sid, count = metrics.series_id(store.conn, 1, key)
            assert count == len(points)
            assert metrics.read_points(store.conn, sid) == points
            _check_series(store, key, points, 60)
        counts = store.conn.execute(
            "SELECT series_id, chunk, count FROM metric_chunks ORDER BY 1, 2"
        ).fetchall()
        assert counts == [(1, 0, CHUNK), (1, 1, CHUNK), (1, 2, CHUNK), (1, 3, 5),
                          (2, 0, CHUNK), (2, 1, CHUNK), (3, 0, 10)]  # fmt: skip
        after = store.conn.execute(
            "SELECT run_id, key, idx, step, ts, value FROM metric_points ORDER BY key, idx"
        ).fetchall()
        assert after == before
        # Appending after the migration goes on from the converted partial chunk.
        more = _points(14, CHUNK, "int", 0.0)
        with store.write() as conn:
            metrics.append_points(conn, 1, {"long": more})
        sid, count = metrics.series_id(store.conn, 1, "long")
        assert metrics.read_points(store.conn, sid) == series["long"] + more
    finally:
        store.close()


def test_an_append_writes_a_row_per_chunk_it_touches(store):
    def written(points: list[tuple]) -> int:
        statements: list[str] = []
        store.conn.set_trace_callback(statements.append)
        try:
            with store.write() as conn:
                metrics.append_points(conn, 1, {"fast": points})
        finally:
            store.conn.set_trace_callback(None)
        return len([s for s in statements if s.startswith("INSERT OR REPLACE INTO metric_chunks")])

    now = time.time()
    assert written([(i, now, i * 0.5) for i in range(10 * CHUNK + 3)]) == 11
    # the partial chunk (3 points) rewritten with 1,021 more, then one new chunk
    assert written([(i, now, 1.0) for i in range(CHUNK + 5)]) == 2
    sid, count = metrics.series_id(store.conn, 1, "fast")
    assert count == 11 * CHUNK + 8
    assert len(metrics.read_points(store.conn, sid)) == count
