"""Hostile command-line arguments across commands.

Every case: exit 2, one line on stderr naming the argument (or what was not
found), no traceback, the store unchanged (same runs, same projects) and no
file written where the arguments pointed.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from wbtest import wb_inprocess as wb  # no case starts a process: run them in this one

BIG = "9" * 5000
HUGE = "99999999999999999999"

# id -> (arguments, a piece of the one-line error)
CASES: dict[str, tuple[list[str], str]] = {
    "list limit huge": (["run", "list", "--limit", HUGE], "--limit"),
    "list limit -1": (["run", "list", "--limit", "-1"], "--limit"),
    "list limit 0": (["run", "list", "--limit", "0"], "--limit"),
    "list limit 5000 digits": (["run", "list", "--limit", BIG], "5000 characters"),
    "list limit float": (["run", "list", "--limit", "1.5"], "--limit"),
    "list limit text": (["run", "list", "--limit", "lots"], "--limit"),
    "list all and limit": (["run", "list", "--all", "--limit", "3"], "--all"),
    "list unknown project": (["run", "list", "no-such-project"], "no-such-project"),
    "list project sql": (["run", "list", "x'; DROP TABLE runs; --"], "no project"),
    "show missing run": (["run", "show", "424242"], "no run 424242"),
    "show sql id": (["run", "show", "1; drop table runs"], "whole numbers"),
    "show 5000 digits": (["run", "show", BIG], "no run"),
    "show beyond int64": (["run", "show", "9223372036854775808"], "no run"),
    "show unicode": (["run", "show", "ünïcødé-run"], "whole numbers"),
    "show fullwidth digits": (["run", "show", "１２"], "whole numbers"),
    "show empty": (["run", "show", ""], "whole numbers"),
    "show negative": (["run", "show", "--", "-1"], "whole numbers"),
    "logs tail -5": (["run", "logs", "1", "--tail", "-5"], "--tail"),
    "logs tail huge": (["run", "logs", "1", "--tail", HUGE], "--tail"),
    "logs missing run": (["run", "logs", "777"], "no run 777"),
    "stop missing run": (["run", "stop", "31337"], "no run 31337"),
    "metrics points -5": (["run", "metrics", "1", "--points", "-5"], "--points"),
    "metrics points 0": (["run", "metrics", "1", "--points", "0"], "--points"),
    "metrics points 5000 digits": (["run", "metrics", "1", "--points", BIG], "--points"),
    "compare sql id": (["run", "compare", "1", "2 OR 1=1"], "whole numbers"),
    "start priority huge": (["run", "start", "proj", "--priority", HUGE], "--priority"),
    "start priority text": (["run", "start", "proj", "--priority", "high"], "--priority"),
    "start unknown project": (["run", "start", "ghost-project"], "ghost-project"),
    "serve port 70000": (["serve", "bundle", "--port", "70000"], "--port"),
    "serve port -1": (["serve", "bundle", "--port", "-1"], "--port"),
    "sweep trials 0": (["sweep", "start", "proj", "--trials", "0"], "--trials"),
    "sweep trials 5000 digits": (["sweep", "start", "proj", "--trials", BIG], "--trials"),
    "sweep parallel -5": (
        ["sweep", "start", "proj", "--trials", "2", "--parallel", "-5"],
        "--parallel",
    ),
    "model list unknown project": (["model", "list", "ghost"], "ghost"),
    "model show version beyond int64": (["model", "show", f"proj@{HUGE}000"], "proj"),
    "model promote version huge": (["model", "promote", "proj", BIG], "proj"),
    "model export format": (
        ["model", "export", "proj", "--format", "pickle", "-o", "x"],
        "no model versions",
    ),
    "model export unwritable -o": (
        ["model", "export", "proj", "--format", "bundle", "-o", "/proc/forbidden/out"],
        "proj",
    ),
    "predict unwritable -o": (
        ["predict", "missing-bundle", "missing.csv", "-o", "/proc/forbidden/out.csv"],
        "missing",
    ),
    "project show traversal": (["project", "show", "../../etc/passwd"], "../../etc/passwd"),
    "data list unknown project": (["data", "list", "ghost"], "ghost"),
    "watch debounce negative": (["watch", "start", "--debounce", "-1"], "--debounce"),
    "doctor unknown option": (["doctor", "--bogus"], "--bogus"),
    "fsck unknown option": (["fsck", "--repair=yes"], "--repair"),
    "unknown command": (["run", "explode"], "explode"),
}


@pytest.fixture(scope="module")
def store_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One store with a project and a finished run, shared by the cases (none may change it)."""
    return tmp_path_factory.mktemp("hostile-cli")


def _fingerprint(home: Path) -> tuple:
    conn = sqlite3.connect(home / "workbench.db")
    try:
        rows = tuple(
            tuple(conn.execute(f"SELECT * FROM {table} ORDER BY 1"))
            for table in ("projects", "runs", "model_versions", "events")
        )
    finally:
        conn.close()
    files = tuple(
        sorted(
            str(p.relative_to(home))
            for p in home.rglob("*")
            if not p.name.startswith("workbench.db") and "queue.lock" not in p.name
        )
    )
    return rows, files


@pytest.fixture
def prepared(store_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = store_home / "home"
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    if not (home / "workbench.db").exists():
        folder = store_home / "proj"
        wb("project", "init", str(folder), "--template", "script", check=True)
        conn = sqlite3.connect(home / "workbench.db")
        with conn:
            conn.execute(
                "INSERT INTO runs (project_id, status, trainer, created_at)"
                " VALUES (1, 'succeeded', 'script', 0)"
            )
        conn.close()
    return home


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_hostile_argument_is_refused_in_one_line(case: str, prepared: Path, tmp_path: Path):
    args, expected = CASES[case]
    before = _fingerprint(prepared)
    project_toml = (prepared.parent / "proj" / "workbench.toml").read_bytes()
    result = wb(*args, timeout=120)
    assert result.returncode == 2, (result.returncode, result.stderr)
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:") and expected in lines[0], lines[0]
    assert len(lines[0]) < 400  # a 5,000-digit argument is not echoed whole
    assert _fingerprint(prepared) == before  # the store is unchanged
    assert (prepared.parent / "proj" / "workbench.toml").read_bytes() == project_toml
    assert not Path("x").exists()
    assert hashlib.sha256(project_toml).hexdigest()  # the project file is still readable


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 30
