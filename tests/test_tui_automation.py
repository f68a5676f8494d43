"""The Automation screen and the app's notification toasts, on a penguins
project trained once in a real supervised run (a weak champion: one tree), then fed a
malformed batch (rejected) and a clean one (retrained, promoted, exported)
through `workbench pipeline`; and the watcher started and stopped from the
screen as a real detached daemon."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path
from subprocess import CompletedProcess

import pytest
from textual.command import CommandPalette
from textual.widgets import Label, Static
from tui_setup import register, template_env, train
from tui_support import (
    SAMPLES,
    copy_trained,
    notifications,
    plain,
    row,
    row_keys,
    sql,
    use_fixed_system_sampler,
    wait_for,
)
from wbtest import wb, wb_inprocess

from workbench.config.settings import Settings
from workbench.tui.app import WorkbenchApp, make_app
from workbench.tui.screens.automation import AutomationScreen
from workbench.tui.screens.confirm import ConfirmModal
from workbench.tui.screens.error import ErrorModal
from workbench.tui.screens.help import HelpScreen
from workbench.tui.screens.home import HomeScreen
from workbench.tui.screens.project import ProjectScreen
from workbench.tui.screens.run import RunScreen
from workbench.tui.widgets.synced_table import SyncedTable

pytestmark = pytest.mark.slow  # trains penguins twice (once by hand, once by the pipeline)

SIZE = (110, 34)
INCOMING = SAMPLES / "penguins-lightgbm" / "data" / "incoming"
MALFORMED = INCOMING / "batch_03_malformed.csv"
CLEAN = INCOMING / "batch_01_clean.csv"
STEPS = ["register", "validate", "drift", "retrain", "evaluate", "promote", "export"]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Pipeline 1 rejected the malformed batch, pipeline 2 promoted a model
    trained with the clean one. The project's drop folder is left empty, so a
    watcher started by a test finds nothing to do. Built in this process (the
    runs and the pipeline's retrain in real supervisors), once per module."""
    root = tmp_path_factory.mktemp("automation")
    with template_env(root / "home"):
        folder = root / "projects" / "penguins-lightgbm"
        shutil.copytree(SAMPLES / "penguins-lightgbm", folder)
        shutil.rmtree(folder / "data" / "incoming")
        (folder / "data" / "incoming").mkdir()
        register(folder)
        train("penguins", {"n_estimators": 1})
        assert wb_inprocess("pipeline", "run", "penguins", str(MALFORMED)).returncode == 1
        wb_inprocess("pipeline", "run", "penguins", str(CLEAN), check=True)
    return root


@pytest.fixture
def trained(template: Path, wb_home: Path, tmp_path: Path, monkeypatch) -> Path:
    """This test's copy of the store; returns the project's folder."""
    projects = copy_trained(template, wb_home, tmp_path)
    use_fixed_system_sampler(monkeypatch)
    return projects / "penguins-lightgbm"


@pytest.fixture
def stop_watcher_after():
    """Whatever a test does, no watcher outlives it."""
    yield
    wb_inprocess("watch", "stop", timeout=60)


def watch_status() -> dict:
    return json.loads(wb_inprocess("watch", "status", "--json", check=True).stdout)


async def open_automation(pilot, count: int = 2) -> AutomationScreen:
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen | ProjectScreen))
    await pilot.press("A")
    screen = await wait_for(
        pilot, lambda: isinstance(app.screen, AutomationScreen) and app.screen, what="Automation"
    )
    table = screen.query_one("#pipelines", SyncedTable)
    await wait_for(pilot, lambda: table.row_count == count, what=f"{count} pipelines")
    return screen


def status_text(screen: AutomationScreen) -> str:
    return plain(screen.query_one("#watcher-status", Static))


async def test_pipelines_with_outcomes_and_the_steps_of_the_selected_one(trained):
    app = WorkbenchApp(Settings())
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_automation(pilot)
        assert screen.title == "Automation"
        pipelines = screen.query_one("#pipelines", SyncedTable)
        assert row_keys(pipelines) == ["2", "1"]  # newest first
        assert row(pipelines, "2")[:7] == [
            "2",
            "penguins",
            "cli",
            "batch_01_clean.csv",
            "done",
            "promoted",
            "0",
        ]
        assert row(pipelines, "1")[3:7] == ["batch_03_malformed.csv", "done", "rejected", "1"]
        assert "red" in pipelines.get_row("1")[5] and "green" in pipelines.get_row("2")[5]
        assert "stopped" in status_text(screen)

        # The selected (newest) pipeline's steps, every one of them ok.
        steps = screen.query_one("#steps", SyncedTable)
        await wait_for(pilot, lambda: steps.row_count == len(STEPS), what="the steps")
        shown = [row(steps, key) for key in row_keys(steps)]
        assert [s[0] for s in shown] == STEPS
        assert {s[2] for s in shown} == {"ok"}
        assert "green" in steps.get_row(row_keys(steps)[0])[2]
        assert shown[3][4].startswith("run ") and shown[3][4].endswith(" succeeded")
        assert shown[6][1] == "bundle" and "exported to" in shown[6][4]
        title = plain(screen.query_one("#steps-title", Label))
        assert "pipeline 2" in title and "promoted" in title

        await pilot.press("down")  # the rejected pipeline
        await wait_for(pilot, lambda: row_keys(steps)[0] == "register|" + str(MALFORMED))
        shown = [row(steps, key) for key in row_keys(steps)]
        assert [(s[0], s[1], s[2]) for s in shown] == [
            ("register", "batch_03_malformed.csv", "ok"),
            ("validate", "batch_03_malformed.csv", "rejected"),
        ]
        assert "semicolons" in shown[1][4]
        assert "red" in steps.get_row(row_keys(steps)[1])[2]
        assert "rejected" in plain(screen.query_one("#steps-title", Label))

        # The timeline: automation events only, newest first, with both notifications.
        timeline = screen.query_one("#timeline", SyncedTable)
        keys = [int(k) for k in row_keys(timeline)]
        assert keys == sorted(keys, reverse=True)
        kinds = [row(timeline, str(k))[1] for k in keys]
        assert "notify.data.rejected" in kinds and "notify.model.promoted" in kinds
        assert "pipeline.queued" in kinds and "pipeline.done" in kinds
        assert not any(k.startswith(("run.", "project.")) for k in kinds)
        assert kinds.index("notify.model.promoted") < kinds.index("notify.data.rejected")

        # Enter opens the pipeline's training run.
        await pilot.press("up", "enter")
        run_screen = await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen)
        assert run_screen.run_id == 2
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        assert not app._notifications  # old news: no toast


async def test_opened_from_a_project_it_shows_that_project_only(trained):
    other = trained.parent / "other"
    shutil.copytree(trained, other)
    config = other / "workbench.toml"
    config.write_text(config.read_text().replace('name = "penguins"', 'name = "other"'))
    wb_inprocess("project", "add", str(other), check=True)
    assert wb_inprocess("pipeline", "run", "other", str(MALFORMED)).returncode == 1  # pipeline 3
    app = make_app(open_project="penguins")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_automation(pilot)
        assert screen.title == "Automation of penguins" and screen.project == "penguins"
        pipelines = screen.query_one("#pipelines", SyncedTable)
        assert [c.label.plain for c in pipelines.columns.values()][:3] == ["ID", "Trigger", "Files"]
        assert row_keys(pipelines) == ["2", "1"]
        timeline = screen.query_one("#timeline", SyncedTable)
        await wait_for(pilot, lambda: timeline.row_count > 0)
        assert not any("pipeline 3" in row(timeline, k)[-1] for k in row_keys(timeline))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ProjectScreen))
        await pilot.press("h")  # from Home: every project
        screen = await open_automation(pilot, count=3)
        assert screen.project is None
        assert row(screen.query_one("#pipelines", SyncedTable), "3")[1] == "other"
        timeline = screen.query_one("#timeline", SyncedTable)
        newest = row(timeline, row_keys(timeline)[0])
        assert newest[1:4] == ["pipeline.done", "other", "pipeline 3: rejected"]


async def test_rejected_data_while_the_app_runs_shows_a_toast(trained, wb_home):
    # The same bytes were rejected when the store was made; forget that, so the
    # batch is judged afresh (and notified again) by the pipeline below.
    sql(wb_home, "DELETE FROM data_verdicts")
    app = WorkbenchApp(Settings())
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.events_seen is not None, what="the first look")
        done: list[CompletedProcess] = []
        runner = threading.Thread(
            target=lambda: done.append(wb("pipeline", "run", "penguins", str(MALFORMED)))
        )
        runner.start()
        await wait_for(
            pilot,
            lambda: any("batch_03_malformed.csv" in n for n in notifications(app)),
            timeout=90,
            what="the toast",
        )
        runner.join(60)
        assert done and done[0].returncode == 1, done
        [toast] = [n for n in app._notifications if "batch_03_malformed.csv" in str(n.message)]
        assert toast.title == "Data rejected" and toast.severity == "error"
        assert str(toast.message).startswith("penguins: batch_03_malformed.csv:")
        assert "semicolons" in str(toast.message)
        assert len(app._notifications) == 1  # nothing older was toasted
        # The screen underneath was Home; the Automation screen has the pipeline.
        screen = await open_automation(pilot, count=3)
        assert row(screen.query_one("#pipelines", SyncedTable), "3")[5] == "rejected"


async def test_watcher_starts_detached_and_stops_after_a_confirmation(trained, stop_watcher_after):
    app = WorkbenchApp(Settings())
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_automation(pilot)
        await wait_for(pilot, lambda: "stopped" in status_text(screen))
        await pilot.press("x")  # nothing to stop
        assert app.screen is screen
        assert any("No watcher is running" in n for n in notifications(app))

        await pilot.press("s")
        await wait_for(
            pilot, lambda: "running" in status_text(screen), timeout=60, what="the watcher"
        )
        status = watch_status()
        assert status["running"] and status["projects"] == ["penguins"]
        [folder] = status["folders"]
        assert folder["path"].endswith(os.path.join("penguins-lightgbm", "data", "incoming"))
        text = status_text(screen)
        assert f"pid {status['pid']}" in text and "inotify" in text and folder["path"] in text
        await wait_for(pilot, lambda: any("watcher started" in n for n in notifications(app)))

        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="the question")
        assert f"pid {status['pid']}" in plain(app.screen.query_one("#confirm-title", Label))
        await pilot.press("escape")  # changed my mind
        await wait_for(pilot, lambda: app.screen is screen)
        assert watch_status()["running"]

        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("enter")  # the focused button: Stop watcher
        await wait_for(pilot, lambda: "stopped" in status_text(screen), timeout=60, what="the stop")
        assert watch_status()["running"] is False
        # The toast comes when the stop returns, which may be a poll after the pane
        # shows the watcher gone. A watcher that misses the grace period on a busy
        # machine is killed, and the toast says that instead.
        said = (f"watcher {status['pid']} stopped", f"watcher {status['pid']} did not stop")
        await wait_for(
            pilot, lambda: any(n.startswith(said) for n in notifications(app)), what="the toast"
        )


async def test_a_watcher_that_cannot_start_says_why(stop_watcher_after):
    app = WorkbenchApp(Settings())  # no project at all: nothing to watch
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_automation(pilot, count=0)
        await wait_for(pilot, lambda: "stopped" in status_text(screen))
        assert "no pipeline yet" in plain(screen.query_one("#steps-title", Label))
        await pilot.press("s")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, ErrorModal) and app.screen)
        assert "nothing to watch" in str(modal.query_one("#error-message", Static).content)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        await wait_for(pilot, lambda: "stopped" in status_text(screen), what="not 'starting…'")
        assert screen.busy is None and watch_status()["running"] is False


async def test_keys_are_remappable_in_the_help_and_the_palette(trained, wb_home):
    (wb_home / "config.toml").write_text(
        '[keys]\n"home.automation" = "a"\n"automation.stop" = "X"\n'
    )
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.project_names == ["penguins"], what="the project list")
        await pilot.press("A")  # replaced by "a"
        assert isinstance(app.screen, HomeScreen)
        await pilot.press("a")
        screen = await wait_for(
            pilot, lambda: isinstance(app.screen, AutomationScreen) and app.screen
        )
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        lines = plain(app.screen.query_one(Static)).splitlines()
        assert lines[0] == "Automation keys"
        for key, words in (("s", "Start watcher"), ("X", "Stop watcher"), ("esc", "Back")):
            assert any(x.split()[:1] == [key] and words in x for x in lines), (key, lines)
        await pilot.press("escape", "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))

        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), what="the palette")
        await pilot.press(*"automation of peng")
        await wait_for(pilot, lambda: app.screen.query_one("CommandList").option_count > 0)
        first = app.screen.query_one("CommandList").get_option_at_index(0)
        assert "Automation of penguins" in str(first.prompt)
        await pilot.press("enter")
        screen = await wait_for(
            pilot, lambda: isinstance(app.screen, AutomationScreen) and app.screen
        )
        assert screen.project == "penguins"
