"""The Monitor screen: opened from the Models screen with `m`, it shows the
prediction log's requests per second, latency and error rate as charts, drift
per column over time and the newest window's alerts, computed in a worker; `w`
switches the window. A registered project (no model needed) with a logged
stream whose second half is shifted."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from tui_support import plain, wait_for
from wbtest import REPO
from wbtest import wb_inprocess as wbi

from workbench.config.monitor import MonitorConfig
from workbench.config.settings import Settings
from workbench.monitor.log import PredictionLog, day_name, records_frame
from workbench.tui.app import WorkbenchApp
from workbench.tui.screens.models import ModelsScreen
from workbench.tui.screens.monitor import MonitorScreen
from workbench.tui.screens.project import ProjectScreen
from workbench.tui.widgets.report_chart import ReportChart
from textual.widgets import Static

SIZE = (110, 40)


@pytest.fixture
def logged(tmp_path: Path, wb_home: Path) -> Path:
    folder = tmp_path / "penguins"
    shutil.copytree(REPO / "sample_projects" / "penguins-lightgbm", folder)
    assert wbi("project", "add", str(folder)).returncode == 0
    rows = pd.read_csv(folder / "data" / "train.csv").sample(400, replace=True, random_state=1)
    rows = rows.reset_index(drop=True)
    rows.loc[200:, "flipper_length_mm"] += 30.0  # the newer half drifts
    start = time.time() - 2 * 3600  # two one-hour windows (aligned: maybe three)
    records = [
        {
            "request_id": f"r{i}",
            "ts": start + i * 18.0,
            "status": 422 if i % 50 == 0 else 200,
            "latency_s": 0.002 + (i % 7) / 1000,
            "error": None,
            "frame": rows.drop(columns="species").iloc[[i]],
            "predictions": [rows["species"].iloc[i]],
            "probabilities": None,
            "classes": ["Adelie", "Chinstrap", "Gentoo"],
            "model": "penguins@1",
        }
        for i in range(400)
    ]
    log = PredictionLog(folder, MonitorConfig(), version=1)
    log.folder.mkdir(parents=True)
    frame = records_frame(records, "serve", 1)
    for day, part in frame.groupby(frame["ts"].map(day_name)):
        log.write_part(str(day), part)
    return folder


async def test_monitor_screen_from_the_models_screen(logged: Path) -> None:
    app = WorkbenchApp(Settings())
    async with app.run_test(size=SIZE) as pilot:
        app.open_project("penguins")
        await wait_for(pilot, lambda: isinstance(app.screen, ProjectScreen), what="the project")
        await pilot.press("M")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelsScreen), what="Models")
        await pilot.press("m")
        screen = await wait_for(
            pilot, lambda: isinstance(app.screen, MonitorScreen) and app.screen, what="Monitor"
        )
        summary = await wait_for(
            pilot,
            lambda: "requests logged" in plain(screen.query_one("#monitor-summary"))
            and plain(screen.query_one("#monitor-summary")),
            timeout=60,
            what="the report",
        )
        assert not screen.query_one("#monitor-body").loading
        assert "penguins" in summary and "400 requests logged" in summary and "drift" in summary
        charts = {c.id: c for c in screen.query(ReportChart)}
        assert set(charts) == {"chart-requests", "chart-latency", "chart-errors"}
        assert len(charts["chart-latency"].data.series) == 2  # p50 and p99
        assert max(charts["chart-errors"].data.series[0][2]) > 0  # every 50th refused
        drift = _text(screen.query_one("#monitor-drift", Static).content)
        flipper = next(line for line in drift.splitlines() if line.startswith("flipper"))
        assert flipper.split()[-1] in ("drift", "strong"), drift  # the newest window
        for quiet in ("island", "sex"):  # nulls stay nulls, not a "nan" category
            line = next(line for line in drift.splitlines() if line.startswith(quiet))
            assert set(line.split()[1:]) == {"·"}, drift
        alerts = _text(screen.query_one("#monitor-alerts", Static).content)
        assert "input drift: " in alerts and "flipper_length_mm" in alerts

        await pilot.press("w")  # one-day windows: a single window
        await wait_for(
            pilot,
            lambda: "1d windows, newest 1 shown" in plain(screen.query_one("#monitor-summary")),
            timeout=60,
            what="the one-day report",
        )
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelsScreen), what="back")


def _text(renderable: object) -> str:
    from rich.console import Console

    console = Console(width=200, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()
