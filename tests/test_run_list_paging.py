"""`workbench run list` paging: `--after ID`, the JSON page and its cursor."""

from __future__ import annotations

import json

import pytest
from wbtest import wb_inprocess as cli

from workbench.store import open_store
from workbench.store import projects as project_store
from workbench.store import runs as run_store
from workbench.store.metrics import append_points

BASE = 1_700_000_000.0


@pytest.fixture
def runs(tmp_path) -> dict[str, list[int]]:
    """310 finished runs, alternating between two projects (and a third run in
    every 31 for "beta"), each with a final metric; ids by project, oldest first."""
    store = open_store()
    made: dict[str, list[int]] = {"alpha": [], "beta": []}
    try:
        projects = {}
        for name in made:
            (tmp_path / name).mkdir()
            projects[name] = project_store.add(store, name, str(tmp_path / name)).id
        with store.write() as conn:
            for i in range(310):
                name = "beta" if i % 2 or i % 31 == 0 else "alpha"
                run_id = run_store.create(
                    store,
                    projects[name],
                    "lightgbm",
                    event_message="run {id} succeeded",
                    status=run_store.RunStatus.SUCCEEDED,
                    created_at=BASE + i,
                    started_at=BASE + i,
                    ended_at=BASE + i + 30,
                    exit_code=0,
                )
                append_points(conn, run_id, {"accuracy": [(None, BASE + i, 0.5 + i / 1000)]})
                made[name].append(run_id)
    finally:
        store.close()
    return made


def _pages(*args: str) -> tuple[list[int], list[dict]]:
    """Every id seen following `next_after` from the first page, and the pages."""
    seen: list[int] = []
    pages: list[dict] = []
    after: list[str] = []
    while True:
        result = cli("run", "list", *args, "--json", "--page", *after, check=True)
        page = json.loads(result.stdout)
        pages.append(page)
        seen.extend(r["id"] for r in page["runs"])
        if page["next_after"] is None:
            return seen, pages
        assert page["next_after"] == page["runs"][-1]["id"]
        after = ["--after", str(page["next_after"])]
        assert len(pages) < 100, "paging does not end"


def test_json_pages_visit_every_run_once_newest_first(runs):
    every = sorted(runs["alpha"] + runs["beta"], reverse=True)
    seen, pages = _pages("--limit", "37")
    assert seen == every  # each run once, in order, none missing
    assert len(pages) == 9  # 310 runs: 8 full pages of 37 and one of 14
    assert all(p["total"] == 310 for p in pages)
    assert [len(p["runs"]) for p in pages] == [37] * 8 + [14]
    assert pages[0]["runs"][0]["metrics"] == {"accuracy": pytest.approx(0.5 + 309 / 1000)}


def test_a_page_that_ends_exactly_at_the_last_run_has_no_cursor(runs):
    seen, pages = _pages("--limit", "155")
    assert len(seen) == 310 and len(set(seen)) == 310
    assert [p["next_after"] is None for p in pages] == [False, True]


def test_after_with_a_project_pages_only_that_project(runs):
    seen, pages = _pages("beta", "--limit", "40")
    assert seen == sorted(runs["beta"], reverse=True)
    assert {r["project"] for p in pages for r in p["runs"]} == {"beta"}
    assert all(p["total"] == len(runs["beta"]) for p in pages)
    middle = runs["alpha"][50]
    older = json.loads(cli("run", "list", "alpha", "--after", str(middle), "--json").stdout)
    assert [r["id"] for r in older["runs"]] == sorted(runs["alpha"][:50], reverse=True)
    assert older["next_after"] is None  # 50 left: one default page holds them


def test_after_with_all_lists_every_older_run(runs):
    every = sorted(runs["alpha"] + runs["beta"], reverse=True)
    cut = every[100]
    page = json.loads(cli("run", "list", "--all", "--after", str(cut), "--json").stdout)
    assert [r["id"] for r in page["runs"]] == every[101:]
    assert page["next_after"] is None and page["total"] == 310


def test_json_without_paging_options_stays_a_bare_list(runs):
    result = cli("run", "list", "--json", "--limit", "5", check=True)
    listed = json.loads(result.stdout)
    assert isinstance(listed, list)
    assert [r["id"] for r in listed] == sorted(runs["alpha"] + runs["beta"], reverse=True)[:5]
    everything = json.loads(cli("run", "list", "--json", "--all", check=True).stdout)
    assert len(everything) == 310 and len({r["id"] for r in everything}) == 310


def test_tsv_into_a_pipe_pages_with_after(runs):
    every = sorted(runs["alpha"] + runs["beta"], reverse=True)
    first = cli("run", "list", check=True)
    rows = [line.split("\t") for line in first.stdout.splitlines()]
    assert rows[0] == ["ID", "PROJECT", "STATUS", "STARTED", "DURATION", "METRICS"]
    assert [int(r[0]) for r in rows[1:]] == every[:50]
    assert all(len(r) == 6 for r in rows)
    assert rows[1][2] == "succeeded" and rows[1][5].startswith("accuracy=")
    assert "showing 50 of 310 runs" in first.stderr
    assert f"--after {every[49]}" in first.stderr
    seen: list[int] = []
    after = None
    while True:
        args = ("run", "list", "--limit", "64") + (("--after", str(after)) if after else ())
        result = cli(*args, check=True)
        lines = result.stdout.splitlines()
        assert lines[0].startswith("ID\t")
        ids = [int(line.split("\t")[0]) for line in lines[1:]]
        seen.extend(ids)
        if "--after" not in result.stderr:
            break
        after = ids[-1]
        assert f"--after {after}" in result.stderr
    assert seen == every


def test_after_the_oldest_run_lists_nothing(runs):
    oldest = min(runs["alpha"] + runs["beta"])
    result = cli("run", "list", "--after", str(oldest), check=True)
    assert result.stdout == "" and f"no runs before run {oldest}" in result.stderr
    page = json.loads(cli("run", "list", "--after", str(oldest), "--json", check=True).stdout)
    assert page == {"runs": [], "next_after": None, "total": 310}


@pytest.mark.parametrize(
    "bad", ["-1", "0", "x", "1.5", "", "99999999999999999999", "１２"]
)
def test_a_bad_after_is_refused_on_one_line(runs, bad):
    for extra in ((), ("--json",)):
        result = cli("run", "list", "--after", bad, *extra)
        assert result.returncode == 2, result
        assert "--after" in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert result.stdout == ""


def test_a_listing_shows_a_dead_runs_status_without_recording_it(runs, tmp_path):
    store = open_store()
    try:
        project = project_store.by_name(store, "alpha")
        assert project is not None
        # Marked running, with no supervisor that could own it: its owner is gone.
        run_id = run_store.create(
            store,
            project.id,
            "lightgbm",
            event_message="run {id} running",
            status=run_store.RunStatus.RUNNING,
            created_at=BASE + 400,
            started_at=BASE + 400,
        )
    finally:
        store.close()
    page = json.loads(cli("run", "list", "--page", "--json", "--limit", "3").stdout)
    assert page["runs"][0]["id"] == run_id and page["runs"][0]["status"] == "lost"
    assert page["total"] == 311
    store = open_store()
    try:
        assert run_store.status_of(store, run_id) is run_store.RunStatus.RUNNING
    finally:
        store.close()


def test_many_rows_at_a_terminal_are_plain_aligned_text(runs, monkeypatch):
    monkeypatch.setattr("workbench.cli.run.stdout_is_terminal", lambda: True)
    monkeypatch.setenv("COLUMNS", "60")
    every = sorted(runs["alpha"] + runs["beta"], reverse=True)
    result = cli("run", "list", "--limit", "250", check=True)
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["ID", "PROJECT"]
    assert [int(line.split()[0]) for line in lines[1:]] == every[:250]  # ids whole
    assert all(len(line) <= 60 for line in lines)
    assert "\t" not in result.stdout and "\x1b[" not in result.stdout
    assert "showing 250 of 310 runs" in result.stderr and f"--after {every[249]}" in result.stderr


@pytest.mark.parametrize(
    "tamper",
    [
        "started_at = 'noon'",
        "ended_at = 1e999",
        "started_at = -1e999",
        "created_at = 'yesterday'",
        "created_at = 1e999",
        "created_at = X'00'",
        "exit_code = 'zero'",
        "exit_code = 1.5",
        "trainer = X'FF00FE'",
        "trainer = 42",
        "started_at = 5",
    ],
)
def test_a_page_reads_hand_written_rows_as_a_full_listing_does(runs, tamper):
    import sqlite3

    from workbench.core import paths
    from workbench.runs.queries import list_page, list_runs

    target = runs["alpha"][-1]
    conn = sqlite3.connect(paths.db_path())
    with conn:
        conn.execute(f"UPDATE runs SET {tamper} WHERE id = ?", (target,))
    conn.close()
    store = open_store()
    try:
        full = list_runs(store, None, 20)
        paged, more = list_page(store, None, 20)
    finally:
        store.close()
    assert more is True
    for doc in (*full, *paged):  # a run that never ended lasts until now
        if doc["id"] == target and doc["ended_at"] is None:
            doc.pop("duration_s")
    assert paged == full
    listed = json.loads(cli("run", "list", "--json", "--limit", "20", check=True).stdout)
    assert [r["id"] for r in listed] == [r["id"] for r in full]
