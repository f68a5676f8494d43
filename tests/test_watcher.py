"""The data-folder watcher: when a file counts as complete, bursts, polling, the daemon.

The unit tests drive the real watchdog observers on temporary folders with a
fake pipeline (a `submit` that only records its calls); the daemon and
integration tests run the real CLI.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from _watch_fixtures import start_warm_runner, supervised_run
from wbtest import REPO, wb_auto

from workbench.automation.watcher import PipelineWorker, Watcher, is_data_file, polling_reason


@pytest.fixture
def cli():
    """Runs, the pipeline, the watcher and the server start real processes; the
    other commands run in this one (a subprocess is not the point here)."""
    return wb_auto


def wait_until(predicate, timeout: float = 120.0, poll: float = 0.05):
    """The predicate's value once truthy, else its last value after `timeout`
    (generous: a loaded machine delays the watcher's threads; a test that passes
    waits only as long as the condition takes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    return predicate()


class FakePipeline:
    """Stands in for `pipeline.submit` / `unprocessed_files`: records, trains nothing."""

    def __init__(self, unprocessed: list[Path] | None = None) -> None:
        self.calls: list[tuple[str, list[Path], str]] = []
        self.lock = threading.Lock()
        self.unprocessed_files = unprocessed or []

    def submit(self, project: str, files: list[Path], trigger: str) -> int:
        with self.lock:
            self.calls.append((project, list(files), trigger))
            return len(self.calls)

    def unprocessed(self, project: str) -> list[Path]:
        return list(self.unprocessed_files)

    def count(self) -> int:
        with self.lock:
            return len(self.calls)


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """(watched folder, a folder outside it on the same filesystem)."""
    watched, outside = tmp_path / "incoming", tmp_path / "staging"
    watched.mkdir()
    outside.mkdir()
    return watched, outside


@pytest.fixture
def start_watcher():
    started: list[Watcher] = []

    def start(projects, fake: FakePipeline, **options) -> Watcher:
        messages: list[str] = []
        options.setdefault("debounce", 0.2)
        options.setdefault("quiet", 1.0)
        watcher = Watcher(
            projects,
            fake.submit,
            unprocessed=fake.unprocessed,
            report=messages.append,
            **options,
        )
        watcher.messages = messages  # type: ignore[attr-defined]
        watcher.start()
        started.append(watcher)
        return watcher

    yield start
    for watcher in started:
        watcher.stop()


def write_csv(path: Path, rows: int = 3) -> Path:
    path.write_text("x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(rows)))
    return path


def test_data_file_names():
    assert is_data_file("batch.csv") and is_data_file("b.CSV.gz") and is_data_file("b.parquet")
    assert is_data_file("b.pq")
    for name in (".hidden.csv", "b.csv.part", "b.csv.tmp", "b.csv~", "b.csv.crdownload", "b.txt"):
        assert not is_data_file(name), name


def test_network_filesystems_are_polled():
    mounts = (
        "/dev/sda1 / ext4 rw 0 0\n"
        "server:/export /mnt/shared nfs4 rw 0 0\n"
        "//nas/drop /mnt/my\\040drop cifs rw 0 0\n"
        "/dev/sdb1 /mnt/shared/local ext4 rw 0 0\n"
    )
    assert "nfs4" in polling_reason(Path("/mnt/shared/incoming"), mounts)
    assert "cifs" in polling_reason(Path("/mnt/my drop/x"), mounts)
    assert polling_reason(Path("/mnt/shared/local/incoming"), mounts) is None  # longest mount
    assert polling_reason(Path("/home/me/data"), mounts) is None


def test_moved_in_file_is_submitted_once(folders, start_watcher):
    watched, outside = folders
    fake = FakePipeline()
    watcher = start_watcher([("demo", [watched])], fake)
    assert [w.mode for w in watcher.folders] == ["inotify"]

    os.replace(write_csv(outside / "batch.csv"), watched / "batch.csv")
    assert wait_until(lambda: fake.count() == 1, 120)
    assert fake.calls == [("demo", [watched / "batch.csv"], "watch")]
    assert any("batch.csv is complete (moved in)" in m for m in watcher.messages)

    # A rename inside the folder (a downloader's .part) counts as a move in, too.
    write_csv(watched / "second.csv.part")
    os.replace(watched / "second.csv.part", watched / "second.csv")
    # Temporary and hidden names never count.
    write_csv(watched / ".hidden.csv")
    write_csv(watched / "third.csv.tmp")
    assert wait_until(lambda: fake.count() == 2, 120)
    assert fake.calls[1][1] == [watched / "second.csv"]

    # A metadata change leaves size and mtime alone: the same file is not handed over again.
    os.chmod(watched / "batch.csv", 0o600)
    time.sleep(1.5)
    assert fake.count() == 2


def test_slow_write_waits_until_the_file_is_closed(folders, start_watcher):
    watched, _ = folders
    fake = FakePipeline()
    # The quiet period is ten gaps between chunks, so a loaded machine that
    # delays one write does not make the file look complete.
    start_watcher([("demo", [watched])], fake, quiet=3.0)

    with open(watched / "slow.csv", "w") as handle:
        handle.write("x,y\n")
        handle.flush()
        for i in range(10):  # ~3 s, a chunk every 0.3 s: never quiet for 3 s
            time.sleep(0.3)
            handle.write(f"{i},{i % 2}\n" * 100)
            handle.flush()
            assert fake.count() == 0, "submitted while the file was still being written"
    assert wait_until(lambda: fake.count() == 1, 120)
    assert fake.calls == [("demo", [watched / "slow.csv"], "watch")]
    time.sleep(1.5)
    assert fake.count() == 1


def test_a_file_left_open_for_writing_is_not_complete(folders, start_watcher):
    watched, _ = folders
    fake = FakePipeline()
    watcher = start_watcher([("demo", [watched])], fake, quiet=0.5)
    assert watcher.writer_check.available  # Linux: /proc shows open writers
    with open(watched / "open.csv", "w") as handle:
        handle.write("x,y\n1,0\n")
        handle.flush()
        # Unchanged for well over the quiet period, but still open for writing.
        assert wait_until(lambda: any("still open for writing" in m for m in watcher.messages), 120)
        assert not wait_until(lambda: fake.count() > 0, 2)
        closed = time.monotonic()
    assert wait_until(lambda: fake.count() == 1, 120)
    assert time.monotonic() - closed >= 0.5  # the quiet period runs from the close
    assert fake.calls[0][1] == [watched / "open.csv"]


def test_without_proc_the_quiet_period_alone_completes_a_file_left_open(folders, start_watcher):
    from workbench.automation.writers import probe

    watched, _ = folders
    fake = FakePipeline()
    blind = probe(str(watched / "no-proc-here"))
    assert not blind.available
    watcher = start_watcher([("demo", [watched])], fake, quiet=0.5, writer_check=blind)
    assert "only" in watcher.completion_rule() and "cannot be seen" in watcher.completion_rule()
    assert any("open writers cannot be seen" in m for m in watcher.messages)
    with open(watched / "open.csv", "w") as handle:
        handle.write("x,y\n1,0\n")
        handle.flush()
        assert wait_until(lambda: fake.count() == 1, 120)  # unchanged for 0.5 s, still open
    assert fake.calls[0][1] == [watched / "open.csv"]


def test_burst_of_fifty_files_is_one_submission(folders, start_watcher):
    watched, outside = folders
    fake = FakePipeline()
    start_watcher([("demo", [watched])], fake, debounce=0.5)
    staged = [write_csv(outside / f"part-{i:02d}.csv") for i in range(50)]
    for path in staged:
        os.replace(path, watched / path.name)
    assert wait_until(lambda: fake.count() >= 1, 120)
    time.sleep(1.0)  # a second submission would come within the debounce
    assert fake.count() == 1
    project, files, _ = fake.calls[0]
    assert project == "demo"
    assert sorted(files) == sorted(watched / p.name for p in staged)


def test_projects_are_batched_separately(tmp_path, start_watcher):
    one, two = tmp_path / "one", tmp_path / "two"
    fake = FakePipeline()
    start_watcher([("one", [one]), ("two", [two])], fake)  # creates missing folders
    write_csv(tmp_path / "a.csv")
    write_csv(tmp_path / "b.csv")
    os.replace(tmp_path / "a.csv", one / "a.csv")
    os.replace(tmp_path / "b.csv", two / "b.csv")
    assert wait_until(lambda: fake.count() == 2, 120)
    assert sorted((p, f) for p, f, _ in fake.calls) == [
        ("one", [one / "a.csv"]),
        ("two", [two / "b.csv"]),
    ]


def test_falls_back_to_polling_when_inotify_watches_run_out(folders, start_watcher, monkeypatch):
    watched, _ = folders

    def no_watches(self, handler, folder):
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr(Watcher, "_schedule_inotify", no_watches)
    fake = FakePipeline()
    watcher = start_watcher([("demo", [watched])], fake, quiet=0.5, poll_interval=0.2)
    [folder] = watcher.folders
    assert folder.mode == "polling"
    assert "max_user_watches" in folder.reason
    assert any("polling" in m and "max_user_watches" in m for m in watcher.messages)

    write_csv(watched / "polled.csv")  # created and closed: only the poller can see it
    assert wait_until(lambda: fake.count() == 1, 120)
    assert fake.calls == [("demo", [watched / "polled.csv"], "watch")]


def test_rescan_feeds_missed_files_through_the_same_check(folders, start_watcher):
    watched, _ = folders
    missed = write_csv(watched / "missed.csv")  # there before the watcher started
    fake = FakePipeline(unprocessed=[missed])
    watcher = start_watcher([("demo", [watched])], fake, quiet=0.3)
    assert wait_until(lambda: fake.count() == 1, 120)
    assert fake.calls == [("demo", [missed], "rescan")]
    assert any("rescan found 1 file" in m for m in watcher.messages)


def test_a_deleted_and_remade_folder_is_watched_again(folders, start_watcher):
    watched, outside = folders
    fake = FakePipeline()
    watcher = start_watcher([("demo", [watched])], fake)  # the rescan is 30 s away
    shutil.rmtree(watched)
    assert wait_until(lambda: any("is gone" in m for m in watcher.messages), 120)
    watched.mkdir()
    assert wait_until(lambda: any("is back; watching it again" in m for m in watcher.messages), 120)

    # Only the new watch can see this: the fake's rescan reports nothing unprocessed.
    os.replace(write_csv(outside / "after.csv"), watched / "after.csv")
    assert wait_until(lambda: fake.count() == 1, 120)
    assert fake.calls == [("demo", [watched / "after.csv"], "watch")]


def test_a_folder_replaced_at_once_is_watched_again_without_waiting_for_the_rescan(
    folders, start_watcher
):
    watched, outside = folders
    fake = FakePipeline()
    watcher = start_watcher([("demo", [watched])], fake)  # the rescan is 30 s away
    shutil.rmtree(watched)
    watched.mkdir()  # may well get the old folder's inode back
    back = wait_until(lambda: any("is back; watching it again" in m for m in watcher.messages), 120)
    assert back, watcher.messages
    os.replace(write_csv(outside / "after.csv"), watched / "after.csv")
    assert wait_until(lambda: fake.count() == 1, 120)
    assert fake.calls == [("demo", [watched / "after.csv"], "watch")]


def test_pipeline_worker_runs_at_start_and_when_kicked():
    calls: list[float] = []
    ran = threading.Event()
    stop = threading.Event()

    class Store:
        closed = False

        def close(self):
            Store.closed = True

    def run_pending(store, stop_event):
        assert isinstance(store, Store) and stop_event is stop
        calls.append(time.monotonic())
        ran.set()

    worker = PipelineWorker(run_pending, Store, stop)
    worker.start()
    assert wait_until(lambda: len(calls) == 1, 120)  # resumes interrupted pipelines at start
    time.sleep(0.3)
    assert len(calls) == 1  # and then waits, without polling
    worker.kick()
    assert wait_until(lambda: len(calls) == 2, 120)
    stop.set()
    assert worker.stop(timeout=60)
    assert Store.closed


# -- the daemon ---------------------------------------------------------------------

PROJECT_TOML = """\
[project]
name = "{name}"
[data]
train = "data/train.csv"
target = "y"
watch = ["data/incoming"]
[train]
trainer = "script"
script = "train.py"
"""


def script_project(root: Path, name: str = "watched") -> Path:
    folder = root / name
    (folder / "data" / "incoming").mkdir(parents=True)
    write_csv(folder / "data" / "train.csv", rows=20)
    (folder / "workbench.toml").write_text(PROJECT_TOML.format(name=name))
    (folder / "train.py").write_text("print('trained')\n")
    return folder


@pytest.fixture
def stop_watcher_after(cli):
    yield
    cli("watch", "stop", timeout=60)


def watch_status(cli) -> dict:
    return json.loads(cli("watch", "status", "--json", check=True).stdout)


def test_daemon_detach_status_refuse_stop(tmp_path, cli, stop_watcher_after):
    cli("project", "add", str(script_project(tmp_path)), check=True)
    assert watch_status(cli)["running"] is False

    started = json.loads(cli("watch", "start", "--detach", "--json", check=True).stdout)
    assert started["running"] is True
    pid = started["pid"]

    status = watch_status(cli)
    assert status["running"] is True and status["pid"] == pid
    assert status["projects"] == ["watched"]
    [folder] = status["folders"]
    assert folder["path"].endswith(os.path.join("watched", "data", "incoming"))
    assert folder["mode"] == "inotify"
    assert status["since"] and status["last_event"]["message"].startswith("watcher ready")

    # It ignores the hang-up a closing terminal would send.
    os.kill(pid, signal.SIGHUP)
    time.sleep(0.3)
    assert watch_status(cli)["pid"] == pid

    for args in (("watch", "start"), ("watch", "start", "--detach")):
        second = cli(*args, timeout=60)
        assert second.returncode == 1, args
        assert f"already running for this store (pid {pid})" in second.stderr

    human = cli("watch", "status", check=True).stdout
    assert f"watcher running (pid {pid})" in human and "inotify" in human

    stopped = json.loads(cli("watch", "stop", "--json", check=True).stdout)
    assert stopped == {"was_running": True, "pid": pid, "killed": False}
    assert watch_status(cli)["running"] is False
    assert "no watcher is running" in cli("watch", "status", check=True).stdout
    # The stale state file names a dead pid: still not running.
    state = json.loads((Path(os.environ["WORKBENCH_HOME"]) / "watcher" / "state.json").read_text())
    assert state["pid"] == pid and state["stopped_at"]


def test_watch_refuses_unknown_projects(cli):
    result = cli("watch", "start", "nosuch", "--detach")
    assert result.returncode == 2
    assert "nosuch" in result.stderr and "Traceback" not in result.stderr
    assert watch_status(cli)["running"] is False


# -- with the real pipeline ------------------------------------------------------------


def query(sql: str, params: tuple = ()) -> list[tuple]:
    db = Path(os.environ["WORKBENCH_HOME"]) / "workbench.db"
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


@pytest.mark.slow
def test_dropped_batch_runs_the_pipeline(tmp_path, cli, stop_watcher_after):
    project = tmp_path / "penguins"
    shutil.copytree(REPO / "sample_projects" / "penguins-lightgbm", project)
    staging = tmp_path / "staging"
    staging.mkdir()
    incoming = project / "data" / "incoming"
    for batch in incoming.iterdir():  # start from an empty drop folder
        batch.rename(staging / batch.name)
    cli("project", "add", str(project), check=True)
    start = ("watch", "start", "penguins", "--detach", "--quiet", "0.5", "--debounce", "0.2")

    cli(*start, check=True)
    os.replace(staging / "batch_01_clean.csv", incoming / "batch_01_clean.csv")
    rows = wait_until(lambda: finished(1), 180, poll=0.2)
    assert rows, f"no finished pipeline; log:\n{_log()}"
    [(state, outcome, trigger, files)] = rows
    assert (state, trigger) == ("done", "watch"), _log()
    assert json.loads(files) == [str(incoming / "batch_01_clean.csv")]
    assert outcome == "promoted", _log()
    # The watcher writes its log line just after the store records the outcome.
    assert wait_until(lambda: "pipeline 1 done: promoted" in _log()), _log()
    assert (project / "exports" / "penguins-v1-bundle" / "manifest.json").is_file()
    assert query("SELECT COUNT(*) FROM runs") == [(1,)]  # one batch, one retrain

    # A pipeline queued while no watcher runs (as one interrupted is left) runs
    # when the watcher starts again.
    cli("watch", "stop", check=True)
    from workbench.automation import pipeline
    from workbench.store import open_store

    store = open_store()
    try:
        queued = pipeline.submit(store, "penguins", [staging / "batch_03_malformed.csv"], "cli")
    finally:
        store.close()
    cli(*start, check=True)
    rows = wait_until(lambda: finished(2), 120, poll=0.2)
    assert rows and rows[1][:2] == ("done", "rejected"), _log()
    assert wait_until(lambda: f"pipeline {queued} done: rejected" in _log()), _log()


def finished(count: int) -> list[tuple] | None:
    rows = query("SELECT state, outcome, trigger, files FROM pipelines ORDER BY id")
    done = [r for r in rows if r[0] in ("done", "failed")]
    return rows if len(done) >= count else None


def _log() -> str:
    log = Path(os.environ["WORKBENCH_HOME"]) / "watcher" / "watcher.log"
    return log.read_text() if log.exists() else "(no log)"


@pytest.mark.slow
def test_a_watcher_killed_mid_pipeline_finishes_it_exactly_once(tmp_path, cli, stop_watcher_after):
    project = tmp_path / "penguins"
    shutil.copytree(REPO / "sample_projects" / "penguins-lightgbm", project)
    staging = tmp_path / "staging"
    staging.mkdir()
    incoming = project / "data" / "incoming"
    for batch in incoming.iterdir():
        batch.rename(staging / batch.name)
    cli("project", "add", str(project), check=True)
    # The warm runner the pipeline's retrain uses (it would start one itself), up
    # first so that the champion's trainer is forked from it as well.
    start_warm_runner()
    supervised_run("penguins", "n_estimators=1")  # the champion the retrain is judged against
    # Slow retraining, so that the kill lands while the pipeline waits for it.
    config = project / "workbench.toml"
    config.write_text(config.read_text().replace("n_estimators = 150", "n_estimators = 3000"))
    start = ("watch", "start", "penguins", "--detach", "--quiet", "0.5", "--debounce", "0.2")
    cli(*start, check=True)
    os.replace(staging / "batch_01_clean.csv", incoming / "batch_01_clean.csv")
    running = wait_until(
        lambda: (
            query(
                "SELECT COUNT(*) FROM pipeline_steps WHERE step = 'retrain' AND status = 'running'"
            )
            == [(1,)]
        ),
        120,
        poll=0.1,
    )
    assert running, _log()
    pid = json.loads(cli("watch", "status", "--json", check=True).stdout)["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not json.loads(cli("watch", "status", "--json").stdout)["running"], 120)
    assert query("SELECT state FROM pipelines") == [("running",)]

    cli(*start, check=True)  # resumes the interrupted pipeline
    rows = wait_until(lambda: finished(1), 240, poll=0.2)
    assert rows and rows[0][:2] == ("done", "promoted"), _log()
    # Exactly once: one retraining run, one promotion by the pipeline, each step once.
    assert query("SELECT COUNT(*) FROM params WHERE key = '_pipeline'") == [(1,)]
    assert query("SELECT COUNT(*) FROM runs") == [(2,)]
    assert query("SELECT COUNT(*) FROM promotions WHERE promoted = 1") == [(2,)]
    steps = query("SELECT step, COUNT(*) FROM pipeline_steps GROUP BY step")
    assert all(n == 1 for _, n in steps), steps


# -- open writers ------------------------------------------------------------------------


def test_open_writers_are_found_through_proc_and_readers_are_not(tmp_path):
    import subprocess
    import sys

    from workbench.automation.writers import open_for_writing, probe

    assert probe().available
    data = tmp_path / "data.csv"
    data.write_text("x,y\n")
    holder = (
        "import os, sys, time\n"
        "fd = os.open(sys.argv[1], {flags})\n"
        "print('open', flush=True)\n"
        "time.sleep(60)\n"
    )
    procs = {}
    try:
        for mode, flags in (("r", "os.O_RDONLY"), ("w", "os.O_WRONLY"), ("rw", "os.O_RDWR")):
            proc = subprocess.Popen(
                [sys.executable, "-c", holder.format(flags=flags), str(data)],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert proc.stdout.readline() == "open\n"
            procs[mode] = proc
        found = open_for_writing([str(data), str(tmp_path / "other.csv")])
        assert set(found) == {str(data)}
        assert sorted(found[str(data)]) == sorted([procs["w"].pid, procs["rw"].pid])
        # A path reached through a symbolic link is the same file.
        (tmp_path / "link.csv").symlink_to(data)
        assert str(tmp_path / "link.csv") in open_for_writing([str(tmp_path / "link.csv")])
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait()
    assert open_for_writing([str(data)]) == {}


def test_intervals_must_be_finite_and_within_bounds():
    from workbench.automation.watcher import QUIET_RANGE, check_interval
    from workbench.core.errors import UsageError

    assert check_interval("--quiet", 2, QUIET_RANGE) == 2.0
    for bad in (float("inf"), float("nan"), -1.0, 0.0, 3601.0, "2"):
        with pytest.raises(UsageError, match="--quiet"):
            check_interval("--quiet", bad, QUIET_RANGE)
    with pytest.raises(UsageError, match="--rescan"):
        Watcher([], lambda *a: None, rescan=float("inf"))


def test_a_file_that_changes_while_its_burst_waits_is_handed_over_once_complete(
    folders, start_watcher
):
    watched, outside = folders
    fake = FakePipeline()
    start_watcher([("demo", [watched])], fake, quiet=0.5, debounce=1.5)
    os.replace(write_csv(outside / "grow.csv", rows=3), watched / "grow.csv")
    # Within the debounce, the same file is appended to: the burst lets it go
    # until it is quiet again, and hands over the final content once.
    time.sleep(0.3)
    with open(watched / "grow.csv", "a") as handle:
        handle.write("9,1\n")
    assert wait_until(lambda: fake.count() >= 1, 120)
    assert not wait_until(lambda: fake.count() > 1, 2.5)
    assert fake.calls == [("demo", [watched / "grow.csv"], "watch")]
    assert (watched / "grow.csv").read_text().endswith("9,1\n")


def test_doctor_says_whether_open_writers_can_be_seen(cli):
    info = json.loads(cli("doctor", "--json", check=True).stdout)
    assert info["open_writers"]["visible"] is True  # Linux with /proc
    assert "open writers" in cli("doctor", check=True).stdout
