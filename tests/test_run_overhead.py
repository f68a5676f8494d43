"""What keeps `workbench run start --wait` cheap, checked on real processes (not
by timing, which `benchmarks/bench_run_overhead.py` measures): the supervisor
imports nothing it only needs after the trainer has started, a run's start forks
no `uname` once the interpreter's facts are cached, the cached facts are the
ones worked out afresh, and `--wait` returns once the run has ended even while
its supervisor is still alive."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from test_runs_e2e import script_project, show

from workbench.core import paths
from workbench.runs import environment
from workbench.runs.launch import create_run, wait_for
from workbench.store import open_store
from workbench.store import runs as run_store
from workbench.store.runs import RunStatus

# Needed only after the trainer has started (environment, lineage, registry) or
# never in a supervisor (the UI, the CLI).
NOT_BEFORE_THE_TRAINER = (
    "workbench.runs.environment",
    "workbench.data.versions",
    "workbench.models.registry",
    "importlib.metadata",
    "textual",
    "rich",
    "click",
    "pandas",
)


def test_the_supervisor_imports_nothing_it_needs_only_after_the_spawn():
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys, workbench.runs.supervisor; print(json.dumps(sorted(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    modules = set(json.loads(loaded.stdout))
    assert "workbench.runs.supervisor" in modules
    early = sorted(m for m in NOT_BEFORE_THE_TRAINER if m in modules)
    assert early == [], f"imported before the trainer starts: {early}"


def _uname_spy(folder: Path, calls: Path) -> dict[str, str]:
    """An environment whose PATH starts with a `uname` that notes each call
    (with its arguments) and then runs the real one."""
    folder.mkdir()
    real = next(
        Path(d) / "uname"
        for d in os.environ["PATH"].split(os.pathsep)
        if (Path(d) / "uname").is_file()
    )
    spy = folder / "uname"
    spy.write_text(f'#!/bin/sh\necho "$@" >> "{calls}"\nexec "{real}" "$@"\n')
    spy.chmod(0o755)
    return {**os.environ, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}


def test_a_run_start_forks_no_uname_once_the_facts_are_cached(tmp_path, wb_home):
    # A cache of our own: the suite's shared one may already hold this interpreter.
    cache = tmp_path / "cache"
    calls = tmp_path / "uname-calls.txt"
    env = {**_uname_spy(tmp_path / "bin", calls), "WORKBENCH_CACHE": str(cache)}

    def wb(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "workbench", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )

    project = script_project(tmp_path / "p", "print('trained')\n", name="p")
    wb("project", "add", str(project))
    first = wb("run", "start", "p", "--wait").stdout.split()[0]
    assert (cache / "environment.json").is_file()
    # The first run worked the facts out: platform.platform() forks `uname -p`,
    # which shows that the spy sees the supervisor's subprocesses.
    assert "-p" in calls.read_text().split()
    calls.unlink()
    second = wb("run", "start", "p", "--wait").stdout.split()[0]
    assert not calls.exists(), f"uname ran during a run's start: {calls.read_text()!r}"

    store = open_store()
    recorded = [json.loads(run_store.get(store, int(i)).environment) for i in (first, second)]
    assert recorded[0] == {**recorded[1], "executable": recorded[0]["executable"]}
    assert recorded[1]["platform"] == platform.platform()
    assert recorded[1]["hostname"] == platform.node()
    assert recorded[1]["libraries"]["workbench-mlops"]


def test_cached_facts_equal_fresh_ones_and_a_damaged_cache_is_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    fresh = environment.interpreter_facts()
    cached_file = paths.cache_dir() / "environment.json"
    assert json.loads(cached_file.read_text())["facts"] == fresh
    assert environment.interpreter_facts() == fresh  # read back from the cache
    assert fresh["platform"] == platform.platform()

    keyless = json.dumps({"facts": fresh})
    for damaged in ("{not json", '{"key": [], "facts": {"platform": 7}}', "[]", keyless, ""):
        cached_file.write_text(damaged)
        assert environment.interpreter_facts() == fresh
    # A stale key (another interpreter, kernel or set of packages) is worked out again.
    stale = json.loads(cached_file.read_text())
    stale["facts"]["platform"] = "stale"
    stale["key"][0] = "/elsewhere/python"
    cached_file.write_text(json.dumps(stale))
    assert environment.interpreter_facts() == fresh


def test_wait_returns_when_the_run_ends_while_its_supervisor_lives_on(tmp_path, wb_home):
    """The supervisor still dispatches the queue and shuts down after it records
    the end; `--wait` does not wait for that (other callers do: they live on,
    and reap it)."""
    project = script_project(tmp_path / "w", "pass\n", name="w")
    store = open_store()
    from workbench.projects import add_project

    add_project(store, project)
    run_id = create_run(store, "w", {})
    run_store.transition(store, run_id, RunStatus.SUCCEEDED, expect=RunStatus.QUEUED)
    # A real process in the supervisor's place that outlives the run's end.
    stand_in = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        assert wait_for(store, run_id, stand_in, leave_supervisor=True) == "succeeded"
        assert stand_in.poll() is None
    finally:
        stand_in.kill()
        stand_in.wait()


def test_a_supervisor_that_exits_without_the_run_still_fails_it(tmp_path, wb_home):
    project = script_project(tmp_path / "x", "pass\n", name="x")
    store = open_store()
    from workbench.projects import add_project

    add_project(store, project)
    run_id = create_run(store, "x", {})
    quitter = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    assert wait_for(store, run_id, quitter, leave_supervisor=True) == "failed"
    assert "exited (3)" in (run_store.get(store, run_id).message or "")


def test_cli_wait_reports_the_recorded_run(cli, tmp_path):
    project = script_project(tmp_path / "c", "print('hello')\n", name="c")
    cli("project", "add", str(project), check=True)
    started = cli("run", "start", "c", "--wait", check=True)
    info = show(cli, started.stdout.split()[0])
    assert info["status"] == "succeeded"
    assert info["exit_code"] == 0
    assert info["ended_at"] >= info["started_at"]


def test_a_lone_run_on_an_idle_machine_starts_without_counting_slots(tmp_path, monkeypatch):
    """Counting slots loads NVML to count GPUs; with nothing running and one run
    queued there is a slot whatever the count. Two queued runs do count."""
    from workbench.config.settings import Settings
    from workbench.projects import add_project
    from workbench.runs.queue import dispatch

    counted: list[int] = []

    def one_slot(self: Settings) -> int:
        counted.append(1)
        return 1

    monkeypatch.setattr(Settings, "parallel_slots", one_slot)
    store = open_store()
    add_project(store, script_project(tmp_path / "s", "pass\n", name="s"))
    lone = create_run(store, "s", {})
    started = dispatch(store)
    assert list(started) == [lone] and counted == []
    assert wait_for(store, lone, started[lone]) == "succeeded"

    first, second = create_run(store, "s", {}), create_run(store, "s", {})
    started = dispatch(store)
    assert list(started) == [first] and counted == [1]  # one slot: the second waits
    assert run_store.status_of(store, second) is RunStatus.QUEUED
    assert wait_for(store, first, started[first]) == "succeeded"
    assert wait_for(store, second) == "succeeded"
