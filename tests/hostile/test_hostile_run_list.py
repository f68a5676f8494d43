"""Hostile paging arguments to `workbench run list` (`--after`, `--page`).

Every case goes through the real entry point in this process and must: exit 2;
say why in one `error:` line on stderr naming the argument; print nothing on
stdout and no traceback; leave the store's rows and files as they were.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from wbtest import wb_inprocess as wb  # no case starts a process

BIG = "9" * 5000

# id -> (arguments, a piece of the one-line error)
CASES: dict[str, tuple[list[str], str]] = {
    "after negative": (["run", "list", "--after", "-1"], "--after"),
    "after zero": (["run", "list", "--after", "0"], "--after"),
    "after text": (["run", "list", "--after", "next"], "--after"),
    "after float": (["run", "list", "--after", "1.5"], "--after"),
    "after exponent": (["run", "list", "--after", "1e3"], "--after"),
    "after hex": (["run", "list", "--after", "0x10"], "--after"),
    "after plus sign": (["run", "list", "--after", "+5"], "--after"),
    "after empty": (["run", "list", "--after", ""], "--after"),
    "after spaces": (["run", "list", "--after", " 5 "], "--after"),
    "after underscores": (["run", "list", "--after", "1_000"], "--after"),
    "after full-width digits": (["run", "list", "--after", "１２"], "--after"),
    "after arabic-indic digits": (["run", "list", "--after", "٣"], "--after"),
    "after beyond int64": (["run", "list", "--after", "9223372036854775808"], "--after"),
    "after 20 digits": (["run", "list", "--after", "99999999999999999999"], "--after"),
    "after 5000 digits": (["run", "list", "--after", BIG], "--after"),
    "after sql": (["run", "list", "--after", "1; DROP TABLE runs"], "--after"),
    "after nan": (["run", "list", "--after", "nan"], "--after"),
    "after missing value": (["run", "list", "--after"], "--after"),
    "after with json negative": (["run", "list", "--json", "--after", "-7"], "--after"),
    "after with project text": (["run", "list", "proj", "--after", "x"], "--after"),
    "after unknown project": (["run", "list", "ghost", "--after", "1"], "ghost"),
    "after with all and limit": (
        ["run", "list", "--all", "--limit", "2", "--after", "1"],
        "--all",
    ),
    "page without json": (["run", "list", "--page"], "--page"),
    "page with after, no json": (["run", "list", "--page", "--after", "3"], "--page"),
}


@pytest.fixture(scope="module")
def store_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile-run-list")


@pytest.fixture
def prepared(store_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = store_home / "home"
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    if not (home / "workbench.db").exists():
        wb("project", "init", str(store_home / "proj"), "--template", "script", check=True)
        conn = sqlite3.connect(home / "workbench.db")
        with conn:
            conn.executemany(
                "INSERT INTO runs (project_id, status, trainer, created_at)"
                " VALUES (1, 'succeeded', 'script', ?)",
                [(i,) for i in range(3)],
            )
        conn.close()
    return home


def _fingerprint(home: Path) -> tuple:
    conn = sqlite3.connect(home / "workbench.db")
    try:
        rows = tuple(
            tuple(conn.execute(f"SELECT * FROM {table} ORDER BY 1"))
            for table in ("projects", "runs", "events")
        )
    finally:
        conn.close()
    files = tuple(
        sorted(
            str(p.relative_to(home))
            for p in home.rglob("*")
            if not p.name.startswith("workbench.db") and "lock" not in p.name
        )
    )
    return rows, files


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_hostile_paging_argument_is_refused_in_one_line(case: str, prepared: Path):
    args, expected = CASES[case]
    before = _fingerprint(prepared)
    result = wb(*args)
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:") and expected in lines[0], lines[0]
    assert len(lines[0]) < 400  # a 5,000-digit cursor is not echoed whole
    assert _fingerprint(prepared) == before


def test_a_good_cursor_on_the_same_store_lists_the_older_runs(prepared: Path):
    # The refusals above are about the arguments, not the store: the same
    # listing with a valid cursor works.
    result = wb("run", "list", "--after", "3", "--json", check=True)
    assert '"next_after": null' in result.stdout and '"total": 3' in result.stdout
