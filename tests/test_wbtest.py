"""The in-process CLI helper answers as the real `workbench` process does, and
leaves this process as it found it."""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import sys
from pathlib import Path

import pytest
from wbtest import wait_until, wb, wb_inprocess

# Commands whose whole answer (exit code, stdout, stderr) must not depend on
# whether the CLI ran in a fresh interpreter or in this one.
SAME_ANSWER = {
    "help": ["--help"],
    "version": ["--version"],
    "group help": ["run", "--help"],
    "empty list": ["run", "list", "--json"],
    "missing run": ["run", "show", "424242"],
    "bad option value": ["run", "list", "--limit", "1.5"],
    "unknown option": ["doctor", "--bogus"],
    "unknown command": ["run", "explode"],
    "after --": ["run", "show", "--", "-1"],
    "no such project": ["model", "list", "ghost"],
}


@pytest.mark.parametrize("args", list(SAME_ANSWER.values()), ids=list(SAME_ANSWER))
def test_in_process_answers_as_the_process_does(args: list[str]):
    real = wb(*args)
    here = wb_inprocess(*args)
    assert (here.returncode, here.stdout, here.stderr) == (
        real.returncode,
        real.stdout,
        real.stderr,
    )
    assert here.stdout or here.stderr  # each command says something


def test_a_project_made_in_process_is_seen_by_the_process(tmp_path: Path):
    folder = tmp_path / "proj"
    made = wb_inprocess("project", "init", str(folder), "--template", "script", check=True)
    assert (folder / "workbench.toml").is_file(), made.stdout
    real = wb("project", "list", "--json", check=True)
    here = wb_inprocess("project", "list", "--json", check=True)
    assert here.stdout == real.stdout and "proj" in here.stdout
    refused = [helper("project", "init", str(folder)) for helper in (wb, wb_inprocess)]
    assert refused[0].returncode == refused[1].returncode != 0
    assert refused[0].stderr == refused[1].stderr


def test_the_process_state_is_put_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    umask = os.umask(0o022)
    os.umask(umask)
    environ = dict(os.environ)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    root = list(logging.root.handlers)
    argv = list(sys.argv)
    wb_inprocess("project", "init", str(tmp_path / "p"), check=True)
    # `main()` makes the process's files private (umask 077); this process's are not.
    assert os.umask(umask) == umask
    assert dict(os.environ) == environ
    assert Path.cwd() == tmp_path
    assert {s: signal.getsignal(s) for s in handlers} == handlers
    assert logging.root.handlers == root
    assert sys.argv == argv


def test_plugins_are_loaded_afresh_each_call(tmp_path: Path):
    folder = tmp_path / "proj"
    wb_inprocess("project", "init", str(folder), "--template", "script", check=True)
    plugins = folder / "plugins"
    plugins.mkdir(exist_ok=True)
    first = wb_inprocess("plugins", "list", "proj", "--json")
    (plugins / "broken.py").write_text("raise RuntimeError('no')\n")
    second = wb_inprocess("plugins", "list", "proj", "--json")
    assert "broken" not in first.stdout
    assert "broken" in second.stdout
    assert second.stdout == wb("plugins", "list", "proj", "--json").stdout


def test_an_uncaught_exception_is_a_traceback_and_status_1(monkeypatch: pytest.MonkeyPatch):
    import workbench.cli.app as app

    def explode(self, ctx):
        raise RuntimeError("boom")

    monkeypatch.setattr(app.WorkbenchGroup, "invoke", explode)
    result = wb_inprocess("run", "list")
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "RuntimeError: boom" in result.stderr


def test_output_written_to_the_file_descriptors_is_captured(monkeypatch: pytest.MonkeyPatch):
    import workbench.cli.app as app

    def low_level(self, ctx):
        os.write(1, b"fd one\n")
        os.write(2, b"fd two\n")
        return 0

    monkeypatch.setattr(app.WorkbenchGroup, "invoke", low_level)
    result = wb_inprocess("run", "list")
    assert "fd one" in result.stdout and "fd two" in result.stderr


def test_a_process_left_running_is_refused_and_stopped(monkeypatch: pytest.MonkeyPatch):
    import subprocess

    import psutil
    import workbench.cli.app as app

    started: list[int] = []

    def detach(self, ctx):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        started.append(child.pid)
        return 0

    monkeypatch.setattr(app.WorkbenchGroup, "invoke", detach)
    with pytest.raises(AssertionError, match="left processes running"):
        wb_inprocess("run", "list")
    assert started and not psutil.pid_exists(started[0])


def test_wait_until_returns_the_value_or_names_what_it_waited_for():
    calls = iter([0, None, "ready"])
    assert wait_until(lambda: next(calls), timeout=30, poll=0) == "ready"
    with pytest.raises(AssertionError, match="the moon"):
        wait_until(lambda: False, timeout=0.2, what="the moon")


def test_the_package_caches_are_dropped_before_each_call(monkeypatch: pytest.MonkeyPatch):
    import functools
    import types

    probe = types.ModuleType("workbench._wbtest_probe")
    calls: list[int] = []

    @functools.lru_cache
    def remembered() -> int:
        calls.append(1)
        return len(calls)

    remembered.__module__ = probe.__name__
    probe.remembered = remembered
    monkeypatch.setitem(sys.modules, probe.__name__, probe)
    assert remembered() == remembered() == 1
    wb_inprocess("--version", check=True)
    assert remembered() == 2  # what a fresh process would compute again


def test_tmpdir_is_read_afresh_as_a_new_process_would(tmp_path: Path, monkeypatch):
    import tempfile

    before = tempfile.gettempdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    seen: list[str] = []

    import workbench.cli.app as app

    def where(self, ctx):
        seen.append(tempfile.gettempdir())
        return 0

    monkeypatch.setattr(app.WorkbenchGroup, "invoke", where)
    wb_inprocess("run", "list", check=True)
    assert seen == [str(tmp_path)]
    assert tempfile.gettempdir() == before


def test_every_test_the_fast_lane_leaves_out_still_exists():
    import importlib.util

    from wbtest import REPO

    spec = importlib.util.spec_from_file_location("suite_conftest", REPO / "tests" / "conftest.py")
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    for path in conftest.SLOW_FILES:
        assert (REPO / path).is_file(), f"{path} is listed in SLOW_FILES but is gone"
    for path in conftest.FIRST_FILES:
        assert (REPO / path).is_file(), f"{path} is listed in FIRST_FILES but is gone"
    for test in conftest.SLOW_TESTS:
        path, name = test.split("::")
        source = (REPO / path).read_text() if (REPO / path).is_file() else ""
        assert f"def {name}(" in source, f"{test} is listed in SLOW_TESTS but is gone"


def test_a_listed_test_is_in_the_slow_lane_only():
    """The hook marks a listed test (any of its parameters) and a listed file's
    tests, and nothing else."""
    import types

    from wbtest import REPO

    spec = importlib.util.spec_from_file_location("suite_conftest", REPO / "tests" / "conftest.py")
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)

    class Item:
        def __init__(self, nodeid: str) -> None:
            self.nodeid = nodeid
            self.path = REPO / nodeid.split("::")[0]
            self.marks: list[str] = []

        def add_marker(self, mark) -> None:
            self.marks.append(mark.name)

    listed = "tests/test_store.py::test_processes_migrating_a_fresh_store_at_once_all_succeed"
    items = [
        Item(listed),
        Item(listed + "[3]"),
        Item("tests/test_store.py::test_processes_migrating_something_else"),
        Item(next(iter(conftest.SLOW_FILES)) + "::test_anything[x]"),
    ]
    items_as_built = list(items)
    config = types.SimpleNamespace(rootpath=REPO)
    conftest.pytest_collection_modifyitems(config, items)  # may also reorder them
    assert [item.marks for item in items_as_built] == [["slow"], ["slow"], [], ["slow"]]


def test_the_longest_files_are_handed_out_first_the_rest_as_collected():
    import types

    from wbtest import REPO

    spec = importlib.util.spec_from_file_location("suite_conftest", REPO / "tests" / "conftest.py")
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)

    class Item:
        def __init__(self, nodeid: str) -> None:
            self.nodeid = nodeid
            self.path = REPO / nodeid.split("::")[0]

        def add_marker(self, mark) -> None: ...

    first, second = conftest.FIRST_FILES[:2]
    ids = [
        "tests/test_a.py::test_1",
        f"{second}::test_x",
        "tests/test_b.py::test_2",
        f"{first}::test_y",
        f"{second}::test_z",
        "tests/test_a.py::test_3",
    ]
    items = [Item(i) for i in ids]
    conftest.pytest_collection_modifyitems(types.SimpleNamespace(rootpath=REPO), items)
    assert [item.nodeid for item in items] == [
        f"{first}::test_y",
        f"{second}::test_x",
        f"{second}::test_z",
        "tests/test_a.py::test_1",
        "tests/test_b.py::test_2",
        "tests/test_a.py::test_3",
    ]


@pytest.mark.parametrize(
    ("args", "real_process"),
    [
        (("run", "start", "p", "--wait"), True),
        (("run", "show", "1"), False),
        (("sweep", "start", "p", "--trials", "2"), True),
        (("pipeline", "run", "p", "f.csv"), True),
        (("demo", "--headless"), True),
        (("serve", "bundle"), True),
        (("watch", "start", "p", "--detach"), True),
        (("watch", "status", "--json"), False),
        (("watch", "stop"), False),
        (("model", "promote", "p", "1"), False),
    ],
)
def test_wb_auto_keeps_real_processes_for_commands_that_start_them(args, real_process):
    from wbtest import _starts_processes

    assert _starts_processes(args) is real_process
