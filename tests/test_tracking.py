"""The tracking API for training code: `import workbench as wb`."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import workbench as wb
import workbench.tracking as wb_tracking
from workbench.core import paths
from workbench.core.errors import NotFoundError, UsageError
from workbench.projects import add_project
from workbench.runs.launch import create_run
from workbench.store import open_store
from workbench.store.metrics import latest_values, series
from workbench.templates import init_project


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return init_project(tmp_path / "p", "lightgbm")


def points(run_id: int, key: str) -> list[tuple]:
    """(step, value) of every logged point of one series, in logged order."""
    store = open_store(migrate=False)
    try:
        found = series(store.conn, run_id, key, max_points=1_000_000)
    finally:
        store.close()
    return [(p["x"], p["last"]) for p in found["points"]]


def latest(run_id: int) -> dict:
    """The latest value of each metric key of a run."""
    store = open_store(migrate=False)
    try:
        return latest_values(store.conn, [run_id]).get(run_id, {})
    finally:
        store.close()


def run_row(run_id: int) -> dict:
    store = open_store(migrate=False)
    try:
        return store.row("SELECT * FROM runs WHERE id = ?", (run_id,))
    finally:
        store.close()


def stored_params(run_id: int) -> dict:
    store = open_store(migrate=False)
    try:
        return {
            r["key"]: json.loads(r["value"])
            for r in store.rows("SELECT key, value FROM params WHERE run_id = ?", (run_id,))
        }
    finally:
        store.close()


# --- start_run in this process ----------------------------------------------------


def test_start_run_records_params_metrics_and_artifacts(project, tmp_path):
    plot = tmp_path / "roc.png"
    plot.write_bytes(b"\x89PNG fake image")

    with wb.start_run(project=project, params={"seed": 1}) as run:
        assert wb.active_run() is run
        assert wb.params() == {"seed": 1}
        assert wb.project_dir() == project
        assert wb.project_config()["data"]["target"] == "diagnosis"
        wb.log_params({"lr": 0.1, "layers": [64, 32]})
        wb.log_metric("loss", 0.5, step=1)
        wb.log_metric("loss", 0.4, step=2)
        wb.log_metrics({"acc": 0.9, "f1": 0.8}, step=2)
        wb.log_metric("auc", 0.97)
        sha = wb.log_artifact(plot)
        wb.log_artifact(plot, name="plots/copy.png", kind="plot")
        run_id = run.id

    assert stored_params(run_id) == {"seed": 1, "lr": 0.1, "layers": [64, 32]}
    assert points(run_id, "loss") == [(1, 0.5), (2, 0.4)]
    assert points(run_id, "acc") == [(2, 0.9)]
    assert latest(run_id) == {"loss": 0.4, "acc": 0.9, "f1": 0.8, "auc": 0.97}
    store = open_store()
    try:
        artifacts = store.rows(
            "SELECT name, sha256, size, kind FROM artifacts WHERE run_id = ? ORDER BY name",
            (run_id,),
        )
        project_row = store.row("SELECT * FROM projects WHERE name = 'p'")
    finally:
        store.close()
    size = len(plot.read_bytes())
    assert artifacts == [
        {"name": "plots/copy.png", "sha256": sha, "size": size, "kind": "plot"},
        {"name": "roc.png", "sha256": sha, "size": size, "kind": None},
    ]
    assert paths.artifact_file(sha).read_bytes() == plot.read_bytes()
    assert project_row["path"] == str(project)  # registered on the way

    row = run_row(run_id)
    assert row["status"] == "succeeded"
    assert row["exit_code"] == 0
    assert row["project_id"] == project_row["id"]
    assert row["started_at"] <= row["ended_at"]


def test_a_run_whose_block_raises_is_failed_and_keeps_what_it_logged(project):
    with pytest.raises(RuntimeError, match="diverged"), wb.start_run(project=project) as run:
        wb.log_metric("loss", 3.0, step=1)
        raise RuntimeError("diverged")

    row = run_row(run.id)
    assert row["status"] == "failed"
    assert row["exit_code"] not in (None, 0)
    assert row["ended_at"] is not None
    assert points(run.id, "loss") == [(1, 3.0)]


def test_start_run_takes_a_registered_projects_name(project):
    store = open_store()
    add_project(store, project)
    store.close()

    with wb.start_run(project="p") as run:
        wb.log_metric("x", 1.0)

    assert run_row(run.id)["status"] == "succeeded"
    assert latest(run.id) == {"x": 1.0}


def test_start_run_with_an_unknown_project_is_not_found():
    with pytest.raises(NotFoundError, match="nope"), wb.start_run(project="nope"):
        pass


def test_runs_do_not_nest(project):
    with wb.start_run(project=project) as outer:
        with pytest.raises(UsageError, match=f"run {outer.id}"), wb.start_run(project=project):
            pass
        wb.log_metric("still", 1.0)  # the outer run goes on

    assert latest(outer.id) == {"still": 1.0}


@pytest.mark.parametrize("value", ["abc", None, object(), [1, 2], 10**400])
def test_a_non_numeric_value_is_refused_with_one_warning_and_the_rest_kept(project, value):
    with (
        pytest.warns(wb_tracking.MetricWarning, match="loss") as caught,
        wb.start_run(project=project) as run,
    ):
        wb.log_metric("loss", value)
        wb.log_metrics({"good": 1.0, "bad": value}, step=1)
        wb.log_metric("loss", value, step=2)
        wb.log_metric("after", 2.0, step=1)  # the run is still usable

    assert len([w for w in caught if w.category is wb_tracking.MetricWarning]) == 1
    assert run_row(run.id)["status"] == "succeeded"
    assert points(run.id, "after") == [(1, 2.0)]
    assert latest(run.id) == {"after": 2.0, "good": 1.0}  # only the bad points are gone


def test_nan_is_stored_as_a_missing_value(project):
    with (
        pytest.warns(wb_tracking.MetricWarning, match="stored as missing") as caught,
        wb.start_run(project=project) as run,
    ):
        wb.log_metric("loss", float("nan"), step=1)
        wb.log_metric("loss", 0.5, step=2)
        wb.log_metric("loss", float("-inf"), step=3)

    assert caught[0].filename == __file__  # it points at the caller's line

    assert points(run.id, "loss") == [(1, None), (2, 0.5), (3, None)]


def _log_good_and_bad(n: int = 100) -> None:
    """n good points of "loss" with every kind of bad point mixed in."""
    for i in range(n):
        wb.log_metric("loss", i / n, step=i)
        if i == 10:
            wb.log_metric("loss", 1.0, step=2**63)  # beyond SQLite's INTEGER
            wb.log_metric("loss", 1.0, step=-(2**63) - 1)
            wb.log_metric("loss", 1.0, step=1.5)
            wb.log_metric("loss", 1.0, step="7")
            wb.log_metric(("a", "tuple"), 1.0, step=i)
            wb.log_metric("", 1.0, step=i)
            wb.log_metric("k" * 10_000, 1.0, step=i)
            wb.log_metric("line\nbreak", 1.0, step=i)
            wb.log_metric("loss2", None, step=i)
            wb.log_metrics({"acc": 0.5, None: 1.0, "f1": "high"}, step=2**64)
            wb.log_metrics({"acc": 0.5, 7: 0.25, "f1": object()}, step=i)
            wb.log_metric("inf", float("inf"), step=i)


def test_bad_points_never_cost_the_good_ones_of_an_inline_run(project):
    with pytest.warns(wb_tracking.MetricWarning) as caught, wb.start_run(project=project) as run:
        _log_good_and_bad()

    assert run_row(run.id)["status"] == "succeeded"
    assert points(run.id, "loss") == [(i, i / 100) for i in range(100)]
    assert points(run.id, "7") == [(10, 0.25)]  # a number as key is its string
    assert points(run.id, "acc") == [(10, 0.5)]
    assert points(run.id, "inf") == [(10, None)]  # stored without a value
    assert set(latest(run.id)) == {"loss", "7", "acc", "inf"}
    kinds = [str(w.message) for w in caught if w.category is wb_tracking.MetricWarning]
    # one warning per kind of problem, not one per point
    assert len(kinds) == 4, kinds
    assert any("64-bit" in k for k in kinds)


def test_step_at_the_edges_of_sqlites_range_is_kept(project):
    with wb.start_run(project=project) as run:
        wb.log_metric("edge", 1.0, step=2**63 - 1)
        wb.log_metric("edge", 2.0, step=-(2**63))
        wb.log_metric("edge", 3.0, step=4.0)  # a whole float is a step

    assert points(run.id, "edge") == [(2**63 - 1, 1.0), (-(2**63), 2.0), (4, 3.0)]


def test_a_flush_is_split_into_short_transactions(project, monkeypatch):
    monkeypatch.setattr(wb_tracking, "TXN_ROWS", 1000)
    commits = []
    with wb.start_run(project=project) as run:
        real_write = run._store.write

        def counting_write(*args, **kwargs):
            commits.append(1)
            return real_write(*args, **kwargs)

        monkeypatch.setattr(run._store, "write", counting_write)
        for i in range(5000):
            wb.log_metrics({"a": i, "b": -i}, step=i)
        for k in range(300):
            wb.log_metric(f"key{k}", k)
        wb.flush()

    assert len(commits) >= 10  # 10,000 points and 300 keys: never one big transaction
    assert points(run.id, "a")[-1] == (4999, 4999.0)
    assert len(points(run.id, "b")) == 5000
    assert len(latest(run.id)) == 302


def test_a_bad_piece_is_dropped_with_a_warning_and_the_rest_is_written(project, monkeypatch):
    from workbench.store import metrics as store_metrics

    real = store_metrics.append_points

    def fussy(conn, run_id, points):
        if "poison" in points:
            raise ValueError("cannot store this")
        return real(conn, run_id, points)

    monkeypatch.setattr(store_metrics, "append_points", fussy)
    with (
        pytest.warns(wb_tracking.MetricWarning, match="poison"),
        wb.start_run(project=project) as run,
    ):
        for i in range(50):
            wb.log_metrics({"before": i, "poison": i, "after": i}, step=i)

    assert run_row(run.id)["status"] == "succeeded"
    assert len(points(run.id, "before")) == 50
    assert len(points(run.id, "after")) == 50
    assert "poison" not in latest(run.id)


def test_a_failing_store_keeps_the_buffer_for_the_next_flush(project, monkeypatch):
    import sqlite3

    from workbench.store import metrics as store_metrics

    real = store_metrics.append_points
    failures = [1, 1]

    def full_once(conn, run_id, points):
        if failures:
            failures.pop()
            raise sqlite3.OperationalError("database or disk is full")
        return real(conn, run_id, points)

    monkeypatch.setattr(store_metrics, "append_points", full_once)
    with wb.start_run(project=project) as run:
        for i in range(20):
            wb.log_metric("loss", i, step=i)
        with pytest.raises(sqlite3.OperationalError):
            wb.flush()
        wb.log_metric("loss", 20, step=20)
        with pytest.raises(sqlite3.OperationalError):
            wb.flush()
        wb.flush()

    assert points(run.id, "loss") == [(i, float(i)) for i in range(21)]  # in logged order


def test_json_output_never_holds_nan_or_infinity(cli, project):
    with pytest.warns(wb_tracking.MetricWarning), wb.start_run(project=project) as run:
        wb.log_metric("loss", float("inf"), step=1)
        wb.log_metric("ok", 1e308, step=1)
        wb.log_metric("ok", 1e308, step=2)  # their sum overflows to inf
        wb.log_params({"lr": float("nan")})

    for args in (
        ("run", "show", str(run.id), "--json"),
        ("run", "list", "--json"),
        ("run", "metrics", str(run.id), "ok", "--json"),
    ):
        out = cli(*args, check=True).stdout
        document = json.loads(out, parse_constant=lambda c, a=args: pytest.fail(f"{c} in {a}"))
        assert document is not None


@pytest.mark.parametrize(
    "call",
    [
        lambda: wb.log_metric("loss", 0.3),
        lambda: wb.log_metrics({"loss": 0.3}),
        lambda: wb.log_params({"lr": 0.1}),
        lambda: wb.log_artifact(__file__),
        lambda: wb.params(),
        lambda: wb.flush(),
    ],
)
def test_outside_any_run_the_api_explains_how_to_start_one(call):
    with pytest.raises(UsageError) as caught:
        call()

    message = caught.value.message
    assert "no active run" in message
    assert "workbench run start" in message
    assert "start_run" in message


def test_after_a_run_ends_logging_is_refused_again(project):
    with wb.start_run(project=project):
        wb.log_metric("x", 1.0)

    with pytest.raises(UsageError, match="no active run"):
        wb.log_metric("x", 2.0)


# --- artifacts ---------------------------------------------------------------------


def test_identical_artifacts_share_one_stored_file(project, tmp_path, wb_home):
    first, second, other = tmp_path / "model.txt", tmp_path / "copy.bin", tmp_path / "other.txt"
    first.write_text("tree 0\nsplit 3\n")
    second.write_text("tree 0\nsplit 3\n")
    other.write_text("something else\n")

    with wb.start_run(project=project) as run_a:
        sha_a = wb.log_artifact(first)
    with wb.start_run(project=project) as run_b:
        sha_b = wb.log_artifact(second)
        sha_other = wb.log_artifact(other)

    assert sha_a == sha_b != sha_other
    stored = sorted(p for p in (wb_home / "artifacts").rglob("*") if p.is_file())
    assert stored == sorted([paths.artifact_file(sha_a), paths.artifact_file(sha_other)])
    assert paths.artifact_file(sha_a).read_text() == "tree 0\nsplit 3\n"
    store = open_store()
    try:
        rows = store.rows("SELECT run_id, name, sha256 FROM artifacts ORDER BY run_id, name")
    finally:
        store.close()
    assert rows == [
        {"run_id": run_a.id, "name": "model.txt", "sha256": sha_a},
        {"run_id": run_b.id, "name": "copy.bin", "sha256": sha_a},
        {"run_id": run_b.id, "name": "other.txt", "sha256": sha_other},
    ]


def test_an_artifact_is_copied_when_logged(project, tmp_path):
    model = tmp_path / "model.txt"
    model.write_text("version 1")

    with wb.start_run(project=project):
        sha = wb.log_artifact(model)
        model.write_text("version 2, written right after logging")

    assert paths.artifact_file(sha).read_text() == "version 1"


def test_logging_a_missing_artifact_is_a_usage_error(project, tmp_path):
    with wb.start_run(project=project), pytest.raises(UsageError, match="missing.png"):
        wb.log_artifact(tmp_path / "missing.png")


# --- a training process attached to a run (as the supervisor starts it) --------------

# argv: mode, number of points. Modes:
#   visible - log, then sleep without flushing (the background thread writes)
#   flush   - log, flush, then sleep; nothing else would write
#   buffer  - log and sleep; nothing but the exit hooks would write
_CHILD = """
import sys, time
import workbench as wb
import workbench.tracking

mode, n = sys.argv[1], int(sys.argv[2])
if mode != "visible":
    workbench.tracking.FLUSH_INTERVAL = 3600  # no background flush during the test
for i in range(n):
    wb.log_metric("loss", 1.0 / (i + 1), step=i)
if mode == "flush":
    wb.flush()
    print("flushed", flush=True)
else:
    print("logged", wb.params()["lr"], flush=True)
time.sleep(600)  # until the test kills it
"""

# Logs and flushes in a loop, so a SIGTERM lands during a flush most of the time.
_FLUSH_LOOP = """
import workbench as wb
wb.log_metric("loss", 0.0, step=0)
wb.flush()
print("looping", flush=True)
i = 0
while True:
    i += 1
    wb.log_metric("loss", 1.0 / i, step=i)
    wb.flush()
"""


@pytest.fixture
def attached_env(project) -> tuple[int, dict[str, str]]:
    """A queued run and the environment a supervisor gives its trainer."""
    store = open_store()
    try:
        add_project(store, project)
        run_id = create_run(store, "p", {})
    finally:
        store.close()
    env = dict(
        os.environ,
        WORKBENCH_RUN_ID=str(run_id),
        WORKBENCH_PROJECT_DIR=str(project),
        WORKBENCH_PARAMS=json.dumps({"lr": 0.25}),
    )
    return run_id, env


@pytest.fixture
def spawn():
    """Start Python children; each is killed at the end of the test."""
    started: list[subprocess.Popen] = []

    def start(script: str, *args: str, env: dict[str, str]) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-c", script, *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def read_line(proc: subprocess.Popen, timeout: float = 120) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, f"no output from the child within {timeout} s"
    line = proc.stdout.readline()
    assert line, f"the child exited early:\n{proc.stderr.read()}"
    return line.strip()


def test_points_are_visible_to_other_processes_without_a_flush(attached_env, spawn):
    run_id, env = attached_env
    child = spawn(_CHILD, "visible", "1000", env=env)

    assert read_line(child) == "logged 0.25"  # WORKBENCH_PARAMS reached wb.params()
    deadline = time.monotonic() + 120  # the background flush, on a loaded machine
    while len(points(run_id, "loss")) < 1000 and time.monotonic() < deadline:
        time.sleep(0.05)

    assert points(run_id, "loss") == [(i, 1.0 / (i + 1)) for i in range(1000)]
    assert child.poll() is None  # it wrote them while still running


def test_flushed_points_survive_sigkill(attached_env, spawn):
    run_id, env = attached_env
    child = spawn(_CHILD, "flush", "500", env=env)

    assert read_line(child) == "flushed"
    child.kill()
    child.wait(timeout=60)

    assert len(points(run_id, "loss")) == 500


def test_buffered_points_are_written_on_sigterm(attached_env, spawn):
    run_id, env = attached_env
    child = spawn(_CHILD, "buffer", "500", env=env)

    assert read_line(child).startswith("logged")
    child.send_signal(signal.SIGTERM)
    child.wait(timeout=60)

    # it still ends as killed by the signal (or with the shell's 128 + signal)
    assert child.returncode in (-signal.SIGTERM, 128 + signal.SIGTERM)
    assert points(run_id, "loss") == [(i, 1.0 / (i + 1)) for i in range(500)]


def test_sigterm_during_a_flush_still_exits(attached_env, spawn):
    # The SIGTERM handler flushes; if the signal interrupts a flush (or a log
    # call) that holds the buffer's locks, the handler must not wait on them forever.
    run_id, env = attached_env
    children = [spawn(_FLUSH_LOOP, env=env) for _ in range(2)]
    for child in children:
        assert read_line(child) == "looping"
    time.sleep(0.2)

    for child in children:
        child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 60  # the final flush is small; a hung child takes forever
    exited = []
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        exited.append(child.returncode)

    assert None not in exited, f"a child hung after SIGTERM (exit codes: {exited})"
    assert set(exited) <= {-signal.SIGTERM, 128 + signal.SIGTERM}
    assert len(points(run_id, "loss")) >= 2


# A stand-in supervisor (no prctl: a plain Popen) that starts a tracked trainer.
_FAKE_SUPERVISOR = """
import os, subprocess, sys, time
env = dict(os.environ, WORKBENCH_SUPERVISOR_PID=str(os.getpid()))
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]], env=env)
print(child.pid, flush=True)
time.sleep(600)
"""

_TRACKED_FOREVER = """
import time
import workbench as wb
i = 0
while True:
    wb.log_metric("loss", 1.0, step=i)
    i += 1
    time.sleep(0.01)
"""


def test_a_trainer_stops_when_its_supervisor_is_gone_even_without_the_kernels_help(
    attached_env, spawn
):
    run_id, env = attached_env
    supervisor = spawn(_FAKE_SUPERVISOR, _TRACKED_FOREVER, env=env)
    trainer = int(read_line(supervisor))
    deadline = time.monotonic() + 120
    while not points(run_id, "loss"):  # it is logging
        assert time.monotonic() < deadline, "the trainer never logged"
        time.sleep(0.05)

    supervisor.kill()
    deadline = time.monotonic() + 120
    while _alive(trainer):
        assert time.monotonic() < deadline, "the trainer went on without its supervisor"
        time.sleep(0.05)

    logged = points(run_id, "loss")
    assert [step for step, _ in logged] == list(range(len(logged)))  # flushed on its way out


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_every_point_of_a_number_key_is_kept(project):
    with wb.start_run(project=project) as run:
        for i in range(5):
            wb.log_metric(7, i / 10, step=i)
        wb.log_metrics({7: 1.0, "7.5": 2.0}, step=5)

    assert points(run.id, "7") == [(i, i / 10) for i in range(5)] + [(5, 1.0)]


# --- the call path: no lock, no wake-up per call; threads; exit ---------------------------


def test_points_from_several_threads_all_arrive_in_order_per_thread(project):
    import threading

    threads, per_thread = 4, 3000
    start = threading.Barrier(threads + 1)

    def work(t: int) -> None:
        start.wait()
        for i in range(per_thread):
            wb.log_metric("shared", i, step=t * 1_000_000 + i)
            wb.log_metrics({f"own{t}": i, "shared10": t}, step=i)

    with wb.start_run(project=project) as run:
        workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        start.wait()
        while any(w.is_alive() for w in workers):
            wb.flush()  # takes the buffers while the threads append to them
        for w in workers:
            w.join()

    shared = points(run.id, "shared")
    assert len(shared) == threads * per_thread
    for t in range(threads):
        mine = [(s - t * 1_000_000, v) for s, v in shared if s // 1_000_000 == t]
        assert mine == [(i, float(i)) for i in range(per_thread)]  # all, in logged order
        assert points(run.id, f"own{t}") == [(i, float(i)) for i in range(per_thread)]
    assert len(points(run.id, "shared10")) == threads * per_thread
    assert "log_metric" in vars(wb)  # after its first use, a plain attribute of the package


def test_the_flusher_is_woken_only_when_the_threshold_is_crossed(project, monkeypatch):
    monkeypatch.setattr(wb_tracking, "FLUSH_INTERVAL", 3600)  # no timer flush in the test
    monkeypatch.setattr(wb_tracking, "FLUSH_AT_POINTS", 1000)
    with wb.start_run(project=project) as run:
        wakes = []
        real_set = run._wake.set
        monkeypatch.setattr(run._wake, "set", lambda: (wakes.append(1), real_set()))
        for i in range(999):
            wb.log_metric("loss", i, step=i)
        assert wakes == [] and run.wakeups == 0  # 999 calls, not one wake-up
        for i in range(999, 5500):
            wb.log_metric("loss", i, step=i)
        wb.log_metrics({"a": 1.0, "b": 2.0}, step=0)
        # at most once per 1,000 points logged (5,502 points: 5 crossings at most)
        assert 1 <= len(wakes) == run.wakeups <= 5

    assert points(run.id, "loss") == [(i, float(i)) for i in range(5500)]


def test_buckets_kept_over_many_flushes_match_the_points(project):
    import math

    from workbench.store.metrics import BUCKET_SIZES

    cuts = {1, 63, 64, 65, 700, 1024, 1500, 4000}
    with (
        pytest.warns(wb_tracking.MetricWarning, match="stored as missing"),
        wb.start_run(project=project) as run,
    ):
        for i in range(5000):
            wb.log_metric("loss", float("nan") if i % 97 == 5 else math.sin(i) * i, step=i * 2)
            if i in cuts:
                wb.flush()

    logged = [(i * 2, None if i % 97 == 5 else math.sin(i) * i) for i in range(5000)]
    from workbench.store.metrics import buckets, series_id

    store = open_store(migrate=False)
    try:
        sid, _ = series_id(store.conn, run.id, "loss")
        got = [(size, *b) for size in BUCKET_SIZES for b in buckets(store.conn, sid, size)]
    finally:
        store.close()
    expected = []
    for size in BUCKET_SIZES:
        for bucket in range(math.ceil(len(logged) / size)):
            part = logged[bucket * size : (bucket + 1) * size]
            present = [v for _, v in part if v is not None]
            expected.append(
                (size, bucket, len(part), part[0][0], part[-1][0], min(present), max(present),
                 math.fsum(present), len(present), part[-1][1])
            )
    got = [g[:5] + g[6:] for g in got]  # without the bucket's last time
    assert [g[:7] + g[8:] for g in got] == [e[:7] + e[8:] for e in expected]
    assert [g[7] for g in got] == pytest.approx([e[7] for e in expected], rel=1e-12, abs=1e-9)


_EXITS = """
import workbench as wb
import workbench.tracking
workbench.tracking.FLUSH_INTERVAL = 3600  # only the exit hook writes
for i in range(700):
    wb.log_metric("loss", i / 10, step=i)
wb.log_metrics({"a": 1.0, "b": 2.0}, step=700)
"""


def test_a_process_that_exits_flushes_what_it_logged(attached_env):
    run_id, env = attached_env
    done = subprocess.run(
        [sys.executable, "-c", _EXITS], env=env, capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr
    assert points(run_id, "loss") == [(i, i / 10) for i in range(700)]
    assert latest(run_id) == {"a": 1.0, "b": 2.0, "loss": 69.9}


_IMPORTS = """
import sys
import workbench as wb
with wb.start_run(project=sys.argv[1]) as run:
    wb.log_metric("loss", 1.0)
print(" ".join(m for m in ("psutil", "workbench.projects", "workbench.config.project",
                           "workbench.models.registry") if m in sys.modules))
"""


def test_start_run_in_a_registered_project_imports_neither_psutil_nor_the_config(project):
    store = open_store()
    try:
        add_project(store, project)
    finally:
        store.close()
    done = subprocess.run(
        [sys.executable, "-c", _IMPORTS, str(project)],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_the_process_start_time_is_the_one_psutil_gives():
    import psutil

    assert wb_tracking._process_started_at() == pytest.approx(
        psutil.Process().create_time(), abs=0.02
    )


def test_points_are_written_whole_under_a_low_sqlite_variable_limit(project):
    import sqlite3

    from workbench.store.metrics import append_points

    with wb.start_run(project=project) as run:
        pass
    store = open_store(migrate=False)
    try:
        store.conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)  # SQLite before 3.32
        logged = [(i, 1000.0 + i, i / 7) for i in range(1234)]
        for start, end in ((0, 1), (1, 234), (234, 1234)):  # 1 row; 128 + 64 + ... rows
            with store.write() as conn:
                append_points(conn, run.id, {"loss": logged[start:end]})
    finally:
        store.close()

    assert points(run.id, "loss") == [(i, i / 7) for i in range(1234)]
