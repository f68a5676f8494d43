"""Snapshots of every screen at 80x24 and 120x40, built from real trained runs of the
sample projects. What varies from one machine or one day to the next (times,
durations, resource samples, the environment, folder paths, the machine's
CPU/RAM) is pinned first, so the pictures are the same everywhere.

Regenerate after an intended UI change with
`pytest tests/test_tui_snapshots.py --snapshot-update` and review the SVGs."""

from __future__ import annotations

import dataclasses

import json
import shutil
import threading
import time
from pathlib import Path

import pytest
from textual.widgets import Input, Label
from tui_setup import register, template_env
from tui_support import (
    CANCER_RUNS,
    copy_trained,
    plain,
    sql,
    trained_template,
    use_fixed_system_sampler,
    wait_for,
)
from wbtest import regular_only, wb

from workbench.tui import reads
from workbench.tui.app import make_app
from workbench.tui.screens.artifacts import ArtifactsScreen
from workbench.tui.screens.automation import AutomationScreen
from workbench.tui.screens.data import DataScreen
from workbench.tui.screens.forms import InitProjectModal, StartRunModal
from workbench.tui.screens.help import HelpScreen
from workbench.tui.screens.models import ModelsScreen
from workbench.tui.screens.project import ProjectScreen
from workbench.tui.screens.run import RunScreen
from workbench.tui.screens.run_notes import RunNotesModal
from workbench.tui.screens.sweep import SweepScreen

pytestmark = pytest.mark.slow  # trains the sample projects

T0 = 1_750_000_000.0  # 2025-06-15 15:06:40 UTC: runs start here
NOW = T0 + 7_200  # what the screens take for "now"
ENVIRONMENT = {
    "python": "3.12.3",
    "platform": "Linux-6.8.0-x86_64-with-glibc2.39",
    "hostname": "workstation",
    "cpu": {"model": "AMD Ryzen 9 7950X 16-Core Processor", "cores": 32},
    "memory_total": 68_719_476_736,
    "gpus": [],
    "libraries": {"workbench-mlops": "0.1.0", "numpy": "2.1.3", "scikit-learn": "1.6.1"},
    "git": None,
    "seeds": {"seed": 0, "split_seed": 42},
}
CPU = (85.0, 132.5, 148.0, 121.0, 96.5, 40.0)  # percent, one sample every 0.5 s
RSS_MIB = (120, 185, 210, 224, 226, 150)


def pin_store(home: Path) -> None:
    """Fixed times, durations, resource samples and environment for every run."""
    sql(home, "UPDATE projects SET created_at = ?", (T0 - 3600,))
    sql(home, "UPDATE events SET ts = ? + id * 45", (T0,))
    sql(
        home,
        "UPDATE runs SET created_at = ? + id * 600, started_at = ? + id * 600 + 1,"
        " ended_at = ? + id * 600 + 1 + 3.5 + id * 1.25, cpu_time_s = 4.2 + id,"
        " max_rss_bytes = 226 * 1048576, environment = ?",
        (T0, T0, T0, json.dumps(ENVIRONMENT)),
    )
    sql(home, "UPDATE runs SET heartbeat_at = ended_at")
    sql(home, "UPDATE model_versions SET created_at = ? + run_id * 600 + 10", (T0,))
    sql(home, "UPDATE promotions SET created_at = ? + id * 60 + 3000", (T0,))
    sql(home, "DELETE FROM resource_samples")
    for run_id in range(1, 5):
        for i, (cpu, rss) in enumerate(zip(CPU, RSS_MIB, strict=True)):
            sql(
                home,
                "INSERT INTO resource_samples (run_id, ts, cpu_percent, rss_bytes, num_threads,"
                " num_procs) VALUES (?, ? + ? * 600 + 1 + ? * 0.5, ?, ?, 4, 1)",
                (run_id, T0, run_id, i, cpu, rss * 1048576),
            )


@pytest.fixture(scope="module")
def pinned_template(tmp_path_factory) -> Path:
    """The trained store with everything that varies pinned, once per module."""
    root = tmp_path_factory.mktemp("pinned")
    copy_trained(trained_template(tmp_path_factory), root / "home", root)
    pin_store(root / "home")
    return root


@pytest.fixture
def pinned(pinned_template: Path, wb_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A copy of the trained store with everything that varies pinned."""
    copy_trained(pinned_template, wb_home, tmp_path)
    monkeypatch.setattr(time, "time", lambda: NOW)
    use_fixed_system_sampler(monkeypatch)
    real_snapshot = reads.home_snapshot

    def home_snapshot():
        snapshot = real_snapshot()
        return dataclasses.replace(  # the test's tmp folder, shown stable
            snapshot,
            projects=[
                dataclasses.replace(p, path="~/projects/" + Path(p.path).name, missing=False)
                for p in snapshot.projects
            ],
        )

    monkeypatch.setattr(reads, "home_snapshot", home_snapshot)
    real_data = reads.data_overview

    def data_overview(name: str):
        overview = real_data(name)
        for version in overview["versions"]:
            version["path"] = "~/projects/" + Path(version["path"]).name
        return overview

    monkeypatch.setattr(reads, "data_overview", data_overview)
    real_models = reads.models_overview

    def models_overview(name: str):
        """Library versions and the hashes of files whose bytes depend on them,
        and folder paths, pinned."""
        overview = real_models(name)
        overview["versions"] = [
            dataclasses.replace(
                v,
                framework_version="1.6.1",
                model_sha256=f"{v.version}" * 64,
                schema_sha256="5" * 64,
                holdout_sha256="6" * 64,
            )
            for v in overview["versions"]
        ]
        for found in overview["datasets"].values():
            found[:] = [
                dataclasses.replace(d, path="~/projects/data/" + Path(d.path).name) for d in found
            ]
        return overview

    monkeypatch.setattr(reads, "models_overview", models_overview)


async def settle(pilot, ready, what: str, timeout: float = 20) -> None:
    """Wait for the screen's data, then make every table draw itself afresh.

    Textual's DataTable (8.2) caches rendered cells by an update counter that
    the idle-time column-width pass does not bump, so a table painted between
    `add_row` and that pass keeps its cells clipped to the header widths (see
    Textualize/textual#3533). Whether that paint happens depends on timing;
    a resize bumps the counter, so the picture no longer does."""
    await wait_for(pilot, ready, timeout, what)
    width, height = pilot.app.size
    await pilot.resize_terminal(width + 10, height)
    await pilot.pause(0.1)
    await pilot.resize_terminal(width, height)
    await pilot.pause(0.2)


SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])


async def steady(pilot, form) -> None:
    """A form's text cursors drawn steadily: a blinking one is on or off
    depending on the moment the picture is taken."""
    for field in form.query("Input, TextArea"):
        field.cursor_blink = False
    await pilot.pause(0.2)


async def shown(pilot, screen_type: type, what: str):
    """The app's top screen once it is a `screen_type`."""
    return await wait_for(
        pilot, lambda: isinstance(pilot.app.screen, screen_type) and pilot.app.screen, 20, what
    )


@SIZES
def test_home(pinned, snap_compare, size):
    async def loaded(pilot):
        screen = pilot.app.screen
        await settle(
            pilot,
            lambda: (
                screen.query_one("#projects").row_count == 3
                and screen.query_one("#activity").row_count >= 10
                and plain(screen.query_one("#cpu-label", Label)) == "CPU 37%"
            ),
            "the projects, activity and one system sample",
        )

    assert snap_compare(make_app(), terminal_size=size, run_before=loaded)


@SIZES
def test_home_whose_rows_arrive_after_mount(pinned, snap_compare, size, monkeypatch):
    """The rows come after the table was first drawn (a busy store), and there is
    no resize to redraw it: every column is at its full width all the same."""
    real = reads.home_snapshot
    first = threading.Event()

    def late():
        if not first.is_set():
            first.set()
            time.sleep(0.3)  # the table has been drawn empty, at its header widths
        return real()

    monkeypatch.setattr(reads, "home_snapshot", late)

    async def loaded(pilot):
        screen = pilot.app.screen
        await wait_for(
            pilot,
            lambda: (
                screen.query_one("#projects").row_count == 3
                and screen.query_one("#activity").row_count >= 10
                and plain(screen.query_one("#cpu-label", Label)) == "CPU 37%"
            ),
            20,
            "the projects after mount",
        )
        await pilot.pause(0.3)

    assert snap_compare(make_app(), terminal_size=size, run_before=loaded)


def project_shown(pilot) -> bool:
    screen = pilot.app.screen
    return (
        isinstance(screen, ProjectScreen)
        and screen.query_one("#runs").row_count == 2
        and "best: run" in plain(screen.query_one("#project-summary", Label))
    )


@SIZES
def test_project(pinned, snap_compare, size):
    async def loaded(pilot):
        await settle(pilot, lambda: project_shown(pilot), "the cancer runs")

    assert snap_compare(make_app(open_project="cancer"), terminal_size=size, run_before=loaded)


@SIZES
def test_run_mid_training(pinned, wb_home, snap_compare, size, monkeypatch):
    """Run 4 as if still training: running, no end yet, its supervisor alive
    (the reconciliation that would find it gone is left out)."""
    sql(
        wb_home,
        "UPDATE runs SET status = 'running', ended_at = NULL, exit_code = NULL WHERE id = 4",
    )
    monkeypatch.setattr(reads, "reconcile", lambda: None)

    async def loaded(pilot):
        pilot.app.open_run(CANCER_RUNS[1])
        screen = await shown(pilot, RunScreen, "the run screen")
        await settle(
            pilot,
            lambda: (
                len(screen.query_one("#run-log").lines) > 10
                and "running" in plain(screen.query_one("#run-status", Label))
                and screen.query_one("#metric-grid").children
            ),
            "the live run's log, status and charts",
        )

    assert snap_compare(make_app(), terminal_size=size, run_before=loaded)


@SIZES
def test_data(pinned, snap_compare, size):
    async def loaded(pilot):
        pilot.app.push_screen(DataScreen("cancer"))
        screen = await shown(pilot, DataScreen, "the data screen")
        await settle(pilot, lambda: screen.snapshot is not None, "the data versions")
        # With no drift report yet, the histogram's box says what it will show.
        assert "once drift is checked" in screen.query_one("#histogram")._title

    assert snap_compare(make_app(), terminal_size=size, run_before=loaded)


@SIZES
def test_models(pinned, snap_compare, size):
    async def loaded(pilot):
        pilot.app.open_models("cancer")
        screen = await shown(pilot, ModelsScreen, "the models screen")
        await settle(pilot, lambda: screen.snapshot is not None, "the model versions")

    assert snap_compare(make_app(), terminal_size=size, run_before=loaded)


@SIZES
def test_automation(pinned, snap_compare, size):
    async def loaded(pilot):
        pilot.app.open_automation()
        screen = await shown(pilot, AutomationScreen, "the automation screen")
        await settle(
            pilot, lambda: screen.query_one("#timeline").row_count > 0, "the automation events"
        )

    assert snap_compare(make_app(), terminal_size=size, run_before=loaded)


@SIZES
def test_help(pinned, snap_compare, size):
    async def loaded(pilot):
        await settle(pilot, lambda: project_shown(pilot), "the project")
        await pilot.press("question_mark")
        await shown(pilot, HelpScreen, "help")
        await pilot.pause(0.2)

    assert snap_compare(make_app(open_project="cancer"), terminal_size=size, run_before=loaded)


@SIZES
def test_start_form(pinned, snap_compare, size):
    async def loaded(pilot):
        await settle(pilot, lambda: project_shown(pilot), "the project")
        await pilot.press("n")
        form = await shown(pilot, StartRunModal, "the start form")
        await wait_for(pilot, lambda: form.query_one("#param-epochs", Input).has_focus, 20, "focus")
        await steady(pilot, form)

    assert snap_compare(make_app(open_project="cancer"), terminal_size=size, run_before=loaded)


@SIZES
def test_new_project_form(pinned, snap_compare, size):
    async def loaded(pilot):
        await settle(pilot, lambda: pilot.app.screen.query_one("#projects").row_count == 3, "home")
        await pilot.press("i")
        form = await shown(pilot, InitProjectModal, "the new-project form")
        await wait_for(pilot, lambda: form.query_one("#init-path", Input).has_focus, 20, "focus")
        await steady(pilot, form)

    assert snap_compare(make_app(), terminal_size=size, run_before=loaded)


@SIZES
def test_tags_and_note_form(pinned, snap_compare, size):
    async def loaded(pilot):
        await settle(pilot, lambda: project_shown(pilot), "the project")
        await pilot.press("t")
        form = await shown(pilot, RunNotesModal, "the tags form")
        await wait_for(pilot, lambda: form.query_one("#notes-tags", Input).has_focus, 20, "focus")
        await steady(pilot, form)

    assert snap_compare(make_app(open_project="cancer"), terminal_size=size, run_before=loaded)


@SIZES
def test_artifacts(pinned, snap_compare, size):
    async def loaded(pilot):
        await settle(pilot, lambda: project_shown(pilot), "the project")
        await pilot.press("f")
        screen = await shown(pilot, ArtifactsScreen, "the artifacts")
        await settle(
            pilot, lambda: screen.query_one("#artifact-list").row_count > 0, "the artifact list"
        )

    assert snap_compare(make_app(open_project="cancer"), terminal_size=size, run_before=loaded)


def test_compare(pinned, snap_compare):
    async def loaded(pilot):
        pilot.app.open_compare(list(CANCER_RUNS))
        await pilot.pause()
        screen = pilot.app.screen
        await settle(
            pilot,
            lambda: screen.query_one("#compare-table").row_count > 10 and screen.key,
            "the comparison",
        )
        await pilot.press("m", "m", "m", "m")  # accuracy, f1, log_loss, roc_auc -> train_loss
        await settle(
            pilot,
            lambda: screen.query_one("#compare-chart")._title.startswith("train_loss"),
            "the train_loss chart",
        )

    assert snap_compare(make_app(), terminal_size=(100, 30), run_before=loaded)


# The Sweep screen, on a real sweep ----------------------------------------------

SWEEP_SCRIPT = """
import workbench as wb

p = wb.params()
wb.log_metric("score", -((p["x"] - 0.3) ** 2) - 0.01 * p["depth"])
"""
SWEEP_TOML = """
[project]
name = "tiny"
[data]
train = "train.csv"
target = "y"
[train]
trainer = "script"
script = "train.py"
metric = "score"
seed = 42
[sweep]
sampler = "random"
[sweep.space]
x = { type = "float", low = 0.0, high = 1.0 }
depth = { type = "int", low = 1, high = 9 }
"""
SWEEP_ID = 1  # run 1 is the sweep, runs 2-7 its trials
_swept: Path | None = None


def swept_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with one finished sweep of six trials (random sampler, seed 42:
    the same parameters and scores on every machine), made once per session."""
    global _swept
    if _swept is None:
        root = tmp_path_factory.mktemp("swept")
        folder = root / "projects" / "tiny"
        folder.mkdir(parents=True)
        (folder / "train.csv").write_text("x,y\n1,0\n2,1\n")
        (folder / "train.py").write_text(SWEEP_SCRIPT)
        (folder / "workbench.toml").write_text(SWEEP_TOML)
        with template_env(root / "home"):
            register(folder)
            # A process of its own: the sweep returns as its last trial ends, before
            # that trial's supervisor has exited.
            wb("sweep", "start", "tiny", "--trials", "6", check=True, timeout=240)
        _swept = root
    return _swept


@pytest.fixture
def pinned_sweep(tmp_path_factory, wb_home: Path, tmp_path: Path, monkeypatch):
    """A copy of the swept store; fANOVA's forest seeded (Optuna seeds it
    afresh on each call otherwise, so the importances would wobble)."""
    import optuna

    template = swept_template(tmp_path_factory)
    shutil.copytree(template / "projects", tmp_path / "projects")
    shutil.copytree(template / "home", wb_home, dirs_exist_ok=True, ignore=regular_only)
    sql(wb_home, "UPDATE projects SET path = ?", (str(tmp_path / "projects" / "tiny"),))
    monkeypatch.setattr(time, "time", lambda: NOW)
    use_fixed_system_sampler(monkeypatch)
    real = optuna.importance.get_param_importances

    def seeded(study, **options):
        options.setdefault("evaluator", optuna.importance.FanovaImportanceEvaluator(seed=0))
        return real(study, **options)

    monkeypatch.setattr(optuna.importance, "get_param_importances", seeded)


@SIZES
def test_sweep(pinned_sweep, snap_compare, size):
    async def loaded(pilot):
        pilot.app.push_screen(SweepScreen(SWEEP_ID))
        screen = await shown(pilot, SweepScreen, "the sweep screen")
        await settle(
            pilot,
            lambda: (
                screen.query_one("#trials").row_count == 6
                and "fANOVA" in plain(screen.query_one("#importances"))
                and "6/6 trials" in plain(screen.query_one("#sweep-status", Label))
            ),
            "the trials, the best so far and the importances",
        )

    assert snap_compare(make_app(), terminal_size=size, run_before=loaded)
