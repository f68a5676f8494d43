"""Helpers shared by the benchmark scripts (not a benchmark itself).

Every benchmark runs against a fresh, temporary store (`WORKBENCH_HOME`) and a
throw-away script project, and removes both when it ends.
"""

from __future__ import annotations

import contextlib
import json
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
        return subprocess.run(
            [*self.cli, *args], env=self.env, check=check, capture_output=True, text=True, **kwargs
        )

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
    return {
        "median": statistics.median(ordered),
        "p90": p90,
        "min": ordered[0],
        "max": ordered[-1],
        "n": len(ordered),
    }


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


# Environment for peer tools run by the comparison benchmarks: no telemetry, no
# Hugging Face Hub, no analytics. The benchmarks never pass a remote URL either.
OFFLINE_ENV = {
    "DO_NOT_TRACK": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
}
# ... and variables that would point a peer at a server or a Space: removed.
REMOTE_VARS = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "TRACKIO_SPACE_ID",
    "TRACKIO_SERVER_URL",
    "TRACKIO_DATASET_ID",
    "TRACKIO_BUCKET_ID",
    "TRACKIO_WEBHOOK_URL",
)


def offline_env(base: dict[str, str], **extra: str) -> dict[str, str]:
    """`base` with OFFLINE_ENV set, REMOTE_VARS removed and `extra` added."""
    env = {k: v for k, v in base.items() if k not in REMOTE_VARS}
    env.update(OFFLINE_ENV)
    env.update(extra)
    return env


RESULT_MARK = "BENCH_RESULT "


def run_embedded(
    python: str, script: str, args: list[str], env: dict[str, str], cwd: Path, timeout: float = 600
) -> dict:
    """Run `script` (source text) in interpreter `python` and return the JSON object
    that it printed on a line starting with RESULT_MARK.

    On a crash, a timeout or no result, returns {"error": "..."} with the tail of
    stderr instead of raising, so one failing part does not sink the others."""
    try:
        proc = subprocess.run(
            [python, "-c", script, *args],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    except OSError as exc:
        return {"error": f"cannot run {python}: {exc}"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            found = json.loads(line[len(RESULT_MARK) :])
            found.setdefault("stderr_tail", proc.stderr[-2000:] if proc.stderr else "")
            return found
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    return {"error": f"exited {proc.returncode} without a result: " + " | ".join(tail)}


def rate(points: float, seconds: float) -> float:
    return points / seconds if seconds > 0 else float("inf")


def fmt_rate(per_s: float | None) -> str:
    """Points per second, compact: 1.23M/s, 456k/s, 789/s."""
    if per_s is None:
        return "-"
    if per_s >= 1e6:
        return f"{per_s / 1e6:.2f}M/s"
    if per_s >= 1e4:
        return f"{per_s / 1e3:.0f}k/s"
    if per_s >= 1e3:
        return f"{per_s / 1e3:.1f}k/s"
    return f"{per_s:.0f}/s"


def dir_size(path: Path) -> int:
    """Bytes of all files under `path` (a store: the db, its -wal and -shm)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def log(message: str) -> None:
    """Progress goes to stderr, so stdout holds only the table or the JSON."""
    print(message, file=sys.stderr, flush=True)


def emit(result: dict, report, as_json: bool) -> None:
    """Print a benchmark's result: its table, or one JSON document plus the
    verdict line on stderr."""
    if as_json:
        print(json.dumps(result, indent=2))
        log(report(result).splitlines()[-1])
    else:
        print(report(result))
