"""An idle TUI does next to nothing: a poll that finds the store unchanged
skips its reads, a covered Home stops drawing its CPU/RAM strip, repeated
`?` does not grow the heap, and full garbage collections stay off the key
path (gc_tuning)."""

from __future__ import annotations

import gc
import time

import pytest
from textual.widgets._footer import FooterKey
from tui_setup import penguins  # noqa: F401 - a fixture, used by name
from tui_support import row, row_keys, sql, use_fixed_system_sampler, wait_for

from workbench.tui import gc_tuning, reads
from workbench.tui.app import make_app
from workbench.tui.screens.help import HelpScreen
from workbench.tui.screens.home import HomeScreen
from workbench.tui.screens.project import ProjectScreen


def counting(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[float]:
    """Calls of owner.name, recorded (the function still runs)."""
    calls: list[float] = []
    real = getattr(owner, name)

    def wrapper(*args, **kwargs):
        calls.append(time.monotonic())
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
    return calls


async def test_home_reads_the_store_only_when_it_changed(penguins, wb_home, monkeypatch):
    use_fixed_system_sampler(monkeypatch)
    snapshots = counting(monkeypatch, reads, "home_snapshot")
    shown = counting(monkeypatch, HomeScreen, "show")
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.project_names == [penguins], what="projects")
        # Two more polls (a second apart) of a store nobody writes to.
        await wait_for(pilot, lambda: len(shown) >= 3, what="polls")
        assert len(snapshots) == 1
        # Another process registers a project: the next poll reads it.
        sql(
            wb_home,
            "INSERT INTO projects (name, path, created_at) VALUES ('other', '/nowhere', 0)",
        )
        await wait_for(pilot, lambda: app.project_names == ["other", penguins], what="the new one")
        assert len(snapshots) == 2
        table = app.screen.query_one("#projects")
        assert row_keys(table) == ["other", penguins]
        # `r` reads, changed or not.
        await pilot.press("r")
        await wait_for(pilot, lambda: len(snapshots) == 3, what="the refresh's read")


async def test_home_reads_again_when_a_projects_workbench_toml_changes(
    penguins, tmp_path, monkeypatch
):
    """Not in the store, so no version tells it: each poll stats the projects'
    workbench.toml (its full read comes only every 30 s)."""
    use_fixed_system_sampler(monkeypatch)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.project_names == [penguins], what="projects")
        table = app.screen.query_one("#projects")
        await wait_for(pilot, lambda: row(table, penguins)[3] == "", what="no error")
        (tmp_path / "penguins" / "workbench.toml").write_text("[train\n")
        await wait_for(
            pilot, lambda: row(table, penguins)[3] == "config error", what="the error", timeout=10
        )


async def test_the_project_screen_reads_its_runs_only_when_the_store_changed(
    penguins, wb_home, monkeypatch
):
    use_fixed_system_sampler(monkeypatch)
    page = counting(monkeypatch, reads, "project_runs")
    shown = counting(monkeypatch, ProjectScreen, "show")
    app = make_app(open_project=penguins)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await wait_for(
            pilot, lambda: isinstance(app.screen, ProjectScreen) and app.screen, what="project"
        )
        await wait_for(pilot, lambda: len(shown) >= 3, what="polls")
        assert len(page) == 1
        sql(
            wb_home,
            "INSERT INTO runs (project_id, status, trainer, priority, created_at)"
            " SELECT id, 'queued', 'lightgbm', 0, 0 FROM projects WHERE name = ?",
            (penguins,),
        )
        table = screen.query_one("#runs")
        await wait_for(pilot, lambda: table.row_count == 1, what="the new run")
        assert len(page) >= 2


class CountingSampler:
    """A reading every time it is asked (the strip's thread asks every second)."""

    def sample(self) -> dict:
        return {"ts": time.time(), "cpu": 10.0, "ram": 20.0, "gpus": None}


async def test_a_covered_home_does_not_redraw_its_system_strip(penguins, monkeypatch):
    from workbench.tui.widgets.system_strip import SystemStrip

    monkeypatch.setattr(reads, "SystemSampler", CountingSampler)
    updates = counting(monkeypatch, SystemStrip, "update_sample")
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: len(updates) >= 2, what="the strip drawn")
        app.open_project(penguins)
        shown = counting(monkeypatch, ProjectScreen, "show")
        await wait_for(pilot, lambda: len(shown) >= 1, what="the project")
        covered = len(updates)
        await wait_for(pilot, lambda: len(shown) >= 3, what="two more seconds")
        assert len(updates) <= covered + 1  # at most one sample already on its way
        app.pop_screen()
        await wait_for(pilot, lambda: len(updates) >= covered + 2, what="the strip again")


async def test_help_opened_again_and_again_leaks_no_footer_keys(penguins, monkeypatch):
    """Each `?` recomposes the footer twice; its old keys must be freed
    (Textual's data_bind kept every one alive, textual#6666)."""
    use_fixed_system_sampler(monkeypatch)
    app = make_app(open_project=penguins)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ProjectScreen), what="project")
        await pilot.pause()
        texts = []
        for _ in range(15):
            await pilot.press("question_mark")
            help_screen = await wait_for(
                pilot, lambda: isinstance(app.screen, HelpScreen) and app.screen, what="help"
            )
            texts.append(help_screen.query_one("Static").visual)
            await pilot.press("question_mark")
            await wait_for(pilot, lambda: isinstance(app.screen, ProjectScreen), what="back")
        shown_keys = len(app.screen.query(FooterKey))
        gc.collect()
        alive = sum(isinstance(o, FooterKey) for o in gc.get_objects())
        assert alive <= 2 * shown_keys, (alive, shown_keys)
        assert all(text is texts[0] for text in texts)  # the help's text is parsed once


async def test_objects_are_frozen_once_a_screen_settles_and_freed_on_exit(penguins, monkeypatch):
    use_fixed_system_sampler(monkeypatch)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.gc_tuning.freezes >= 1, what="Home settled")
        assert gc.get_freeze_count() > 0
        # Input seen just now: no reclaim, however much was frozen.
        app.gc_tuning.input_seen()
        assert not app.gc_tuning.maybe_reclaim()
    assert gc.get_freeze_count() == 0


def test_frozen_garbage_is_reclaimed_only_while_idle(monkeypatch):
    monkeypatch.setattr(gc_tuning, "RECLAIM_AFTER", 10)
    tuning = gc_tuning.GcTuning()
    try:
        tuning.settled()  # start-up: the baseline, nothing to reclaim in it
        assert not tuning.maybe_reclaim(force=False)
        cycles = [[] for _ in range(100)]
        for c in cycles:
            c.append(c)  # garbage only the collector frees
        tuning.settled()  # a screen settles with them
        del cycles  # the list goes at once (no cycle); the cycles stay, frozen
        frozen = gc.get_freeze_count()
        tuning.input_seen()
        assert not tuning.maybe_reclaim()  # someone is typing
        assert gc.get_freeze_count() == frozen
        tuning.last_input -= gc_tuning.IDLE_SECONDS
        assert tuning.maybe_reclaim()
        assert gc.get_freeze_count() <= frozen - 100  # the cycles were collected
        assert not tuning.maybe_reclaim()  # nothing frozen since
    finally:
        tuning.release()
    assert gc.get_freeze_count() == 0


def test_a_pause_in_the_typing_freezes_what_survived(monkeypatch):
    tuning = gc_tuning.GcTuning()
    try:
        tuning.settled()
        kept = [[] for _ in range(50)]  # new long-lived objects
        tuning.input_seen()
        tuning.tick()  # typing: nothing moves
        frozen = gc.get_freeze_count()
        tuning.last_input -= gc_tuning.PAUSE_SECONDS
        tuning.tick()
        assert gc.get_freeze_count() >= frozen + len(kept)
    finally:
        tuning.release()


def test_activity_ages_under_a_minute_move_in_steps_of_ten_seconds():
    from workbench.tui.screens.home import _age

    assert [_age(s) for s in (0, 9.9, 10, 19, 59, 61, 7200)] == [
        "just now",
        "just now",
        "10s ago",
        "10s ago",
        "50s ago",
        "1m ago",
        "2h ago",
    ]


def test_recent_activity_ages_move_on_together(monkeypatch):
    """Events a few seconds apart change their age at the same step of the
    clock: the activity table is redrawn once per 10 s step, not once per
    event crossing a step of its own."""
    from types import SimpleNamespace

    from workbench.store.dashboard import Activity
    from workbench.tui.screens import home

    shown: list[list] = []
    table = SimpleNamespace(show=lambda rows: shown.append([cells[0] for _, cells in rows]))
    events = [Activity(i, 1000.0 + 3 * i, "run.queued", f"run {i}", None, None) for i in range(3)]
    screen = SimpleNamespace(_events=events, query_one=lambda *_: table)
    for now in range(1010, 1030):  # the 1 s polls
        monkeypatch.setattr(home.time, "time", lambda now=now: now + 0.5)
        home.HomeScreen._show_activity(screen)  # type: ignore[arg-type]
    distinct = [ages for i, ages in enumerate(shown) if i == 0 or ages != shown[i - 1]]
    assert distinct == [["10s ago", "just now", "just now"], ["20s ago", "10s ago", "10s ago"]]
