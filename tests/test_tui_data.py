"""The Data screen of a project: versions with verdicts, drift per feature, histograms."""

from __future__ import annotations

import shutil

import pytest
from wbtest import REPO

from workbench.config.settings import Settings
from workbench.tui.app import WorkbenchApp
from workbench.tui.screens.data import DataScreen
from workbench.tui.widgets.metric_chart import MetricChart
from workbench.tui.widgets.synced_table import SyncedTable


async def _wait(pilot, condition, timeout: float = 15.0) -> None:
    for _ in range(int(timeout / 0.1)):
        if condition():
            return
        await pilot.pause(0.1)
    raise AssertionError("the screen never showed what was expected")


@pytest.mark.slow
async def test_data_screen_shows_versions_and_the_drift_report(cli, tmp_path):
    folder = tmp_path / "penguins-lightgbm"
    shutil.copytree(REPO / "sample_projects" / "penguins-lightgbm", folder)
    cli("project", "add", str(folder), check=True)
    incoming = folder / "data" / "incoming"
    cli("data", "validate", "penguins", str(incoming / "batch_03_malformed.csv"))
    cli("data", "drift", "penguins", str(incoming / "batch_02_shifted.csv"), check=True)

    app = WorkbenchApp(Settings())
    async with app.run_test(size=(110, 36)) as pilot:
        app.open_project("penguins")
        await pilot.pause(0.5)
        await pilot.press("D")
        await _wait(pilot, lambda: isinstance(app.screen, DataScreen))
        screen = app.screen
        drift = screen.query_one("#drift", SyncedTable)
        await _wait(pilot, lambda: drift.row_count == 8)
        versions = screen.query_one("#versions", SyncedTable)
        # The reference, the shifted batch, and the malformed one, refused with its reason.
        assert versions.row_count == 3
        rejected = [str(c) for c in versions.get_row_at(0)]
        assert rejected[4].startswith("[red]rejected[/]: ") and len(rejected[4]) > 24
        assert rejected[6].endswith("batch_03_malformed.csv")
        cells = [str(c) for c in drift.get_row("body_mass_g")]
        assert cells[1] == "ks" and "█" in cells[4]
        title = str(screen.query_one("#drift-title").render())
        assert "batch_02_shifted.csv" in title and "dataset drift" in title
        drift.move_cursor(row=5)  # body_mass_g: its histogram is drawn
        await _wait(pilot, lambda: "density" in screen.query_one("#histogram", MetricChart)._title)
        await pilot.press("escape")
        await _wait(pilot, lambda: not isinstance(app.screen, DataScreen))
