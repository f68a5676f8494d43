"""The TUI's batched store reads: typed records, one query however many runs,
and no writes (reconciling runs is the poll cycle's job, not a read's)."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest

from workbench.store import dashboard as db
from workbench.store import open_store
from workbench.store.metrics import append_points
from workbench.tui import reads

T0 = 1_700_000_000.0


@pytest.fixture
def store(tmp_path: Path):
    found = open_store()
    yield found
    found.close()


def add_project(store, name: str, path: Path | str) -> int:
    with store.write() as conn:
        return int(
            conn.execute(
                "INSERT INTO projects (name, path, created_at) VALUES (?, ?, ?)",
                (name, str(path), T0),
            ).lastrowid
        )


def add_run(store, project_id: int, status: str = "succeeded", **metrics: float) -> int:
    with store.write() as conn:
        run_id = int(
            conn.execute(
                "INSERT INTO runs (project_id, status, trainer, created_at, started_at, ended_at)"
                " VALUES (?, ?, 'script', ?, ?, ?)",
                (project_id, status, T0, T0 + 1, None if status == "running" else T0 + 11),
            ).lastrowid
        )
        conn.execute(
            "INSERT INTO params (run_id, key, value) VALUES (?, 'lr', ?), (?, '_sweep', '1')",
            (run_id, json.dumps(0.1 * run_id), run_id),
        )
        append_points(conn, run_id, {k: [(None, T0 + 5, v)] for k, v in metrics.items()})
    return run_id


def statements(store, fn):
    """What `fn` runs on the store's connection, and what it returns."""
    seen: list[str] = []
    store.conn.set_trace_callback(seen.append)
    try:
        return seen, fn()
    finally:
        store.conn.set_trace_callback(None)


def test_projects_carry_their_run_count_and_newest_run(store, tmp_path):
    a = add_project(store, "alpha", tmp_path / "a")
    add_project(store, "empty", tmp_path / "e")
    add_run(store, a)
    last = add_run(store, a, status="failed")
    seen, found = statements(store, lambda: db.projects(store))
    assert [p.name for p in found] == ["alpha", "empty"]
    assert (found[0].runs, found[0].last_run, found[0].last_status) == (2, last, "failed")
    assert (found[1].runs, found[1].last_run, found[1].last_status) == (0, None, None)
    assert len(seen) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        found[0].runs = 3  # type: ignore[misc]
    assert db.project(store, "nope") is None


def test_best_run_follows_the_metric_direction_and_only_succeeded_runs(store, tmp_path):
    a = add_project(store, "a", tmp_path / "a")
    b = add_project(store, "b", tmp_path / "b")
    add_run(store, a, accuracy=0.8)
    top = add_run(store, a, accuracy=0.9)
    add_run(store, a, status="failed", accuracy=0.99)  # not a result
    low = add_run(store, b, rmse=1.5)
    add_run(store, b, rmse=2.5)
    seen, best = statements(store, lambda: db.best_runs(store, {a: ("accuracy", False), b: ("rmse", True)}))
    assert best[a] == db.BestRun(a, top, "accuracy", 0.9)
    assert best[b] == db.BestRun(b, low, "rmse", 1.5)
    assert len(seen) == 1
    assert db.best_runs(store, {}) == {}


def test_params_and_latest_values_of_many_runs_take_one_query(store, tmp_path):
    a = add_project(store, "a", tmp_path / "a")
    ids = [add_run(store, a, loss=float(i), acc=0.5) for i in range(1, 31)]
    seen, params = statements(store, lambda: db.run_params(store, ids))
    assert len(seen) == 1
    assert params[ids[2]] == {"_sweep": 1, "lr": pytest.approx(0.1 * ids[2])}
    seen, latest = statements(store, lambda: db.latest_values(store, ids, "loss"))
    assert len(seen) == 1
    assert latest[ids[4]] == {"loss": 5.0}
    assert db.latest_values(store, ids[:1]) == {ids[0]: {"acc": 0.5, "loss": 1.0}}
    assert db.run_params(store, []) == {}


def test_gpu_peaks_are_aggregated_per_device(store, tmp_path):
    run = add_run(store, add_project(store, "a", tmp_path / "a"))
    readings = [
        [{"index": 0, "utilization": 30, "memory_used": 100}, {"index": 1, "utilization": 5}],
        [{"index": 0, "utilization": 70, "memory_used": 50}],
    ]
    with store.write() as conn:
        for i, gpu in enumerate([*readings, None]):
            conn.execute(
                "INSERT INTO resource_samples (run_id, ts, cpu_percent, rss_bytes, gpu)"
                " VALUES (?, ?, ?, ?, ?)",
                (run, T0 + i, 10.0 * (i + 1), 1000 * (i + 1), json.dumps(gpu) if gpu else None),
            )
    found = db.resources(store, run)
    assert (found.samples, found.cpu_percent_max, found.rss_bytes_max) == (3, 30.0, 3000)
    assert found.gpus == (db.GpuPeak(0, 70, 100), db.GpuPeak(1, 5, None))
    assert [s.ts for s in db.recent_samples(store, run, 2)] == [T0 + 1, T0 + 2]


def test_notifications_after_an_event_skip_other_kinds(store, tmp_path):
    with store.write():
        store.add_event("run.started", "x", ts=T0)
        store.add_event("notify.model.promoted", "promoted", ts=T0)
    start = 0
    newest, found = db.notifications_after(store, start)
    assert [n.message for n in found] == ["promoted"]
    assert newest == db.latest_event_id(store) == 2
    assert db.notifications_after(store, newest) == (2, [])


def test_the_screens_reads_never_write(store, tmp_path):
    """A queued run stays queued and a `running` run with no owner is not marked
    lost by a read: `reads.reconcile()`, once per poll cycle, does that."""
    folder = tmp_path / "proj"
    folder.mkdir()
    a = add_project(store, "proj", folder)  # no workbench.toml: a config error
    queued = add_run(store, a, status="queued")
    running = add_run(store, a, status="running")
    connection = reads.store()
    seen: list[str] = []
    connection.conn.set_trace_callback(seen.append)
    try:
        home = reads.home_snapshot()
        runs = reads.project_runs("proj")
        detail = reads.run_detail(running, [])
    finally:
        connection.conn.set_trace_callback(None)
    assert not [s for s in seen if s.split()[0].upper() in ("INSERT", "UPDATE", "DELETE", "BEGIN")]
    assert "no workbench.toml" in (home.projects[0].config_error or "")
    assert [r.status for r in runs.runs] == ["running", "queued"]
    assert runs.params[queued] == {"lr": pytest.approx(0.1 * queued)}  # `_sweep` is internal
    assert detail.run.status == "running"
    assert detail.run.duration(T0 + 4) == 3


def test_a_missing_project_is_named_with_the_known_ones(store, tmp_path):
    add_project(store, "alpha", tmp_path / "a")
    from workbench.core.errors import NotFoundError

    with pytest.raises(NotFoundError, match="known: alpha"):
        reads.project_runs("beta")
    assert time.time() > T0
