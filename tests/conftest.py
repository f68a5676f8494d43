"""Hermetic tests: each test gets its own WORKBENCH_HOME, and no process reaches the network."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from wbtest import NETGUARD, wb  # noqa: E402

# The guard for this process, loaded by path (another `sitecustomize` may be imported
# already); subprocesses load the same file through PYTHONPATH.
_spec = importlib.util.spec_from_file_location("workbench_netguard", NETGUARD / "sitecustomize.py")
netguard = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(netguard)


# --- the fast lane -----------------------------------------------------------------------
# `pytest -m "not slow"` leaves out what trains real models or drives real processes.
# Most such files mark themselves (`pytestmark = pytest.mark.slow`); these are the
# rest, chosen from a `--durations` run of the fast lane (each took 5-130 s on a
# loaded 2-core machine). tests/test_wbtest.py checks that every entry still exists.
SLOW_FILES = {
    # Builds, signs and tampers with real bundles; a payload per entry point.
    "tests/test_bundle_security.py",
    # Each test trains runs and checks the data version they point at.
    "tests/test_data_versions.py",
    # Each case loads a hostile plugin file in a fresh `workbench` process.
    "tests/hostile/test_hostile_plugins.py",
}
SLOW_TESTS = {
    # Train real models end to end.
    "tests/test_project_init_data.py::test_a_count_target_trains_a_regressor_end_to_end",
    "tests/test_project_init_data.py::"
    "test_script_template_on_text_features_and_missing_values_end_to_end",
    # Real stores damaged, replaced, read-only or full, and a real run's files.
    "tests/test_store_integrity.py::test_the_store_and_its_files_are_private",
    "tests/test_store_integrity.py::"
    "test_a_corrupted_page_is_reported_in_one_line_and_repaired_into_a_new_file",
    "tests/test_store_integrity.py::test_the_read_only_decision_can_be_forced",
    "tests/test_store_integrity.py::test_read_commands_work_on_a_full_disk",
    "tests/test_store_integrity.py::test_a_store_on_a_read_only_filesystem_can_be_listed",
    "tests/test_store.py::test_processes_migrating_a_fresh_store_at_once_all_succeed",
    # Fresh interpreters to measure what a command imports.
    "tests/test_lazy_cli.py::test_data_checks_import_scipy_and_sklearn_only_when_needed",
    # Real watcher daemons and their waits.
    "tests/test_watcher.py::test_daemon_detach_status_refuse_stop",
    "tests/test_watcher.py::test_watch_refuses_unknown_projects",
    "tests/test_cli_grammar.py::test_watch_start_detached_status_stop_in_real_processes",
    "tests/hostile/test_hostile_watch.py::test_hostile_files_under_a_real_watcher_never_stall_it",
    # Property-based over many generated tables.
    "tests/test_duplicates_hashing.py::test_hashing_finds_exactly_the_rows_duplicated_finds",
}


# --- the longest files first -----------------------------------------------------------
# xdist hands out whole files (`--dist loadfile`) in collection order (with
# `--no-loadscope-reorder` in pyproject's addopts; by default it would sort files by
# their number of tests, which puts a one-test file that waits a minute last). A file that
# waits on the clock (a Slurm time limit, a lock held for 30 s) or holds a worker for
# a minute, when collected last, leaves the other workers idle at the end; started
# first, it overlaps the rest. Chosen from a run's per-file wall times;
# tests/test_wbtest.py checks that every entry still exists.
FIRST_FILES = (
    "tests/test_slurm_timeout.py",  # waits out Slurm's one-minute limit
    "tests/test_bundle_security.py",
    "tests/test_tui_snapshots.py",
    "tests/test_busy_store.py",  # holds a lock for 30 s
    "tests/test_export_formats.py",
    "tests/hostile/test_hostile_serve.py",
    "tests/test_cli_projects.py",
    "tests/hostile/test_hostile_plugins.py",
    "tests/test_real_data.py",
    "tests/test_watcher.py",
)


def pytest_configure(config: pytest.Config) -> None:
    """Byte-compile the package once, before any worker starts. The tests start well
    over a thousand `workbench` processes (CLI, supervisors, trainers, servers); where
    PYTHONDONTWRITEBYTECODE is set, as on some CI machines, a checkout without
    `__pycache__` would otherwise have each of them compile every module it imports.
    An installed package has its bytecode already; this makes the checkout alike."""
    if hasattr(config, "workerinput"):  # an xdist worker: the controller did it
        return
    import compileall

    root = Path(__file__).resolve().parent.parent
    for package in (root / "workbench", *sorted((root / "plugins").glob("*/workbench_*/"))):
        compileall.compile_dir(package, quiet=1, workers=1)
    if config.getoption("numprocesses", None):
        _rewrite_test_modules_once(config)


def _rewrite_test_modules_once(config: pytest.Config) -> None:
    """Rewrite the test modules' asserts once, here, for every xdist worker. Each worker
    imports every test module while collecting, and pytest rewrites a module's asserts
    on import unless a cached rewrite is on disk; where PYTHONDONTWRITEBYTECODE is set
    it writes none, so each of the workers would pay the whole rewrite again (about
    8 CPU-s each on a 2-core machine). pytest reads the cache it validates (source
    size and mtime, its own version in the file name) even when it may not write.
    This leans on pytest's rewrite module, which is not public API: when it changes,
    this does nothing and the workers rewrite as before."""
    try:
        from _pytest.assertion import rewrite

        state = config.stash[rewrite.assertstate_key]
        read, rewrite_test, write = rewrite._read_pyc, rewrite._rewrite_test, rewrite._write_pyc
    except (ImportError, AttributeError, KeyError):
        return
    if config.getoption("assertmode", "rewrite") != "rewrite":
        return
    for folder in config.getini("testpaths"):
        for source in sorted((config.rootpath / folder).rglob("*.py")):
            if not (source.name.startswith("test_") or source.name == "conftest.py"):
                continue
            pyc = rewrite.get_cache_dir(source) / (source.name[:-3] + rewrite.PYC_TAIL)
            if read(source, pyc) is not None:
                continue
            try:
                pyc.parent.mkdir(exist_ok=True)
                source_stat, code = rewrite_test(source, config)
                write(state, code, source_stat, pyc)
            except (OSError, SyntaxError):
                continue  # the worker reports it on import, as it would have


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by mark
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = config.rootpath
    rank: dict[int, int] = {}
    for index, item in enumerate(items):
        try:
            path = item.path.relative_to(root).as_posix()
        except ValueError:
            continue
        test = f"{path}::{item.nodeid.split('::', 1)[-1].split('[')[0]}"
        if path in SLOW_FILES or test in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
        if path in FIRST_FILES:
            rank[index] = FIRST_FILES.index(path)
    # A stable sort: listed files first in the listed order, the rest as collected.
    order = sorted(range(len(items)), key=lambda i: rank.get(i, len(FIRST_FILES)))
    items[:] = [items[i] for i in order]


@pytest.fixture(autouse=True)
def no_network() -> None:
    """Another plugin may have restored the socket methods; put the guard back."""
    netguard.install()


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder for the whole run, shared by xdist's workers (their temp
    folders sit side by side): what an installed library accepts is the same for
    every test, so only the first test to ask pays for finding it out."""
    root = tmp_path_factory.getbasetemp()
    return (root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root) / "wbcache"


@pytest.fixture(autouse=True)
def wb_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_cache: Path) -> Iterator[Path]:
    home = tmp_path / "wbhome"
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    monkeypatch.setenv("WORKBENCH_CACHE", str(shared_cache))
    monkeypatch.setenv(
        "PYTHONPATH",
        os.pathsep.join([str(NETGUARD), *filter(None, [os.environ.get("PYTHONPATH")])]),
    )
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    for var in ("WORKBENCH_RUN_ID", "WORKBENCH_PARAMS", "WORKBENCH_PROJECT_DIR"):
        monkeypatch.delenv(var, raising=False)
    yield home
    _stop_leftover_watcher(home)


def _stop_leftover_watcher(home: Path) -> None:
    """A test that failed or timed out (a killed `demo`, say) must not leave its
    store's watcher daemon running into the rest of the suite."""
    import psutil

    try:
        pid = int((home / "watcher.lock").read_text().strip())
        process = psutil.Process(pid)
        if process.environ().get("WORKBENCH_HOME") != str(home):
            return  # a recycled pid: not this store's watcher
        process.terminate()
        process.wait(timeout=10)
    except psutil.TimeoutExpired:
        process.kill()
    except (OSError, ValueError, psutil.Error):
        return


@pytest.fixture
def fast_sampling(wb_home: Path) -> None:
    """Sample resources five times a second so short test runs get several samples."""
    wb_home.mkdir(parents=True, exist_ok=True)
    (wb_home / "config.toml").write_text("[runs]\nsample_interval = 0.2\nstop_grace = 3\n")


@pytest.fixture
def cli():
    return wb
