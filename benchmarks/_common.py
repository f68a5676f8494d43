"""Helpers shared by the benchmark scripts (not a benchmark itself).

Every benchmark runs against a fresh, temporary store (`WORKBENCH_HOME`) and a
throw-away script project, and removes both when it ends.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

WORKBENCH_TOML = """\
[project]
name = "{name}"
[data]
train = "data/train.csv"
target = "y"
[train]
trainer = "script"
script = "train.py"
"""


def cli_command() -> list[str]:
    """How to call the CLI: the `workbench` console script of this interpreter's
    environment, else one on PATH, else `python -m workbench`."""
    beside = Path(sys.executable).parent / "workbench"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("workbench")
    if found:
        return [found]
    return [sys.executable, "-m", "workbench"]


@dataclass
class Sandbox:
    """A temporary store plus one registered script project."""

    home: Path
    project_dir: Path
    project: str
    env: dict[str, str]
    cli: list[str]

    @property
    def db(self) -> Path:
        return self.home / "workbench.db"

    def wb(self, *args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run([*self.cli, *args], env=self.env, check=check,
                              capture_output=True, text=True, **kwargs)

    def set_sample_interval(self, seconds: float) -> None:
        (self.home / "config.toml").write_text(f"[runs]\nsample_interval = {seconds}\n")

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Read the store directly (read-only connection)."""
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()


@contextlib.contextmanager
def sandbox(script_text: str, name: str = "bench") -> Iterator[Sandbox]:
    """Fresh WORKBENCH_HOME + a script project registered in it; removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="wb-bench-"))
    try:
        home = root / "home"
        project_dir = root / name
        (project_dir / "data").mkdir(parents=True)
        (project_dir / "data" / "train.csv").write_text("x,y\n1,0\n2,1\n")
        (project_dir / "workbench.toml").write_text(WORKBENCH_TOML.format(name=name))
        (project_dir / "train.py").write_text(script_text)
        env = dict(os.environ, WORKBENCH_HOME=str(home), NO_COLOR="1")
        for leaked in ("WORKBENCH_RUN_ID", "WORKBENCH_PROJECT_DIR", "WORKBENCH_PARAMS"):
            env.pop(leaked, None)
        box = Sandbox(home=home, project_dir=project_dir, project=name, env=env, cli=cli_command())
        box.wb("project", "add", str(project_dir))  # also creates and migrates the store
        yield box
    finally:
        shutil.rmtree(root, ignore_errors=True)


def summary(values: list[float]) -> dict[str, float]:
    """Median, p90 (linear interpolation), min and max, in the values' unit."""
    ordered = sorted(values)
    if len(ordered) == 1:
        p90 = ordered[0]
    else:
        p90 = statistics.quantiles(ordered, n=10, method="inclusive")[8]
    return {"median": statistics.median(ordered), "p90": p90,
            "min": ordered[0], "max": ordered[-1], "n": len(ordered)}


def machine_info() -> dict[str, object]:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        from importlib.metadata import version

        wb_version = version("workbench-mlops")
    except Exception:  # noqa: BLE001 - informational only
        wb_version = None
    return {
        "date": date.today().isoformat(),
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "workbench": wb_version,
    }
