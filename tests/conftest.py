"""Hermetic tests: each test gets its own WORKBENCH_HOME, and no process reaches the network."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NETGUARD = Path(__file__).resolve().parent / "netguard"

# The guard for this process; subprocesses load the same file through PYTHONPATH.
sys.path.insert(0, str(NETGUARD))
import sitecustomize  # noqa: E402


@pytest.fixture(autouse=True)
def no_network() -> None:
    """Another plugin may have restored the socket methods; put the guard back."""
    sitecustomize.install()


@pytest.fixture(autouse=True)
def wb_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
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
    return home


@pytest.fixture
def fast_sampling(wb_home: Path) -> None:
    """Sample resources five times a second so short test runs get several samples."""
    wb_home.mkdir(parents=True, exist_ok=True)
    (wb_home / "config.toml").write_text("[runs]\nsample_interval = 0.2\nstop_grace = 3\n")


def wb(*args: str, check: bool = False, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess, as a user would."""
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


@pytest.fixture
def cli():
    return wb
