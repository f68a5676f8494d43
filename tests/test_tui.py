"""The terminal UI driven through Textual's Pilot: each screen and action, on
stores built by the real CLI and core (trained sample projects, supervised runs)."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from test_runs_e2e import script_project, show
from textual.command import CommandPalette
from textual.widgets import Input, Label, RichLog, Static
from tui_support import (
    CANCER_RUNS,
    copy_trained,
    notifications,
    plain,
    row,
    row_keys,
    sql,
    sql_value,
    trained_template,
    use_fixed_system_sampler,
    wait_for,
)
from wbtest import wb_inprocess

import workbench as wb
from workbench.projects import add_project
from workbench.runs.control import stop_run
from workbench.runs.launch import start_run
from workbench.runs.queries import show_run
from workbench.store import open_store
from workbench.tui import reads
from workbench.tui.app import WorkbenchApp, make_app
from workbench.tui.screens.compare import CompareScreen
from workbench.tui.screens.confirm import ConfirmModal
from workbench.tui.screens.error import ErrorModal
from workbench.tui.screens.forms import StartRunModal
from workbench.tui.screens.help import HelpScreen
from workbench.tui.screens.home import HomeScreen
from workbench.tui.screens.project import ProjectScreen
from workbench.tui.screens.run import RunScreen
from workbench.tui.widgets.synced_table import SyncedTable

pytestmark = pytest.mark.slow  # trains the sample projects, drives supervised runs

SIZE = (100, 30)


@pytest.fixture(autouse=True)
def migrated_store(wb_home: Path) -> None:
    """As `workbench` does before starting the UI: migrate once, so the workers
    never race to create the schema."""
    open_store().close()


@pytest.fixture(autouse=True)
def fixed_system_sampler(request, monkeypatch: pytest.MonkeyPatch) -> None:
    """The home screen's CPU/RAM strip reads one fixed sample (the real sampler
    has its own test): quiet, and the app exits without waiting on psutil."""
    if "real_system_sampler" not in request.fixturenames:
        use_fixed_system_sampler(monkeypatch)


@pytest.fixture
def real_system_sampler() -> None:
    """Asked for by the test of the strip itself: psutil, not a fixed reading."""


@pytest.fixture
def trained(tmp_path_factory, wb_home: Path, tmp_path: Path) -> Path:
    """This test's copy of the sample projects and their trained runs 1-4."""
    return copy_trained(trained_template(tmp_path_factory), wb_home, tmp_path)


def table(app: WorkbenchApp, selector: str) -> SyncedTable:
    return app.screen.query_one(selector, SyncedTable)


async def on_screen(pilot, kind: type, timeout: float = 20):
    """Wait until the app shows a screen of this kind; returns it."""
    app = pilot.app
    return await wait_for(
        pilot, lambda: isinstance(app.screen, kind) and app.screen, timeout, kind.__name__
    )


async def open_project(pilot, name: str) -> ProjectScreen:
    """From home: wait for the project list, put the cursor on `name`, Enter."""
    app = pilot.app
    await wait_for(pilot, lambda: name in row_keys(table(app, "#projects")), what="projects")
    projects = table(app, "#projects")
    assert projects.cursor_row == 0
    await pilot.press(*["down"] * row_keys(projects).index(name), "enter")
    screen = await on_screen(pilot, ProjectScreen)
    assert screen.project == name
    await wait_for(pilot, lambda: screen.snapshot is not None, what="the project's runs")
    return screen


# Home ----------------------------------------------------------------------


async def test_home_shows_the_machines_cpu_and_ram(real_system_sampler):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        cpu = app.screen.query_one("#cpu-label", Label)
        await wait_for(pilot, lambda: plain(cpu).endswith("%"), what="a system sample")
        assert plain(cpu).startswith("CPU ")
        assert plain(app.screen.query_one("#ram-label", Label)).startswith("RAM ")


async def test_home_lists_projects_and_enter_opens_one(trained):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, HomeScreen)
        projects = table(app, "#projects")
        await wait_for(pilot, lambda: projects.row_count == 3, what="three projects")
        assert row_keys(projects) == ["autompg", "cancer", "penguins"]
        name, runs, last, best, path = row(projects, "cancer")
        assert (name, runs, last) == ("cancer", "2", "4 succeeded")
        assert best.startswith("roc_auc 0.")
        assert path == str(trained / "cancer-script")
        assert row(projects, "autompg")[3].startswith("rmse ")
        activity = table(app, "#activity")
        assert any("run 4 succeeded" in row(activity, k)[1] for k in row_keys(activity))

        screen = await open_project(pilot, "cancer")
        assert row_keys(table(app, "#runs")) == ["4", "3"]
        assert "script  target diagnosis  metric roc_auc  2 runs" in plain(
            screen.query_one("#project-summary", Label)
        )
        await pilot.press("escape")
        assert isinstance(app.screen, HomeScreen)


# Compare, filter, sort ---------------------------------------------------------


async def test_marked_runs_compare_with_differences_and_best(trained):
    store = open_store()
    metrics = {rid: show_run(store, rid)["metrics"] for rid in CANCER_RUNS}
    store.close()

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, "cancer")
        runs = table(app, "#runs")
        await pilot.press("c")  # nothing marked yet
        assert isinstance(app.screen, ProjectScreen)
        assert any("Mark two or more" in n for n in notifications(app))
        await pilot.press("space", "space")
        assert screen.marked == set(CANCER_RUNS)
        assert [row(runs, k)[0] for k in row_keys(runs)] == ["●", "●"]

        await pilot.press("c")
        compare = await on_screen(pilot, CompareScreen)
        assert compare.run_ids == [3, 4]
        grid = table(app, "#compare-table")
        await wait_for(pilot, lambda: grid.row_count > 5, what="the comparison")
        keys = row_keys(grid)
        assert row(grid, "status") == ["status", "succeeded", "succeeded"]
        # Params that differ are marked with *, the others are not.
        assert row(grid, "param:alpha") == ["* alpha", "0.001", "0.01"]
        assert row(grid, "param:epochs") == ["* epochs", "30", "20"]
        assert row(grid, "param:seed") == ["  seed", "0", "0"]
        assert row(grid, "param:learning_rate")[0] == "  learning_rate"
        # The best run per metric is the highlighted cell: higher roc_auc, lower loss.
        for key, pick in (("roc_auc", max), ("log_loss", min), ("accuracy", max)):
            assert f"metric:{key}" in keys
            cells = grid.get_row(f"metric:{key}")[1:]
            target = pick(metrics[rid][key] for rid in CANCER_RUNS)
            best = min(rid for rid in CANCER_RUNS if metrics[rid][key] == target)  # ties: earlier
            highlighted = [rid for rid, c in zip(CANCER_RUNS, cells, strict=True) if "green" in c]
            assert highlighted == [best], (key, cells)
        # The project's primary metric (roc_auc) as its learning curve first.
        chart = compare.query_one("#compare-chart")
        await wait_for(pilot, lambda: chart._title.startswith("val_roc_auc"))
        await pilot.press("m")  # next metric (k moves the table's cursor)
        await wait_for(pilot, lambda: chart._title.startswith("accuracy"))
        await pilot.press("escape")
        assert app.screen is screen


async def test_filter_narrows_and_sort_cycles(trained, wb_home):
    # Two more runs, in-process through the tracking API: one worse, one failed.
    with wb.start_run(project="cancer", params={"alpha": 0.5}):
        wb.log_metric("roc_auc", 0.5)
    with pytest.raises(RuntimeError), wb.start_run(project="cancer", params={"alpha": 0.9}):
        raise RuntimeError("diverged")
    durations = {3: 40.0, 4: 10.0, 5: 30.0, 6: 20.0}
    for rid, seconds in durations.items():
        sql(wb_home, "UPDATE runs SET ended_at = started_at + ? WHERE id = ?", (seconds, rid))

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, "cancer")
        runs = table(app, "#runs")
        await wait_for(pilot, lambda: runs.row_count == 4)
        assert row_keys(runs) == ["6", "5", "4", "3"]
        assert row(runs, "6")[2] == "failed"

        await pilot.press("slash")
        assert screen.query_one("#filter", Input).has_focus
        await pilot.press(*"failed")
        await wait_for(pilot, lambda: row_keys(runs) == ["6"], what="filtered to the failed run")
        await pilot.press("enter")  # back to the table, filter kept
        assert runs.has_focus and row_keys(runs) == ["6"]
        await pilot.press("slash", "ctrl+a", "ctrl+k", *"alpha=0.0")
        await wait_for(pilot, lambda: row_keys(runs) == ["4", "3"], what="alpha=0.0*")
        await pilot.press("escape")  # clears the filter
        await wait_for(pilot, lambda: row_keys(runs) == ["6", "5", "4", "3"])
        assert isinstance(app.screen, ProjectScreen)

        # Each order at once on the rows shown, and the same once the store has
        # sorted the whole project (the next page may hold other rows).
        await pilot.press("s")
        assert screen.sort_by == "status"
        assert row_keys(runs)[0] == "6" and set(row_keys(runs)[1:]) == {"3", "4", "5"}
        await wait_for(pilot, lambda: row_keys(runs) == ["6", "5", "4", "3"], what="by status")
        await pilot.press("s")
        assert screen.sort_by == "duration"
        assert row_keys(runs) == ["3", "5", "6", "4"]
        await pilot.press("s")
        assert screen.sort_by == "metric"
        assert row_keys(runs)[2:] == ["5", "6"]  # roc_auc 0.5, then no value
        assert set(row_keys(runs)[:2]) == {"3", "4"}
        await pilot.press("s")
        assert screen.sort_by == "id"
        assert row_keys(runs) == ["6", "5", "4", "3"]


# Run screen ----------------------------------------------------------------------


async def test_run_screen_shows_status_params_log_and_switches_metric(trained):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_project(pilot, "cancer")
        assert row_keys(table(app, "#runs")) == ["4", "3"]
        await pilot.press("down", "enter")
        screen = await on_screen(pilot, RunScreen)
        assert screen.run_id == 3
        status = screen.query_one("#run-status", Label)
        await wait_for(pilot, lambda: "succeeded" in plain(status), what="the run's status")
        assert plain(status).startswith("run 3  cancer  succeeded")
        assert "exit 0" in plain(status)
        side = plain(screen.query_one("#run-info", Static))
        for line in ("alpha = 0.001", "epochs = 30", "learning_rate = optimal", "roc_auc = 0."):
            assert line in side
        assert "coefficients.json" in side
        log = screen.query_one("#run-log", RichLog)
        await wait_for(pilot, lambda: len(log.lines) >= 31, what="the log")
        text = "\n".join(line.text for line in log.lines)
        assert "epoch   1/30  train_loss=" in text
        assert "epoch  30/30" in text
        assert "final  accuracy=" in text

        chart = screen.query_one("#metric-chart")
        first = screen.key
        assert first in screen.keys and chart._title.startswith(first)
        await pilot.press("k")
        second = screen.keys[(screen.keys.index(first) + 1) % len(screen.keys)]
        assert screen.key == second
        await wait_for(pilot, lambda: chart._title.startswith(f"{second}  ("))
        await pilot.press("K")
        assert screen.key == first
        await pilot.press("escape")
        assert isinstance(app.screen, ProjectScreen)


# Starting and stopping runs ------------------------------------------------------


def add_script_project(root: Path, body: str, name: str) -> Path:
    """A script project (see test_runs_e2e.script_project), registered."""
    folder = script_project(root, body, name=name)
    store = open_store()
    try:
        add_project(store, folder)
    finally:
        store.close()
    return folder


QUICK = """\
import workbench as wb
params = wb.params()
for epoch in range(params["epochs"]):
    print(f"epoch {epoch}", flush=True)
    wb.log_metric("loss", 1.0 / (epoch + 1), step=epoch)
"""


async def test_start_form_prefilled_from_config_starts_runs(tmp_path):
    add_script_project(tmp_path / "quick", QUICK, "quick")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, "quick")
        runs = table(app, "#runs")
        assert runs.row_count == 0

        await pilot.press("n")
        form = await on_screen(pilot, StartRunModal)
        epochs = form.query_one("#param-epochs", Input)
        assert epochs.value == "3"  # [train].params of workbench.toml
        assert epochs.has_focus
        await pilot.press("ctrl+a", "ctrl+k", "5", "enter")
        assert app.screen is screen
        await wait_for(pilot, lambda: row_keys(runs) == ["1"], what="the new run")
        await wait_for(pilot, lambda: row(runs, "1")[2] == "succeeded", what="run 1 succeeded")
        assert row(runs, "1")[6] == "epochs=5"

        # The same through the Start button, with an extra param.
        await pilot.press("n")
        form = await on_screen(pilot, StartRunModal)
        form.query_one("#param-epochs", Input).value = "2"
        form.query_one("#extra", Input).value = "tag=b"
        await pilot.click("#start")
        await wait_for(pilot, lambda: row_keys(runs) == ["2", "1"], what="the second run")
        await wait_for(pilot, lambda: row(runs, "2")[2] == "succeeded", what="run 2 succeeded")

    first, second = show(wb_inprocess, "1"), show(wb_inprocess, "2")
    assert first["params"] == {"epochs": 5} and first["metrics"]["loss"] == pytest.approx(0.2)
    assert second["params"] == {"epochs": 2, "tag": "b"}


async def test_status_column_widens_when_a_run_finishes(tmp_path):
    add_script_project(tmp_path / "quick", QUICK, "quick")
    run = wb.start_run(project="quick")  # held open by this test: running
    run.__enter__()
    try:
        app = make_app(open_project="quick")
        async with app.run_test(size=SIZE) as pilot:
            await on_screen(pilot, ProjectScreen)
            runs = table(app, "#runs")
            await wait_for(pilot, lambda: row(runs, "1")[2] == "running", what="running")
            run.__exit__(None, None, None)
            run = None
            await wait_for(pilot, lambda: row(runs, "1")[2] == "succeeded", what="succeeded")
            await pilot.pause(0.3)
            assert "succeeded" in runs.render_line(1).text  # the first row, as drawn
    finally:
        if run is not None:
            run.__exit__(None, None, None)


async def test_stop_a_running_run(tmp_path, wb_home, fast_sampling):
    add_script_project(
        tmp_path / "sleepy",
        'import time\nprint("sleeping", flush=True)\ntime.sleep(600)\n',
        "sleepy",
    )
    store = open_store()
    run_id, _ = start_run(store, "sleepy", {})
    try:
        app = make_app()
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await open_project(pilot, "sleepy")
            runs = table(app, "#runs")
            key = str(run_id)
            await wait_for(pilot, lambda: row(runs, key)[2] == "running", what="the run running")
            await pilot.press("x")
            await on_screen(pilot, ConfirmModal)  # a stopped run cannot be resumed
            await pilot.press("enter")
            await wait_for(pilot, lambda: f"stopping run {run_id}…" in notifications(app))
            await wait_for(pilot, lambda: row(runs, key)[2] == "stopped", what="the run stopped")
            await wait_for(pilot, lambda: f"run {run_id} stopped" in notifications(app))
    finally:  # never leave a 10-minute sleeper behind a failed test
        if show_run(store, run_id)["status"] in ("queued", "running"):
            stop_run(store, run_id)
        store.close()


async def test_run_started_by_the_cli_shows_up_live(tmp_path, cli):
    gate = tmp_path / "go"
    add_script_project(
        tmp_path / "live",
        f"""\
        import pathlib, time
        print("waiting for the gate", flush=True)
        while not pathlib.Path({str(gate)!r}).exists():
            time.sleep(0.05)
        for i in range(3):
            print(f"tick {{i}}", flush=True)
        """,
        "live",
    )
    run_id = cli("run", "start", "live", check=True).stdout.split()[0]
    app = make_app(open_project="live")
    async with app.run_test(size=SIZE) as pilot:
        screen = await on_screen(pilot, ProjectScreen)
        assert screen.project == "live"
        runs = table(app, "#runs")
        await wait_for(pilot, lambda: row(runs, run_id)[2] == "running", what="the run running")
        await pilot.press("enter")
        run = await on_screen(pilot, RunScreen)
        log = run.query_one("#run-log", RichLog)
        status = run.query_one("#run-status", Label)
        await wait_for(pilot, lambda: [x.text for x in log.lines] == ["waiting for the gate"])
        assert "running" in plain(status)

        gate.touch()
        await wait_for(pilot, lambda: "succeeded" in plain(status), what="the run finished")
        await wait_for(pilot, lambda: len(log.lines) == 4, what="the rest of the log")
        assert [x.text for x in log.lines][1:] == ["tick 0", "tick 1", "tick 2"]
        await pilot.press("escape")
        await wait_for(pilot, lambda: row(runs, run_id)[2] == "succeeded")


# Help, palette, config ---------------------------------------------------------------


async def test_help_lists_the_keys_of_the_screen(trained):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: table(app, "#projects").row_count == 3)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = plain(app.screen.query_one(Static))
        for words in ("Open", "Demo", "New project", "Refresh", "Quit", "Help", "ctrl+p"):
            assert words in text
        await pilot.press("escape")
        assert isinstance(app.screen, HomeScreen)

        await open_project(pilot, "cancer")
        await pilot.press("question_mark")
        help_text = plain(app.screen.query_one(Static))
        assert help_text.startswith("Project cancer keys")
        for key, words in (
            ("n", "Start run"),
            ("x", "Stop run"),
            ("space", "Mark"),
            ("c", "Compare"),
            ("s", "Sort"),
            ("/", "Filter"),
            ("esc", "Back"),
        ):
            assert any(
                line.split() and line.split()[0] == key and words in line
                for line in help_text.splitlines()
            ), (key, words, help_text)
        await pilot.press("escape")
        assert isinstance(app.screen, ProjectScreen)


async def test_palette_opens_a_project(trained):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.project_names == ["autompg", "cancer", "penguins"])
        await pilot.press("ctrl+p")
        palette = await on_screen(pilot, CommandPalette)
        assert palette
        await pilot.press(*"open canc")
        await wait_for(
            pilot,
            lambda: app.screen.query_one("CommandList").option_count > 0,
            what="palette hits",
        )
        first = app.screen.query_one("CommandList").get_option_at_index(0)
        assert "Open project cancer" in str(first.prompt)
        await pilot.press("enter")
        screen = await on_screen(pilot, ProjectScreen)
        assert screen.project == "cancer"


async def test_keymap_from_user_config(trained, wb_home):
    (wb_home / "config.toml").write_text('[keys]\n"project.start" = "ctrl+n"\n')
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, "cancer")
        await pilot.press("n")
        assert app.screen is screen  # the default key is replaced, not added to
        await pilot.press("ctrl+n")
        form = await on_screen(pilot, StartRunModal)
        assert form.query_one("#param-epochs", Input).value == "30"
        await pilot.press("escape")  # cancel: nothing is started
        assert app.screen is screen
        await pilot.pause(0.3)
        assert row_keys(table(app, "#runs")) == ["4", "3"]
        assert sql_value(wb_home, "SELECT COUNT(*) FROM runs") == 4


async def test_help_shows_remapped_keys(tmp_path, wb_home):
    (wb_home / "config.toml").write_text('[keys]\n"project.start" = "ctrl+n"\n')
    add_script_project(tmp_path / "quick", QUICK, "quick")
    app = make_app(open_project="quick")
    async with app.run_test(size=SIZE) as pilot:
        await on_screen(pilot, ProjectScreen)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        line = next(x for x in plain(app.screen.query_one(Static)).splitlines() if "Start run" in x)
        assert line.split()[0] in ("^n", "ctrl+n"), line


async def test_start_form_before_the_first_poll_still_has_the_params(
    tmp_path, monkeypatch: pytest.MonkeyPatch
):
    add_script_project(tmp_path / "quick", QUICK, "quick")
    slow = reads.project_runs

    def slow_project_runs(name: str, limit: int = reads.PAGE_ROWS, **view):
        time.sleep(0.8)  # a big or busy store
        return slow(name, limit, **view)

    monkeypatch.setattr(reads, "project_runs", slow_project_runs)
    app = make_app(open_project="quick")
    async with app.run_test(size=SIZE) as pilot:
        await on_screen(pilot, ProjectScreen)
        await pilot.press("n")
        form = await on_screen(pilot, StartRunModal)
        await wait_for(pilot, lambda: form.query_one("#param-epochs", Input), timeout=1)


async def test_light_theme_from_user_config(wb_home):
    (wb_home / "config.toml").write_text('[ui]\ntheme = "light"\n')
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        assert app.theme == "textual-light"
        await pilot.press("ctrl+t")
        assert app.theme == "textual-dark"


# Never crashes -----------------------------------------------------------------------


async def test_invalid_project_config_is_shown_not_raised(trained):
    (trained / "cancer-script" / "workbench.toml").write_text("[train\ntrainer = ")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        projects = table(app, "#projects")
        await wait_for(pilot, lambda: projects.row_count == 3)
        assert row(projects, "cancer")[3] == "config error"
        assert row(projects, "penguins")[3].startswith("f1 ")
        screen = await open_project(pilot, "cancer")
        summary = plain(screen.query_one("#project-summary", Label))
        assert "workbench.toml" in summary and "not valid TOML" in summary
        assert row_keys(table(app, "#runs")) == ["4", "3"]  # the runs are still there

        await pilot.press("n", "enter")  # a start is refused with the config's message
        modal = await on_screen(pilot, ErrorModal)
        assert modal.title_text == "Invalid configuration"
        assert "workbench.toml" in modal.message
        await pilot.press("escape")
        assert app.screen is screen


async def test_deleted_project_folder_is_shown_missing(trained):
    shutil.rmtree(trained / "penguins-lightgbm")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        projects = table(app, "#projects")
        await wait_for(pilot, lambda: projects.row_count == 3)
        assert row(projects, "penguins")[4].endswith("penguins-lightgbm (missing)")
        assert not row(projects, "cancer")[4].endswith("(missing)")
        screen = await open_project(pilot, "penguins")
        assert "no longer exists" in plain(screen.query_one("#project-summary", Label))
        assert row_keys(table(app, "#runs")) == ["1"]


async def test_unknown_run_is_reported_not_raised(trained):
    def reported() -> bool:
        if isinstance(app.screen, ErrorModal):  # what the app should do (see below)
            return "no run 99999" in app.screen.message
        return any("no run 99999" in n for n in notifications(app))  # what it does now

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(RunScreen(99999))
        await wait_for(pilot, reported, what="the error shown")
        await pilot.pause(0.3)
        await pilot.press("escape")
        assert app.is_running
        assert isinstance(app.screen, (RunScreen, HomeScreen))


async def test_unknown_run_shows_an_error_modal(trained):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(RunScreen(99999))
        modal = await on_screen(pilot, ErrorModal, timeout=1.5)
        assert "no run 99999" in modal.message


async def test_busy_store_does_not_crash(tmp_path, wb_home):
    """Another connection holds the store's write lock until the test lets go:
    polls go on, a run started meanwhile waits for the lock, the app keeps
    answering keys."""
    add_script_project(tmp_path / "quick", QUICK, "quick")
    app = make_app(open_project="quick")
    async with app.run_test(size=SIZE) as pilot:
        await on_screen(pilot, ProjectScreen)
        runs = table(app, "#runs")
        held, let_go, released = threading.Event(), threading.Event(), threading.Event()

        def hold() -> None:
            db = sqlite3.connect(wb_home / "workbench.db", isolation_level=None)
            try:
                db.execute("BEGIN EXCLUSIVE")
                db.execute(
                    "INSERT INTO events (ts, kind, message) VALUES (?, 'note', 'after the lock')",
                    (time.time(),),
                )
                held.set()
                let_go.wait(300)  # the test lets go once it has checked the app
                db.execute("COMMIT")
            finally:
                db.close()
                released.set()

        locker = threading.Thread(target=hold)
        locker.start()
        try:
            assert held.wait(60)
            await pilot.press("n")
            await on_screen(pilot, StartRunModal)
            await pilot.press("enter")  # the run's INSERT waits for the lock
            await pilot.press("question_mark")  # meanwhile the app answers keys
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            assert isinstance(app.screen, ProjectScreen)
            await pilot.pause(0.3)
            assert not released.is_set() and runs.row_count == 0
        finally:
            let_go.set()
            locker.join()
        await wait_for(pilot, lambda: row(runs, "1")[2] == "succeeded", what="the run")
        assert not any("Could not" in n for n in notifications(app))
        await pilot.press("escape")
        activity = table(app, "#activity")
        await wait_for(
            pilot,
            lambda: any(row(activity, k)[1] == "after the lock" for k in row_keys(activity)),
            what="the home screen's next poll",
        )
