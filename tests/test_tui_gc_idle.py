"""The garbage collection tuning costs an idle app nothing that grows with the
session: its ticks never walk the frozen heap (`gc.get_freeze_count()` does,
~90 ms per tick once every screen was opened a few times), frozen garbage is
still reclaimed once nobody types, and the app keeps nothing of a closed
screen's widgets."""

from __future__ import annotations

import gc

from tui_setup import penguins  # noqa: F401 - a fixture, used by name
from tui_support import use_fixed_system_sampler, wait_for

from workbench.tui import app as app_module
from workbench.tui import gc_tuning
from workbench.tui.app import make_app
from workbench.tui.screens.data import DataScreen
from workbench.tui.screens.home import HomeScreen
from workbench.tui.screens.project import ProjectScreen


def _count_ticks(monkeypatch) -> list[int]:
    """A list that grows by one at each of the GC tuning's ticks."""
    ticks: list[int] = []
    tick = gc_tuning.GcTuning.tick

    def counted_tick(self: gc_tuning.GcTuning) -> None:
        ticks.append(1)
        tick(self)

    monkeypatch.setattr(gc_tuning.GcTuning, "tick", counted_tick)
    return ticks


async def test_idle_ticks_never_walk_the_frozen_heap_and_still_reclaim(penguins, monkeypatch):
    use_fixed_system_sampler(monkeypatch)
    monkeypatch.setattr(app_module, "GC_TICK_SECONDS", 0.05)  # many ticks, soon
    monkeypatch.setattr(gc_tuning, "IDLE_SECONDS", 0.2)
    monkeypatch.setattr(gc_tuning, "RECLAIM_AFTER", 1)  # any screen settled is enough
    walks: list[int] = []
    freeze_count = gc.get_freeze_count

    def counted() -> int:
        walks.append(1)
        return freeze_count()

    ticks = _count_ticks(monkeypatch)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.project_names == [penguins], what="projects")
        for _ in range(2):
            app.open_project(penguins)
            await wait_for(
                pilot,
                lambda: isinstance(app.screen, ProjectScreen) and app.screen._settled,
                what="the project shown",
            )
            app.pop_screen()
            await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen), what="Home")
        monkeypatch.setattr(gc, "get_freeze_count", counted)
        reclaims = app.gc_tuning.reclaims
        await wait_for(pilot, lambda: app.gc_tuning.reclaims > reclaims, what="a reclaim")
        seen = len(ticks)
        await wait_for(pilot, lambda: len(ticks) >= seen + 20, what="more idle ticks")
        assert walks == []


async def test_a_closed_screens_header_and_charts_are_not_kept_by_the_app(penguins, monkeypatch):
    """The header watches the app's title and the charts its theme signal:
    once their screen is closed, the app lets go of them (Textual itself
    would only at the next title change or theme change), so a reclaim frees
    them with their render caches."""
    from textual.widgets import Header

    from workbench.tui.widgets.metric_chart import MetricChart

    use_fixed_system_sampler(monkeypatch)
    monkeypatch.setattr(app_module, "GC_TICK_SECONDS", 0.05)
    ticks = _count_ticks(monkeypatch)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.project_names == [penguins], what="projects")
        app.push_screen(DataScreen(penguins))
        screen = await wait_for(
            pilot,
            lambda: isinstance(app.screen, DataScreen) and app.screen._settled and app.screen,
            what="the data screen shown",
        )
        charts = list(screen.query(MetricChart))
        assert charts  # the histogram: a plot that subscribes to the app's theme signal
        closed = {screen.query_one(Header), *charts}
        del screen, charts
        app.pop_screen()
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen), what="Home")
        await wait_for(pilot, lambda: all(node._closing for node in closed), what="them removed")
        seen = len(ticks)
        await wait_for(pilot, lambda: len(ticks) >= seen + 2, what="two ticks")
        watchers = getattr(app, "__watchers")
        assert watchers["title"]  # Home's header still watches
        assert [n for callbacks in watchers.values() for n, _ in callbacks if n in closed] == []
        assert [n for n in app.theme_changed_signal._subscriptions if n in closed] == []
