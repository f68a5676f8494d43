"""What someone new to the terminal UI meets first, through Textual's Pilot:
tables drawn at full width however late their rows come, a log that stays put
while being read, questions before costly actions, forms that take typing at
once and fit 80x24, footers that keep the screen's main keys, fixed scales,
empty-state hints, and the Data and Sweep screens' plain verdicts."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import pytest
from test_runs_e2e import script_project
from textual.widgets import Button, Input, Label, RichLog, Static
from textual.widgets._footer import FooterKey
from tui_support import notifications, plain, row, row_keys, use_fixed_system_sampler, wait_for

from workbench.core.errors import UsageError
from workbench.projects import add_project
from workbench.runs.control import stop_run
from workbench.runs.launch import start_run
from workbench.runs.launch import wait_for as wait_for_run
from workbench.runs.queries import show_run
from workbench.config.settings import Settings
from workbench.store import open_store
from workbench.store.dashboard import Activity, BestRun
from workbench.tui import reads
from workbench.tui.app import WorkbenchApp, make_app
from workbench.tui.screens.confirm import ConfirmModal
from workbench.tui.screens.forms import InitProjectModal, StartRunModal, type_problem
from workbench.tui.screens.help import HelpScreen
from workbench.tui.screens.home import HomeScreen
from workbench.tui.screens.project import ProjectScreen
from workbench.tui.screens.run import RunScreen
from workbench.tui.screens.sweep import SweepScreen, _importance_bars
from workbench.tui.widgets.metric_chart import MetricChart
from workbench.tui.widgets.synced_table import SyncedTable
from workbench.tui.widgets.system_strip import Sparkline

pytestmark = pytest.mark.slow  # drives supervised runs


@pytest.fixture(autouse=True)
def migrated_store(wb_home: Path) -> None:
    open_store().close()


@pytest.fixture(autouse=True)
def fixed_system_sampler(monkeypatch: pytest.MonkeyPatch) -> None:
    use_fixed_system_sampler(monkeypatch)


def add_script(root: Path, body: str, name: str, params: str = "epochs = 3") -> Path:
    folder = script_project(root, body, name=name)
    toml = folder / "workbench.toml"
    toml.write_text(toml.read_text().replace("epochs = 3", params))
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


def finished_run(project: str) -> int:
    store = open_store()
    try:
        run_id, supervisor = start_run(store, project, {})
        assert wait_for_run(store, run_id, supervisor) == "succeeded"
        return run_id
    finally:
        store.close()


def table_lines(table: SyncedTable) -> list[str]:
    """The lines the table draws now (through its caches), as plain text."""
    return [table.render_line(y).text for y in range(table.size.height)]


def footer_keys(app: WorkbenchApp) -> dict[str, FooterKey]:
    return {k.key: k for k in app.screen.query(FooterKey)}


async def on_screen(pilot, kind: type, timeout: float = 20):
    app = pilot.app
    return await wait_for(
        pilot, lambda: isinstance(app.screen, kind) and app.screen, timeout, kind.__name__
    )


# Home: rows that arrive after mount ----------------------------------------

LATE_PROJECTS = [
    reads.ProjectCard(
        name="penguins-lightgbm-long",
        path="/srv/projects/penguins",
        runs=12,
        last_run=5,
        last_status="succeeded",
        best=BestRun(project_id=1, run=5, metric="accuracy", value=0.971234567891234),
    ),
    reads.ProjectCard(name="autompg", path="/srv/projects/autompg"),
    reads.ProjectCard(name="cancer", path="/srv/projects/cancer"),
]


@pytest.fixture
def late_home(monkeypatch: pytest.MonkeyPatch) -> None:
    """Home's rows come 30 ms after the screen mounts, as from a real store."""

    def late() -> reads.HomeSnapshot:
        time.sleep(0.03)
        event = Activity(1, time.time() - 70, "run.succeeded", "run 5 of penguins succeeded", 5, None)
        return reads.HomeSnapshot(LATE_PROJECTS, [event])

    monkeypatch.setattr(reads, "home_snapshot", late)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_home_rows_arriving_after_mount_are_drawn_at_full_width(late_home, size):
    app = WorkbenchApp(Settings())
    async with app.run_test(size=size) as pilot:
        projects = await wait_for(
            pilot, lambda: app.screen.query_one("#projects", SyncedTable), what="home"
        )
        await wait_for(pilot, lambda: projects.row_count == 3, what="the rows")
        await pilot.pause(0.3)  # no cursor move, no new poll: what is drawn now
        lines = table_lines(projects)
        assert "penguins-lightgbm-long" in lines[1], lines[:3]
        assert "5 succeeded" in lines[1], lines[:3]
        assert "accuracy 0.9712" in "".join(lines[1:2]) or size == (80, 24), lines[:3]
        activity = table_lines(app.screen.query_one("#activity", SyncedTable))
        assert "1m ago" in activity[1], activity[:2]


async def test_tables_move_with_j_k_g_and_G(late_home):
    app = WorkbenchApp(Settings())
    async with app.run_test(size=(100, 30)) as pilot:
        projects = await wait_for(
            pilot, lambda: app.screen.query_one("#projects", SyncedTable), what="home"
        )
        await wait_for(pilot, lambda: projects.row_count == 3, what="the rows")
        assert projects.cursor_row == 0
        await pilot.press("j")
        assert projects.cursor_row == 1
        await pilot.press("k")
        assert projects.cursor_row == 0
        await pilot.press("G")
        assert projects.cursor_row == 2
        await pilot.press("g")
        assert projects.cursor_row == 0


async def test_floats_in_tables_have_four_significant_digits(late_home):
    app = WorkbenchApp(Settings())
    async with app.run_test(size=(120, 40)) as pilot:
        projects = await wait_for(
            pilot, lambda: app.screen.query_one("#projects", SyncedTable), what="home"
        )
        await wait_for(pilot, lambda: projects.row_count == 3, what="the rows")
        assert row(projects, "penguins-lightgbm-long")[3] == "accuracy 0.9712"
        projects.show([("x", ("x", 0.1 + 0.2, 12345.678901, "", ""))])
        assert row(projects, "x")[1:3] == ["0.3", "1.235e+04"]


# Home: demo and empty state --------------------------------------------------


async def test_demo_asks_first_and_empty_home_says_what_to_do(wb_home):
    app = WorkbenchApp(Settings())
    async with app.run_test(size=(80, 24)) as pilot:
        home = await on_screen(pilot, HomeScreen)
        hint = await wait_for(pilot, lambda: home.query_one("#home-empty", Label))
        await wait_for(pilot, lambda: "No projects yet" in plain(hint), what="the hint")
        assert hint.display and "press i" in plain(hint)
        await pilot.press("d")
        modal = await on_screen(pilot, ConfirmModal)
        assert "demo" in plain(modal.query_one("#confirm-title", Label)).lower()
        await pilot.press("escape")
        await on_screen(pilot, HomeScreen)
        await pilot.pause(0.3)
        store = open_store()
        try:
            assert store.scalar("SELECT COUNT(*) FROM runs") == 0
            assert store.scalar("SELECT COUNT(*) FROM projects") == 0
        finally:
            store.close()


# Forms: the first field has the focus; typing goes in at once ------------------


async def test_new_project_form_takes_typing_at_once(wb_home):
    app = WorkbenchApp(Settings())
    async with app.run_test(size=(80, 24)) as pilot:
        await on_screen(pilot, HomeScreen)
        await pilot.press("i")
        form = await on_screen(pilot, InitProjectModal)
        path = await wait_for(pilot, lambda: form.query_one("#init-path", Input))
        await wait_for(pilot, lambda: app.focused is path, what="the focus")
        assert app.focused is path
        await pilot.press(*"abc")
        assert path.value == "abc"
        await pilot.press("escape")
        await on_screen(pilot, HomeScreen)


MANY_PARAMS = ", ".join(f"p{i} = {i}" for i in range(12))


async def test_start_form_focus_fit_and_type_check(tmp_path, wb_home):
    add_script(tmp_path / "quick", QUICK, "quick", params=f"epochs = 3, {MANY_PARAMS}")
    app = WorkbenchApp(Settings())
    async with app.run_test(size=(80, 24)) as pilot:
        await on_screen(pilot, HomeScreen)
        app.open_project("quick")
        project = await on_screen(pilot, ProjectScreen)
        await wait_for(pilot, lambda: project.snapshot is not None, what="the project")
        await pilot.press("n")
        form = await on_screen(pilot, StartRunModal)
        epochs = await wait_for(pilot, lambda: form.query_one("#param-epochs", Input))
        await wait_for(pilot, lambda: app.focused is epochs, what="the focus")
        await pilot.pause(0.2)
        # 13 params and the buttons: the fields scroll, the buttons stay on screen.
        for button in form.query(Button):
            region = button.region
            assert region.height > 0 and region.bottom <= 24 and region.right <= 80, region
        await pilot.press("ctrl+a", "ctrl+k", *"abc")
        error = form.query_one("#error-epochs", Label)
        assert "expected an integer" in plain(error) and error.display
        await pilot.press("enter")
        assert app.screen is form  # not started
        await pilot.press("ctrl+a", "ctrl+k", *"5")
        assert not error.display
        await pilot.press("escape")
        await on_screen(pilot, ProjectScreen)
    store = open_store()
    try:
        assert store.scalar("SELECT COUNT(*) FROM runs") == 0
    finally:
        store.close()


def test_type_problem_follows_the_param_type():
    assert type_problem(3, "abc") and type_problem(3, "1.5") and type_problem(3, "true")
    assert type_problem(3, "7") is None
    assert type_problem(0.1, "abc") and type_problem(0.1, "2") is None
    assert type_problem(True, "1") and type_problem(True, "false") is None
    assert type_problem("gbdt", "anything") is None


# Project at 80x24: footer, sort header, stop questions, empty state -----------


async def test_project_at_80x24_footer_sort_header_and_stop_of_finished_run(tmp_path, wb_home):
    add_script(tmp_path / "quick", QUICK, "quick")
    app = WorkbenchApp(Settings())
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await on_screen(pilot, HomeScreen)
        app.open_project("quick")
        project = await on_screen(pilot, ProjectScreen)
        hint = await wait_for(pilot, lambda: project.query_one("#project-empty", Label))
        await wait_for(pilot, lambda: "No runs yet" in plain(hint), what="the hint")
        assert "press n" in plain(hint)

        run_id = finished_run("quick")
        runs = project.query_one("#runs", SyncedTable)
        await wait_for(pilot, lambda: row_keys(runs) == [str(run_id)], what="the run")
        await wait_for(pilot, lambda: not hint.display, what="the hint gone")

        await pilot.pause(0.2)
        keys = footer_keys(app)
        for key in ("n", "x", "D", "M", "A", "escape", "q", "question_mark"):
            assert key in keys, sorted(keys)
            region = keys[key].region
            assert region.width > 0 and region.right <= 80, (key, region)

        assert str(runs.columns["id"].label).endswith("▼")
        await pilot.press("s")
        assert str(runs.columns["status"].label).endswith("▲")
        assert "▼" not in str(runs.columns["id"].label)

        await pilot.press("x")  # the run has finished: a plain notification
        await pilot.pause(0.2)
        assert app.screen is project
        assert any("already finished" in n for n in notifications(app)), notifications(app)


SLEEPY = """\
import time
print("sleeping", flush=True)
time.sleep(600)
"""


async def test_stop_asks_first_on_project_and_run_screens(tmp_path, wb_home, fast_sampling):
    add_script(tmp_path / "sleepy", SLEEPY, "sleepy")
    store = open_store()
    run_id, _ = start_run(store, "sleepy", {})
    try:
        app = make_app(open_project="sleepy")
        async with app.run_test(size=(100, 30), notifications=True) as pilot:
            project = await on_screen(pilot, ProjectScreen)
            runs = await wait_for(pilot, lambda: project.query_one("#runs", SyncedTable))
            key = str(run_id)
            await wait_for(pilot, lambda: row(runs, key)[2] == "running", what="running")
            await pilot.press("x")
            modal = await on_screen(pilot, ConfirmModal)
            assert f"run {run_id}" in plain(modal.query_one("#confirm-title", Label))
            await pilot.press("escape")  # changed my mind
            await on_screen(pilot, ProjectScreen)
            await pilot.pause(0.5)
            assert show_run(store, run_id)["status"] == "running"

            await pilot.press("enter")
            run_screen = await on_screen(pilot, RunScreen)
            await wait_for(pilot, lambda: run_screen.info is not None, what="the run")
            await pilot.press("x")
            await on_screen(pilot, ConfirmModal)
            await pilot.press("enter")  # the focused button: Stop run
            await wait_for(
                pilot, lambda: show_run(store, run_id)["status"] == "stopped", what="stopped"
            )
            await wait_for(pilot, lambda: "stopped" in plain(run_screen.query_one("#run-status")))
            await pilot.press("x")  # now finished: no question
            await pilot.pause(0.2)
            assert app.screen is run_screen
            assert any("already finished" in n for n in notifications(app))
    finally:
        if show_run(store, run_id)["status"] in ("queued", "running"):
            stop_run(store, run_id)
        store.close()


# Run: the log follows only at the bottom ---------------------------------------

CHATTY = """\
import pathlib, time
for i in range(300):
    print(f"line {i}", flush=True)
gate = pathlib.Path(__file__).parent / "stop"
n = 300
while not gate.exists() and n < 3000:
    print(f"line {n}", flush=True)
    n += 1
    time.sleep(0.05)
"""


async def test_run_log_follows_only_while_at_the_bottom(tmp_path, wb_home):
    folder = add_script(tmp_path / "chatty", CHATTY, "chatty")
    store = open_store()
    run_id, _ = start_run(store, "chatty", {})
    try:
        app = WorkbenchApp(Settings())
        async with app.run_test(size=(100, 30)) as pilot:
            await on_screen(pilot, HomeScreen)
            app.open_run(run_id)
            screen = await on_screen(pilot, RunScreen)
            log = await wait_for(pilot, lambda: screen.query_one("#run-log", RichLog))
            await wait_for(pilot, lambda: len(log.lines) > 300, what="the first lines")
            await wait_for(pilot, lambda: log.scroll_y >= log.max_scroll_y > 0, what="at end")

            log.scroll_to(y=10, animate=False)
            await pilot.pause(0.1)
            before = len(log.lines)
            await wait_for(pilot, lambda: len(log.lines) > before + 20, what="more lines")
            assert log.scroll_y == 10  # the reader keeps their place
            assert log.max_scroll_y > 10

            log.scroll_end(animate=False)
            await pilot.pause(0.1)
            before = len(log.lines)
            await wait_for(pilot, lambda: len(log.lines) > before + 20, what="more lines")
            # Following again: the view catches up with the lines written since
            # (on a busy machine the scroll lands a refresh after the write).
            await wait_for(
                pilot, lambda: log.scroll_y >= log.max_scroll_y - 1, what="the view at the new end"
            )
    finally:
        (folder / "stop").write_text("")
        # It may end by itself between the look and the stop: that is fine too.
        with contextlib.suppress(UsageError):
            if show_run(store, run_id)["status"] in ("queued", "running"):
                stop_run(store, run_id)
        store.close()


async def test_run_without_metrics_says_so_and_charts_have_fixed_scales(tmp_path, wb_home):
    add_script(tmp_path / "silent", 'print("no metrics here")\n', "silent")
    run_id = finished_run("silent")
    app = WorkbenchApp(Settings())
    async with app.run_test(size=(80, 24)) as pilot:
        await on_screen(pilot, HomeScreen)
        app.open_run(run_id)
        screen = await on_screen(pilot, RunScreen)
        chart = await wait_for(pilot, lambda: screen.query_one("#metric-chart", MetricChart))
        await wait_for(pilot, lambda: "No metrics logged" in chart._title, what="the hint")
        assert chart.border_title == chart._title  # shown even on a small chart
        resources = screen.query_one("#resource-chart", MetricChart)
        await wait_for(pilot, lambda: resources._ylim is not None, what="the CPU chart")
        low, high = resources._ylim
        assert low == 0 and high >= 100 and high % 100 == 0


async def test_system_sparkline_is_on_a_fixed_scale():
    from textual.app import App

    class Strip(App):
        def compose(self):
            yield Sparkline([6.0] * 10, id="spark")

    app = Strip()
    async with app.run_test(size=(10, 4)) as pilot:
        spark = app.query_one(Sparkline)
        top, bottom = str(spark.render()).split("\n")
        assert top.strip() == ""  # 6 % is a short bar, not a full-height one
        assert set(bottom) == {"▁"}
        spark.data = [100.0] * 10
        await pilot.pause()
        top, bottom = str(spark.render()).split("\n")
        assert set(top) == {"█"} and set(bottom) == {"█"}


# Keys: unknown remap ids, help's example ----------------------------------------


async def test_unknown_key_ids_are_named_at_start(wb_home):
    settings = Settings(keys={"project.strat": "ctrl+n", "project.start": "ctrl+n"})
    app = WorkbenchApp(settings)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await on_screen(pilot, HomeScreen)
        found = [n for n in notifications(app) if "unknown binding id" in n]
        assert found and "project.strat" in found[0] and "project.start," not in found[0]


async def test_help_example_remaps_to_a_free_key(tmp_path, wb_home):
    add_script(tmp_path / "quick", QUICK, "quick")
    app = make_app(open_project="quick")
    async with app.run_test(size=(100, 30)) as pilot:
        project = await on_screen(pilot, ProjectScreen)
        await pilot.press("question_mark")
        help_screen = await on_screen(pilot, HelpScreen)
        text = plain(help_screen.query_one(Static))
        example = text.rsplit("e.g.", 1)[1].strip()
        binding_id, _, key = (part.strip().strip('"') for part in example.partition("="))
        bound = {b.key for b in project.BINDINGS} | {b.key for b in app.BINDINGS}
        assert binding_id == "project.start" and key not in bound, example
        assert "project.sort" in text  # the ids to remap by are listed


# Data and Sweep: plain verdicts --------------------------------------------------


async def test_data_screen_lists_a_rejected_batch_with_its_reason(tmp_path, wb_home):
    add_script(tmp_path / "quick", QUICK, "quick")
    report = {
        "passed": False,
        "checks": [
            {"name": "row_count", "severity": "error", "passed": True, "message": "2 rows"},
            {
                "name": "missing_columns",
                "severity": "error",
                "passed": False,
                "message": "missing columns: x",
            },
        ],
    }
    store = open_store()
    try:
        project_id = store.scalar("SELECT id FROM projects WHERE name = 'quick'")
        with store.write() as conn:
            # One batch refused before it became a version, one registered first.
            conn.execute(
                "INSERT INTO dataset_versions (project_id, sha256, path, format, rows, columns,"
                " size_bytes, mtime_ns, created_at) VALUES (?, ?, ?, 'csv', 2, '[]', 9, 0, ?)",
                (project_id, "ab" * 32, "/in/registered.csv", time.time()),
            )
            for file in ("/in/batch.csv", "/in/registered.csv"):
                conn.execute(
                    "INSERT INTO data_reports (project_id, dataset_version_id, kind, file, passed,"
                    " report, created_at) VALUES (?, NULL, 'validation', ?, 0, ?, ?)",
                    (project_id, file, json.dumps(report), time.time()),
                )
    finally:
        store.close()
    app = make_app(open_project="quick")
    async with app.run_test(size=(100, 30)) as pilot:
        await on_screen(pilot, ProjectScreen)
        await pilot.press("D")
        versions = await wait_for(
            pilot, lambda: app.screen.query_one("#versions", SyncedTable), what="data"
        )
        await wait_for(pilot, lambda: versions.row_count == 2, what="the rejected batches")
        unregistered, registered = row_keys(versions)
        cells = row(versions, unregistered)
        assert cells[4] == "rejected: missing columns: x"
        assert cells[6] == "/in/batch.csv"
        cells = row(versions, registered)
        assert cells[4] == "rejected: missing columns: x"
        assert cells[6] == "/in/registered.csv"


def test_equal_importances_are_no_finding():
    text = _importance_bars({"a": 0.34, "b": 0.33, "c": 0.33})
    assert "no parameter stands out" in text
    text = _importance_bars({"a": 0.8, "b": 0.1, "c": 0.1})
    assert "stands out" not in text


async def test_sweep_shows_pruned_trials_as_pruned(monkeypatch, wb_home):
    from workbench.sweeps import engine

    document = {
        "project": "tiny",
        "status": "running",
        "trials_requested": 3,
        "direction": "maximize",
        "registered_version": None,
        "objective": "score",
        "best": {"number": 0, "run_id": 2, "value": 0.5, "params": {"x": 0.1}},
        "trials": [
            {"number": 0, "state": "complete", "value": 0.5, "run_id": 2, "params": {"x": 0.1}},
            {"number": 1, "state": "pruned", "value": -1, "run_id": 3, "params": {"x": 0.9}},
        ],
    }
    monkeypatch.setattr(engine, "summary", lambda store, run_id: json.loads(json.dumps(document)))
    monkeypatch.setattr(engine, "importances", lambda run_id: {"x": 1.0})
    app = WorkbenchApp(Settings())
    async with app.run_test(size=(100, 30)) as pilot:
        await on_screen(pilot, HomeScreen)
        app.push_screen(SweepScreen(1))
        screen = await on_screen(pilot, SweepScreen)
        trials = await wait_for(pilot, lambda: screen.query_one("#trials", SyncedTable))
        await wait_for(pilot, lambda: trials.row_count == 2, what="the trials")
        assert row(trials, "1")[1:3] == ["pruned", "pruned"]
        assert row(trials, "0")[2] == "0.5"


async def test_every_form_focuses_its_first_field_and_fits_80x24(tmp_path, wb_home):
    from workbench.tui.screens.model_forms import ExportModal

    forms = [
        InitProjectModal(),
        StartRunModal("quick", {f"p{i}": i for i in range(15)}),
        ExportModal("penguins@2", lambda fmt: tmp_path / f"out-{fmt}"),
    ]
    app = WorkbenchApp(Settings())
    async with app.run_test(size=(80, 24)) as pilot:
        await on_screen(pilot, HomeScreen)
        for form in forms:
            app.push_screen(form)
            await on_screen(pilot, type(form))
            first = await wait_for(pilot, lambda f=form: f.query("Input, Select").first())
            await wait_for(pilot, lambda f=first: app.focused is f, what=f"{form} focus")
            for button in form.query(Button):
                region = button.region
                assert region.height > 0 and region.bottom <= 24, (form, button.id, region)
            await pilot.press("escape")
            await on_screen(pilot, HomeScreen)
