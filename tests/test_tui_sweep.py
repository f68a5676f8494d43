"""The Sweep screen, through Textual's Pilot, on a sweep run by the real CLI:
opened with `S` from the sweep's run screen; trials, best so far, importances."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from tui_support import plain, row, row_keys, use_fixed_system_sampler, wait_for
from wbtest import wb_inprocess

import workbench

from workbench.store import open_store
from workbench.sweeps import engine
from workbench.tui.app import make_app
from workbench.tui.screens.run import RunScreen
from workbench.tui.screens.sweep import SweepScreen
from workbench.tui.widgets.synced_table import SyncedTable

pytestmark = pytest.mark.slow  # runs a real sweep


@pytest.fixture(autouse=True)
def short_lived_warm_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's warm server goes soon after its sweep, not a minute later."""
    monkeypatch.setenv("WORKBENCH_WARM_IDLE", "5")


SCRIPT = """
import workbench as wb

p = wb.params()
wb.log_metric("score", -((p["x"] - 0.3) ** 2) - 0.01 * p["depth"])
"""
TOML = """
[project]
name = "tiny"
[data]
train = "train.csv"
target = "y"
[train]
trainer = "script"
script = "train.py"
metric = "score"
[sweep]
sampler = "random"
[sweep.space]
x = { type = "float", low = 0.0, high = 1.0 }
depth = { type = "int", low = 1, high = 9 }
"""


@pytest.fixture
def swept(cli, tmp_path: Path, wb_home: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "train.csv").write_text("x,y\n1,0\n2,1\n")
    (folder / "train.py").write_text(SCRIPT)
    (folder / "workbench.toml").write_text(TOML)
    wb_inprocess("project", "add", str(folder), check=True)
    # Run 1, a plain run beside the sweep: owned by this process through the tracking
    # API (what it logs is the script's), as the screens read any run.
    with workbench.start_run(folder, {"x": 0.5, "depth": 3}):
        workbench.log_metric("score", -((0.5 - 0.3) ** 2) - 0.01 * 3)
    # The sweep starts its trials' processes: a process of its own.
    result = cli("sweep", "start", "tiny", "--trials", "4", "--json", check=True, timeout=240)
    open_store().close()
    use_fixed_system_sampler(monkeypatch)
    return json.loads(result.stdout)


async def test_the_sweep_screen_shows_trials_best_and_importances(swept, monkeypatch):
    sweep_id = swept["sweep_run_id"]
    # fANOVA held back: the trials must show without waiting for it.
    fanova_may_run = threading.Event()
    real_importances = engine.importances

    def slow_importances(run_id):
        fanova_may_run.wait(60)
        return real_importances(run_id)

    monkeypatch.setattr(engine, "importances", slow_importances)
    app = make_app()
    async with app.run_test(size=(110, 32)) as pilot:
        app.open_run(1)  # a plain run: no Sweep key
        plain_run = await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen)
        await wait_for(pilot, lambda: plain_run.info is not None, what="run 1")
        assert plain_run.check_action("open_sweep", ()) is False
        await pilot.press("S")
        assert app.screen is plain_run
        await pilot.press("escape")

        app.open_run(sweep_id)
        screen = await wait_for(
            pilot,
            lambda: (
                isinstance(app.screen, RunScreen) and app.screen.run_id == sweep_id and app.screen
            ),
        )
        await wait_for(pilot, lambda: screen.info is not None, what="the sweep's run")
        assert screen.check_action("open_sweep", ()) is True
        await pilot.press("S")
        sweep = await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen) and app.screen)
        trials = sweep.query_one("#trials", SyncedTable)
        try:
            await wait_for(pilot, lambda: trials.row_count == 4, what="four trials")
            assert "computing…" in plain(sweep.query_one("#importances"))
        finally:
            fanova_may_run.set()

        assert row_keys(trials) == ["0", "1", "2", "3"]
        best = swept["best"]
        number, state, value, run, params = row(trials, str(best["number"]))
        assert (state, run) == ("complete", str(best["run_id"]))
        assert params.startswith("x=") and "depth=" in params
        status = plain(sweep.query_one("#sweep-status"))
        assert "4/4 trials" in status and "maximize score" in status
        assert f"best {best['value']:.4g} (trial {best['number']})" in status
        chart = sweep.query_one("#best-chart")
        assert chart._title == "score by trial"
        assert list(chart._lines) == ["best so far", "trial"]
        assert chart._lines["best so far"][1][-1] == best["value"]
        # The importances come from a worker of their own, after the trials.
        importances = await wait_for(
            pilot,
            lambda: "fANOVA" in plain(sweep.query_one("#importances"))
            and plain(sweep.query_one("#importances")),
            what="the importances",
        )
        assert "x " in importances and "depth " in importances and "%" in importances

        # Enter opens the selected trial's run.
        await pilot.press(*["down"] * best["number"], "enter")
        opened = await wait_for(
            pilot,
            lambda: isinstance(app.screen, RunScreen) and app.screen is not screen and app.screen,
        )
        assert opened.run_id == best["run_id"]
