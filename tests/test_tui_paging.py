"""A store-size-proof run table: the project screen reads a page of runs (sorted,
filtered and without the archive, in SQL), and the next page as the user
scrolls towards the end or presses G; `store.run_pages` on its own too."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from textual.widgets import Input, Label
from tui_support import SAMPLES, plain, row_keys, use_fixed_system_sampler, wait_for

from workbench.projects import add_project
from workbench.store import open_store
from workbench.store.metrics import append_points
from workbench.store.run_pages import run_page
from workbench.tui import reads
from workbench.tui.app import make_app
from workbench.tui.screens.project import PAGE_ROWS, ProjectScreen

T0 = 1_750_000_000.0
RUNS = 250


def add_runs(store, project_id: int, count: int) -> list[int]:
    """`count` finished runs made in the store directly (no training): run i
    took 10 + i % 7 seconds, has alpha = i / 1000 and roc_auc 0.5 + (i % 10) / 100."""
    with store.write() as conn:
        ids = []
        for i in range(count):
            start = T0 + i * 60
            run_id = conn.execute(
                "INSERT INTO runs (project_id, status, trainer, priority, created_at,"
                " started_at, ended_at, exit_code) VALUES (?, ?, 'script', 0, ?, ?, ?, 0)",
                (project_id, "failed" if i % 50 == 7 else "succeeded", start, start,
                 start + 10 + i % 7),
            ).lastrowid
            conn.execute(
                "INSERT INTO params (run_id, key, value) VALUES (?, 'alpha', ?),"
                " (?, 'solver', ?)",
                (run_id, json.dumps(i / 1000), run_id, json.dumps("sgd" if i % 2 else "adam")),
            )
            append_points(conn, run_id, {"roc_auc": [(None, start + 5, 0.5 + (i % 10) / 100)]})
            ids.append(int(run_id))
    return ids


@pytest.fixture
def big(tmp_path: Path, wb_home: Path):
    """The cancer sample project (primary metric roc_auc) with RUNS runs."""
    folder = tmp_path / "cancer"
    shutil.copytree(SAMPLES / "cancer-script", folder)
    store = open_store()
    try:
        project_id = add_project(store, folder)["id"]
        ids = add_runs(store, project_id, RUNS)
    finally:
        store.close()
    return project_id, ids


# The store's pages ------------------------------------------------------------------


def test_a_page_is_the_newest_runs_and_says_more_follow(big):
    project_id, ids = big
    store = open_store()
    try:
        page = run_page(store, project_id, limit=30)
        assert [r.id for r in page.runs] == ids[::-1][:30]
        assert page.more and page.archived == 0
        whole = run_page(store, project_id, limit=RUNS)
        assert len(whole.runs) == RUNS and not whole.more
    finally:
        store.close()


def test_sorts_filter_and_archive_are_done_by_the_store(big):
    project_id, ids = big
    store = open_store()
    try:
        by_metric = run_page(store, project_id, limit=5, sort="metric", metric="roc_auc")
        # roc_auc 0.59 for every i % 10 == 9; the newest of those first
        best = [i for i in ids[::-1] if (i - ids[0]) % 10 == 9][:5]
        assert [r.id for r in by_metric.runs] == best
        worst = run_page(
            store, project_id, limit=1, sort="metric", metric="roc_auc", lower_is_better=True
        )
        assert (worst.runs[0].id - ids[0]) % 10 == 0
        longest = run_page(store, project_id, limit=3, sort="duration", now=T0)
        assert all((r.id - ids[0]) % 7 == 6 for r in longest.runs)  # 16 s each
        by_status = run_page(store, project_id, limit=RUNS, sort="status")
        failed = [r.id for r in by_status.runs if r.status == "failed"]
        assert [r.status for r in by_status.runs[: len(failed)]] == ["failed"] * len(failed)
        assert failed == sorted(failed, reverse=True) and len(failed) == 5

        assert [r.id for r in run_page(store, project_id, limit=9, text="FAILED").runs] == failed
        # A param as `key=value`, a text param without its JSON quotes.
        alpha = run_page(store, project_id, limit=RUNS, text="alpha=0.12").runs
        assert {r.id - ids[0] for r in alpha} == set(range(120, 130))  # 0.12, 0.121...
        assert len(run_page(store, project_id, limit=RUNS, text="solver=sgd").runs) == RUNS // 2
        # LIKE's wildcards in the text are plain characters.
        assert run_page(store, project_id, limit=RUNS, text="%").runs == []
        assert run_page(store, project_id, limit=RUNS, text="_").runs == []

        with store.write() as conn:
            conn.execute("UPDATE runs SET archived_at = ? WHERE id = ?", (T0, ids[-1]))
            conn.execute("UPDATE runs SET note = 'tree 50% deeper' WHERE id = ?", (ids[3],))
            # A value that is not JSON (a hand-edited store) is matched as stored.
            conn.execute(
                "INSERT INTO params (run_id, key, value) VALUES (?, 'odd', '{not json')",
                (ids[5],),
            )
        page = run_page(store, project_id, limit=1)
        assert page.runs[0].id == ids[-2] and page.archived == 1
        assert run_page(store, project_id, limit=1, archived=True).runs[0].id == ids[-1]
        assert [r.id for r in run_page(store, project_id, limit=9, text="50% d").runs] == [ids[3]]
        assert [r.id for r in run_page(store, project_id, limit=9, text="odd={not").runs] == [
            ids[5]
        ]
        with pytest.raises(ValueError, match="unknown sort"):
            run_page(store, project_id, limit=1, sort="name")
    finally:
        store.close()


# The project screen -----------------------------------------------------------------


async def test_the_project_screen_reads_a_page_and_more_on_scroll_and_g(big, monkeypatch):
    use_fixed_system_sampler(monkeypatch)
    _, ids = big
    limits: list[int] = []
    real = reads.project_runs

    def counted(name, limit=PAGE_ROWS, **kwargs):
        limits.append(limit)
        return real(name, limit, **kwargs)

    monkeypatch.setattr(reads, "project_runs", counted)
    app = make_app(open_project="cancer")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await wait_for(
            pilot, lambda: isinstance(app.screen, ProjectScreen) and app.screen, what="project"
        )
        runs = screen.query_one("#runs")
        await wait_for(pilot, lambda: runs.row_count == PAGE_ROWS, what="the first page")
        summary = screen.query_one("#project-summary", Label)
        assert f"{PAGE_ROWS} of {RUNS} runs" in plain(summary)
        assert set(limits) == {PAGE_ROWS}  # the polls so far read one page
        assert row_keys(runs)[0] == str(ids[-1])

        await pilot.press("G")  # the last row loaded, the next page, then its last row
        await wait_for(
            pilot, lambda: runs.cursor_row == 2 * PAGE_ROWS - 1, what="the second page's end"
        )
        # Near the end of those loaded: the rest come without another G.
        await wait_for(pilot, lambda: runs.row_count == RUNS, what="the rest")
        assert limits[-1] == 3 * PAGE_ROWS  # a page at a time, never the whole project
        await wait_for(pilot, lambda: f"roc_auc  {RUNS} runs" in plain(summary), what="no more")
        assert f"of {RUNS}" not in plain(summary)
        assert runs.selected_key == str(ids[-2 * PAGE_ROWS])  # the cursor stayed put

        await pilot.press("g")  # back to the top; a new sort reads the first page again
        assert runs.cursor_row == 0
        await pilot.press("s")
        await wait_for(
            pilot,
            lambda: runs.row_count == PAGE_ROWS and row_keys(runs)[0] == str(ids[-1 - 42]),
            what="sorted by status: the newest failed run first",
        )
        assert "Status ▲" in str(runs.columns["status"].label)

        await pilot.press("slash", *"alpha=0.00")  # the store filters every run, not a page
        await wait_for(pilot, lambda: runs.row_count == 9, what="alpha 0.001-0.009")
        await pilot.press("ctrl+a", "ctrl+k", *"no such run")
        hint = screen.query_one("#project-empty", Label)
        await wait_for(pilot, lambda: "No run matches" in plain(hint), what="the filter's hint")
        assert runs.row_count == 0
        screen.query_one("#filter", Input).focus()
        await pilot.press("escape")
        await wait_for(pilot, lambda: runs.row_count == PAGE_ROWS, what="the first page again")
