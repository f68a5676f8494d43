"""The new-project form (`i` on Home) makes a project from the user's own CSV
and its target column, and opens it; a target without a file is refused in
the form."""

from __future__ import annotations

import shutil
from pathlib import Path

from textual.widgets import Input, Label
from tui_support import SAMPLES, notifications, plain, use_fixed_system_sampler, wait_for

from workbench.store import open_store
from workbench.tui.app import make_app
from workbench.tui.screens.forms import InitProjectModal
from workbench.tui.screens.project import ProjectScreen


async def test_a_project_from_a_csv_and_its_target(tmp_path: Path, wb_home: Path, monkeypatch):
    use_fixed_system_sampler(monkeypatch)
    csv = tmp_path / "birds.csv"
    shutil.copy(SAMPLES / "penguins-lightgbm" / "data" / "train.csv", csv)
    folder = tmp_path / "birds"
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("i")
        form = await wait_for(
            pilot, lambda: isinstance(app.screen, InitProjectModal) and app.screen, what="form"
        )
        form.query_one("#init-path", Input).value = str(folder)
        form.query_one("#init-target", Input).value = "species"
        await pilot.press("enter")  # a target without its data file: said in the form
        assert app.screen is form
        assert any("goes with a data file" in n for n in notifications(app))
        form.query_one("#init-data", Input).value = str(csv)
        await pilot.press("enter")
        screen = await wait_for(
            pilot, lambda: isinstance(app.screen, ProjectScreen) and app.screen, 60, "project"
        )
        summary = screen.query_one("#project-summary", Label)
        await wait_for(pilot, lambda: "target species" in plain(summary), 60, "the summary")
    assert (folder / "workbench.toml").exists()
    store = open_store()
    try:
        assert store.scalar("SELECT name FROM projects") == "birds"
    finally:
        store.close()
