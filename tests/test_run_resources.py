"""`run show`'s resources for a run too quick to be sampled: a fit forked ready
from the warm server may end before the supervisor's first reading, or be read
only as it exits (RSS 0); its trainer's own peak (rusage) is then what is shown."""

from __future__ import annotations

import pytest

from workbench.runs.queries import resources
from workbench.store import open_store
from workbench.store import runs as run_store

PEAK = 180 * 1024 * 1024


def _sample(run_id: int, rss: int) -> dict:
    return {
        "run_id": run_id, "ts": 1.0, "cpu_percent": 0.0, "rss_bytes": rss, "num_threads": 1,
        "num_procs": 1, "read_bytes": 0, "write_bytes": 0, "sys_cpu_percent": 1.0,
        "sys_mem_percent": 1.0, "sys_mem_used": 1, "gpu": None,
    }


@pytest.fixture
def store(wb_home):
    store = open_store()
    with store.write() as conn:
        conn.execute("INSERT INTO projects (name, path, created_at) VALUES ('p', '/p', 0)")
    yield store
    store.close()


def _run(store, samples: list[int], peak: int | None) -> int:
    run_id = run_store.create(
        store, 1, "lightgbm", status="succeeded", event_message="run {id}", max_rss_bytes=peak
    )
    with store.write() as conn:
        run_store.add_samples(conn, [_sample(run_id, rss) for rss in samples])
    return run_id


@pytest.mark.parametrize("samples", [[], [0]], ids=["no sample", "read as it exited"])
def test_an_unsampled_run_shows_its_trainers_peak(store, samples):
    found = resources(store, run_store.get(store, _run(store, samples, PEAK)))
    assert found["samples"] == len(samples)
    assert found["rss_bytes_max"] == found["peak_process_rss_bytes"] == PEAK


def test_a_sampled_run_shows_its_process_trees_peak(store):
    found = resources(store, run_store.get(store, _run(store, [1000, 5000, 0], PEAK)))
    assert found["rss_bytes_max"] == 5000  # the tree's sampled peak, not the process's
    assert found["peak_process_rss_bytes"] == PEAK


def test_without_samples_or_usage_nothing_is_made_up(store):
    found = resources(store, run_store.get(store, _run(store, [], None)))
    assert found["rss_bytes_max"] is None
