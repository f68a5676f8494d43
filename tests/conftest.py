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


@pytest.fixture(autouse=True)
def no_network() -> None:
    """Another plugin may have restored the socket methods; put the guard back."""
    netguard.install()


@pytest.fixture(autouse=True)
def wb_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "wbhome"
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
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
