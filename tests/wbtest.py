"""Helpers shared by the test modules (import them from here, not from conftest:
the plugins' test folders have conftest modules of their own)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parent.parent
NETGUARD = Path(__file__).resolve().parent / "netguard"

T = TypeVar("T")


def wb(*args: str, check: bool = False, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess, as a user would. Use it where the process
    is the point: detaching, signals, supervisors, terminals, start-up cost."""
    result = subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"workbench {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


# --- the CLI in this process ------------------------------------------------------------

# What a fresh interpreter shows of warnings (Python's default filters, no -W):
# a command's warnings reach its stderr there, so they do here.
_DEFAULT_WARNING_FILTERS = (
    ("default", DeprecationWarning, "__main__"),
    ("ignore", DeprecationWarning, ""),
    ("ignore", PendingDeprecationWarning, ""),
    ("ignore", ImportWarning, ""),
    ("ignore", ResourceWarning, ""),
)
_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, name)
)


# Caches of what the installed libraries are, the same in every process: kept.
_PROCESS_INVARIANT_CACHES = {"_journal_class"}


def _forget_process_caches() -> None:
    """What a new `workbench` process would not have: the plugin managers (a
    project's plugins/*.py may have changed) and the package's in-memory caches
    (of files in a store: each test has a store of its own, and a hostile test
    may change a file behind a cache's back)."""
    plugins = sys.modules.get("workbench.plugins")
    managers = getattr(plugins, "_MANAGERS", None)
    if isinstance(managers, dict):
        managers.clear()
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "workbench" or name.startswith("workbench.")):
            continue
        for attr, value in list(vars(module).items()):
            if (
                attr not in _PROCESS_INVARIANT_CACHES
                and callable(getattr(value, "cache_clear", None))
                and getattr(value, "__module__", None) == name
            ):
                value.cache_clear()


class _ProcessState:
    """The parts of this process a command may change and an exiting process
    would take with it: environment, cwd, umask, argv, sys.path, signal handlers,
    the root logger's handlers, tempfile's folder."""

    def __init__(self) -> None:
        self.environ = dict(os.environ)
        self.cwd = os.getcwd()
        self.umask = os.umask(0o022)
        os.umask(self.umask)
        self.argv = list(sys.argv)
        self.path = list(sys.path)
        self.handlers = {signum: signal.getsignal(signum) for signum in _SIGNALS}
        self.root_handlers = list(logging.root.handlers)
        self.root_level = logging.root.level
        self.threads = set(threading.enumerate())
        # tempfile reads TMPDIR once per process: a fresh process reads it again.
        self.tempdir = tempfile.tempdir
        tempfile.tempdir = None

    def restore(self) -> None:
        os.environ.clear()
        os.environ.update(self.environ)
        os.chdir(self.cwd)
        os.umask(self.umask)
        sys.argv[:] = self.argv
        sys.path[:] = self.path
        for signum, handler in self.handlers.items():
            if handler is not None:
                signal.signal(signum, handler)
        logging.root.handlers[:] = self.root_handlers
        logging.root.setLevel(self.root_level)
        tempfile.tempdir = self.tempdir


def _leftover_children(before: set[int]) -> list[str]:
    """Processes the command started and left running: in-process, they would be
    this test process's children (zombies when they exit, which psutil counts as
    alive), so such commands must go through `wb()`. They are killed."""
    import psutil

    left = []
    for child in psutil.Process().children(recursive=True):
        if child.pid in before:
            continue
        try:
            left.append(" ".join(child.cmdline()[:4]))
            child.kill()
            child.wait(timeout=10)
        except psutil.Error:
            pass
    return left


def wb_inprocess(
    *args: str, check: bool = False, timeout: float = 120, input: str | None = None
) -> subprocess.CompletedProcess:
    """Run the CLI in this process, with click's CliRunner: the same return shape,
    exit code and separate stdout/stderr as `wb()`, without an interpreter start
    and imports per call. Output written straight to file descriptors 1 and 2 (by
    C libraries) is captured too. What a command changes in the process is put
    back afterwards, and per-process caches are dropped before it runs.

    For commands that leave no process behind: one that starts a detached
    supervisor, watcher or server fails here, naming it; use `wb()` for those.
    `timeout` is accepted for `wb()`'s signature; pytest-timeout bounds the call.
    """
    import click
    import click.formatting
    import psutil
    from click.testing import CliRunner

    from workbench.cli import main

    def entry() -> None:
        sys.argv = ["workbench", *args]
        # The runner fixes help to 80 columns; a process gets COLUMNS, as `wb()` does.
        click.formatting.FORCED_WIDTH = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.resetwarnings()
            for action, category, module in reversed(_DEFAULT_WARNING_FILTERS):
                warnings.filterwarnings(action, category=category, module=module)
            try:
                try:
                    main()
                finally:
                    for w in caught:
                        sys.stderr.write(
                            warnings.formatwarning(
                                w.message, w.category, w.filename, w.lineno, w.line
                            )
                        )
            except SystemExit as exc:  # what the interpreter does with sys.exit(code)
                code = exc.code
                if code is None:
                    code = 0
                elif not isinstance(code, int):
                    print(code, file=sys.stderr)
                    code = 1
                raise SystemExit(code) from None
            except BaseException:  # an uncaught exception: its traceback, status 1
                traceback.print_exc()
                raise SystemExit(1) from None

    # A bare command whose callback runs the real entry point, which parses sys.argv.
    command = click.Command("workbench", callback=entry, add_help_option=False)
    state = _ProcessState()
    children = {child.pid for child in psutil.Process().children(recursive=True)}
    _forget_process_caches()
    try:
        result = CliRunner(capture="fd").invoke(
            command, [], input=input, catch_exceptions=False, prog_name="workbench"
        )
        # A process exits only when its non-daemon threads are done.
        for thread in set(threading.enumerate()) - state.threads:
            if not thread.daemon:
                thread.join(timeout)
    finally:
        state.restore()
        left = _leftover_children(children)
    if left:
        raise AssertionError(
            f"workbench {' '.join(args)} left processes running ({'; '.join(left)}):"
            " run it with wb(), in a subprocess"
        )
    # `text=True` in `wb()` decodes with universal newlines.
    stdout = result.stdout_bytes.decode(errors="replace").replace("\r\n", "\n")
    stderr = result.stderr_bytes.decode(errors="replace").replace("\r\n", "\n")
    completed = subprocess.CompletedProcess(
        ["workbench", *args], result.exit_code, stdout.replace("\r", "\n"), stderr.replace("\r", "\n")
    )
    if check and completed.returncode != 0:
        raise AssertionError(
            f"workbench {' '.join(args)} exited {completed.returncode}\n"
            f"stdout:\n{completed.stdout}\nstderr:\n{completed.stderr}"
        )
    return completed


def _starts_processes(args: tuple[str, ...]) -> bool:
    """Whether a command starts processes that own a run or outlive the call:
    supervised runs (run start, sweeps, the pipeline's retrain, demo), the watcher
    daemon and the HTTP server."""
    words = [a for a in args if not a.startswith("-")][:2]
    if words[:1] in (["sweep"], ["pipeline"], ["demo"], ["serve"]):
        return True
    if words[:1] == ["watch"]:
        return not ({"status", "stop", "--status", "--stop"} & set(args))
    return words[:2] == ["run", "start"]


def wb_auto(*args: str, check: bool = False, timeout: float = 120) -> subprocess.CompletedProcess:
    """`wb()` for the commands that start processes, `wb_inprocess()` for the rest:
    for test files whose subject is not how the CLI behaves as a process."""
    helper = wb if _starts_processes(args) else wb_inprocess
    return helper(*args, check=check, timeout=timeout)


# --- copying a store ---------------------------------------------------------------------


def regular_only(folder: str, names: list[str]) -> list[str]:
    """`shutil.copytree`'s ignore: what is neither a file nor a folder (the warm
    server's socket, say, in a store a pipeline has retrained in)."""
    return [n for n in names if not (Path(folder, n).is_file() or Path(folder, n).is_dir())]


# --- waiting ----------------------------------------------------------------------------


def wait_until(
    predicate: Callable[[], T], timeout: float = 120, what: str = "the condition", poll: float = 0.05
) -> T:
    """Poll `predicate` until it returns something truthy, and return that. The
    deadline is generous because a loaded machine delays everything; a test that
    passes waits only as long as the condition takes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll)

