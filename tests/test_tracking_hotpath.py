"""The tracking API's call path: what its shortcuts must never cost.

A point is buffered as three items of one flat list (step, time, value) and
split into columns by slicing when it is written; the common case (a float, an
int step, a known key) skips the checks that anything else goes through. These
tests hold the properties that such shortcuts could break: a point's three
items stay together when threads log one key, its time is the clock's when it
was logged, the checked path still sees every odd value, and the store writes
a flat buffer exactly as it writes point tuples.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import workbench as wb
import workbench.tracking as wb_tracking
from workbench.store import open_store
from workbench.store.metric_chunks import pack_steps, pack_values, unpack_steps, unpack_values
from workbench.store.metrics import FlatPoints, append_points, read_columns, series_id
from workbench.templates import init_project


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return init_project(tmp_path / "p", "lightgbm")


def columns(run_id: int, key: str) -> tuple[list, list, list]:
    """(steps, times, values) of one series, in logged order."""
    store = open_store(migrate=False)
    try:
        found = series_id(store.conn, run_id, key)
        assert found is not None, f"no series {key!r}"
        steps, times, values, _ = read_columns(store.conn, found[0])
    finally:
        store.close()
    return steps, times, values


def test_a_points_time_is_the_clock_when_it_was_logged(project):
    brackets = []
    with wb.start_run(project=project) as run:
        for i in range(3000):
            before = time.time()
            wb.log_metric("loss", i * 0.5, step=i)
            wb.log_metrics({"a": i, "b": -i}, step=i)
            brackets.append((before, time.time()))
            if i % 1000 == 999:
                wb.flush()  # across flushes and the chunks they rewrite

    steps, times, values = columns(run.id, "loss")
    assert steps == list(range(3000))
    assert values == [i * 0.5 for i in range(3000)]
    assert all(lo <= t <= hi for t, (lo, hi) in zip(times, brackets, strict=True))
    assert times == sorted(times)  # one thread: never earlier than its last point
    # The points of one log_metrics call share one reading of the clock.
    a_steps, a_times, a_values = columns(run.id, "a")
    assert a_times == columns(run.id, "b")[1]
    assert a_steps == steps and a_values == [float(i) for i in range(3000)]
    assert all(lo <= t <= hi for t, (lo, hi) in zip(a_times, brackets, strict=True))


def test_threads_logging_one_key_keep_each_points_step_time_and_value_together(project):
    threads, per_thread = 4, 4000
    start = threading.Barrier(threads + 1)

    def work(t: int) -> None:
        start.wait()
        for i in range(per_thread):
            step = t * 1_000_000 + i
            wb.log_metric("shared", step * 0.5, step=step)
            wb.log_metrics({"both": step * 0.25, f"own{t}": i}, step=step)

    with wb.start_run(project=project) as run:
        workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        start.wait()
        while any(w.is_alive() for w in workers):
            wb.flush()  # takes the buffers while the threads add to them
        for w in workers:
            w.join()

    for key, scale in (("shared", 0.5), ("both", 0.25)):
        steps, times, values = columns(run.id, key)
        assert len(steps) == threads * per_thread  # nothing lost
        # Every value still sits beside its own step: no point was torn apart.
        assert values == [s * scale for s in steps]
        for t in range(threads):
            mine = [(s, ts) for s, ts in zip(steps, times, strict=True) if s // 1_000_000 == t]
            assert [s for s, _ in mine] == [t * 1_000_000 + i for i in range(per_thread)]
            assert [ts for _, ts in mine] == sorted(ts for _, ts in mine)
    for t in range(threads):
        assert columns(run.id, f"own{t}")[2] == [float(i) for i in range(per_thread)]


def test_values_that_are_not_plain_floats_are_converted_or_refused(project):
    class Hostile:
        def __float__(self) -> float:
            raise RuntimeError("no")

    class Tricky(float):
        def __float__(self) -> float:  # a float subclass is converted, not stored as is
            return 2.5

    with (
        pytest.warns(wb_tracking.MetricWarning) as caught,
        wb.start_run(project=project) as run,
    ):
        logged = [7, True, np.float32(0.25), np.float64(1.5), np.int64(3), "0.75", Tricky(9.0)]
        for i, value in enumerate(logged):
            wb.log_metric("v", value, step=i)
        wb.log_metric("v", Hostile(), step=99)  # refused, the run goes on
        for i, value in enumerate([math.nan, math.inf, -math.inf, 1.0]):
            wb.log_metric("odd", value, step=i)
        wb.log_metrics({"m": math.inf, "n": 2, "o": Hostile()}, step=0)

    steps, _, values = columns(run.id, "v")
    assert steps == list(range(7))
    assert values == [7.0, 1.0, 0.25, 1.5, 3.0, 0.75, 2.5]
    assert all(type(v) is float for v in values)
    assert columns(run.id, "odd")[2] == [None, None, None, 1.0]
    assert columns(run.id, "m")[2] == [None] and columns(run.id, "n")[2] == [2.0]
    messages = " ".join(str(w.message) for w in caught)
    assert "is not a number" in messages and "stored as missing" in messages


def test_log_metrics_wakes_the_flusher_for_the_points_of_all_its_keys(project, monkeypatch):
    monkeypatch.setattr(wb_tracking, "FLUSH_INTERVAL", 3600)  # no timer flush in the test
    monkeypatch.setattr(wb_tracking, "FLUSH_AT_POINTS", 1000)
    keys = [f"k{n}" for n in range(10)]
    with wb.start_run(project=project) as run:
        for i in range(90):  # 900 points waiting, 90 in each series
            wb.log_metrics(dict.fromkeys(keys, i), step=i)
        assert run.wakeups == 0
        for i in range(90, 120):
            wb.log_metrics(dict.fromkeys(keys, i), step=i)
        assert run.wakeups >= 1  # about 1,000 points, though no series holds 1,000

    assert columns(run.id, "k9")[2] == [float(i) for i in range(120)]


def _stored(run_id: int, points_by_key: dict, flat: bool) -> dict:
    """Append each key's points as tuples or as one flat buffer; read them back."""
    store = open_store(migrate=False)
    try:
        with store.write() as conn:
            for key, pts in points_by_key.items():
                given = FlatPoints([x for p in pts for x in p]) if flat else pts
                append_points(conn, run_id, {key: given})
        out = {}
        for key in points_by_key:
            sid, _ = series_id(store.conn, run_id, key)
            out[key] = read_columns(store.conn, sid)[:3]
        return out
    finally:
        store.close()


def test_a_flat_buffer_is_stored_as_the_same_points_as_tuples(project):
    with wb.start_run(project=project) as one:
        pass
    with wb.start_run(project=project) as other:
        pass
    points_by_key = {
        "plain": [(i, 1000.0 + i, i / 7) for i in range(2500)],
        "gaps": [
            (None if i % 5 == 0 else i, 1000.0 + i, None if i % 3 else i) for i in range(1500)
        ],
        "odd": [(i * 3, 5.0, [math.inf, -math.inf, math.nan, 1e308, 0.5][i % 5]) for i in range(9)],
        "no steps": [(None, 1.0, 2.0)] * 3,
        "one": [(2**63 - 1, 1.0, -0.0)],
    }
    as_tuples = _stored(one.id, points_by_key, flat=False)
    as_flat = _stored(other.id, points_by_key, flat=True)
    for key in points_by_key:
        assert repr(as_flat[key]) == repr(as_tuples[key]), key  # NaN-safe, -0.0-exact
    assert as_flat["odd"][2] == [None, None, None, 1e308, 0.5] + [None, None, None, 1e308]
    assert as_flat["gaps"][0] == [None if i % 5 == 0 else i for i in range(1500)]


@pytest.mark.parametrize(
    "steps",
    [
        [0, 1, 2, 3],
        [10, 20, 30],
        [5, 3, 9],
        [None, 1, 2],
        [0, None, 2],
        [0, 1, None],
        [None],
        [None, None],
        [7],
    ],
)
def test_packed_steps_read_back_as_logged(steps):
    assert unpack_steps(pack_steps(steps), len(steps)) == steps


def test_a_step_that_is_no_whole_number_is_an_error_not_a_missing_step():
    with pytest.raises(TypeError):
        pack_steps([0, 1.5, 2])
    with pytest.raises(TypeError):
        pack_steps([None, "3"])


def test_packed_values_read_back_with_none_for_missing():
    values = [0.5, None, -2.0, None]
    assert unpack_values(pack_values(values), all_valued=False) == values
    assert unpack_values(pack_values([1.0, 2.0]), all_valued=True) == [1.0, 2.0]
