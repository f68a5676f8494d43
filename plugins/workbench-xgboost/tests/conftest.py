"""Hermetic tests of the plugin: each test has its own WORKBENCH_HOME, and no
process (this one or the CLI, supervisor and trainer it starts) reaches the network."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

NETGUARD = Path(__file__).resolve().parent / "netguard"
# The guard for this process, loaded by path (another `sitecustomize` may be imported
# already); subprocesses load the same file through PYTHONPATH.
_spec = importlib.util.spec_from_file_location(
    "workbench_xgboost_netguard", NETGUARD / "sitecustomize.py"
)
netguard = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(netguard)


@pytest.fixture(autouse=True)
def no_network() -> None:
    """Another plugin may have restored the socket methods; put the guard back."""
    netguard.install()


@pytest.fixture(autouse=True)
def wb_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "wbhome"
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    monkeypatch.setenv(
        "PYTHONPATH",
        os.pathsep.join([str(NETGUARD), *filter(None, [os.environ.get("PYTHONPATH")])]),
    )
    monkeypatch.setenv("NO_COLOR", "1")
    for var in ("WORKBENCH_RUN_ID", "WORKBENCH_PARAMS", "WORKBENCH_PROJECT_DIR"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def cli():
    def run(*args: str, check: bool = False, timeout: float = 300) -> subprocess.CompletedProcess:
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

    return run
