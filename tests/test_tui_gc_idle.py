"""The garbage collection tuning costs an idle app nothing that grows with the
session: its ticks never walk the frozen heap (`gc.get_freeze_count()` does,
~90 ms per tick once every screen was opened a few times), and what a closed
screen left frozen is still reclaimed once nobody types."""

from __future__ import annotations

import gc
import shutil
import weakref
from pathlib import Path

import pytest
from tui_support import SAMPLES, use_fixed_system_sampler, wait_for

from workbench.projects import add_project
from workbench.store import open_store
from workbench.tui import app as app_module
from workbench.tui import gc_tuning
from workbench.tui.app import make_app
from workbench.tui.screens.home import HomeScreen
from workbench.tui.screens.project import ProjectScreen


@pytest.fixture
def penguins(tmp_path: Path, wb_home: Path) -> str:
    shutil.copytree(SAMPLES / "penguins-lightgbm", tmp_path / "penguins")
    store = open_store()
    try:
        add_project(store, tmp_path / "penguins")
    finally:
        store.close()
    return "penguins"


async def test_idle_ticks_never_walk_the_frozen_heap_and_closed_screens_are_reclaimed(
    penguins, monkeypatch
):
    use_fixed_system_sampler(monkeypatch)
    monkeypatch.setattr(app_module, "GC_TICK_SECONDS", 0.05)  # many ticks, soon
    monkeypatch.setattr(gc_tuning, "IDLE_SECONDS", 0.2)
    monkeypatch.setattr(gc_tuning, "RECLAIM_AFTER", 1)  # any screen settled is enough
    walks: list[int] = []
    freeze_count = gc.get_freeze_count

    def counted() -> int:
        walks.append(1)
        return freeze_count()

    ticks: list[int] = []
    tick = gc_tuning.GcTuning.tick

    def counted_tick(self: gc_tuning.GcTuning) -> None:
        ticks.append(1)
        tick(self)

    monkeypatch.setattr(gc_tuning.GcTuning, "tick", counted_tick)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.project_names == [penguins], what="projects")
        closed: list[weakref.ref] = []
        for _ in range(2):
            app.open_project(penguins)
            screen = await wait_for(
                pilot,
                lambda: isinstance(app.screen, ProjectScreen) and app.screen._settled and app.screen,
                what="the project shown",
            )
            closed.append(weakref.ref(screen))
            del screen
            app.pop_screen()
            await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen), what="Home")
        monkeypatch.setattr(gc, "get_freeze_count", counted)
        reclaims = app.gc_tuning.reclaims
        await wait_for(
            pilot,
            lambda: app.gc_tuning.reclaims > reclaims and all(r() is None for r in closed),
            what="the closed screens reclaimed",
        )
        seen = len(ticks)
        await wait_for(pilot, lambda: len(ticks) >= seen + 20, what="more idle ticks")
        assert walks == []
