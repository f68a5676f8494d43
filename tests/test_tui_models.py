"""The Models screen of a project: versions with aliases and metrics, the
promotion gate (dry run, confirm, force) and export with live progress, on a
project trained twice in real supervised runs: a weak first model (3 trees),
then the project's own params, which score a better f1."""

from __future__ import annotations

import dataclasses

import io
import json
import shutil
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.text import Text
from textual.command import CommandPalette
from textual.widgets import Button, Checkbox, Input, Label, Static
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

from workbench.core import formatting as fmt
from workbench.core.errors import WorkbenchError
from workbench.models import registry
from workbench.config.settings import Settings
from workbench.store import open_store
from workbench.tui import reads
from workbench.tui.app import WorkbenchApp, make_app
from workbench.tui.screens.error import ErrorModal
from workbench.tui.screens.help import HelpScreen
from workbench.tui.screens.model_forms import ExportModal, PromoteModal
from workbench.tui.screens.models import ModelsScreen
from workbench.tui.screens.project import ProjectScreen
from workbench.tui.screens.run import RunScreen
from workbench.tui.widgets.synced_table import SyncedTable

pytestmark = pytest.mark.slow  # trains the penguins sample twice

SIZE = (110, 34)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """penguins trained twice in real supervised runs, once per module: version
    1 (3 trees) is the champion, version 2 (better f1) the challenger."""
    root = tmp_path_factory.mktemp("models")
    with template_env(root / "home"):  # one LightGBM thread: the same model (snapshot)
        folder = root / "projects" / "penguins-lightgbm"
        shutil.copytree(SAMPLES / "penguins-lightgbm", folder)
        register(folder)
        train("penguins", {"n_estimators": 3})
        train("penguins")
    return root


@pytest.fixture
def trained(template: Path, wb_home: Path, tmp_path: Path, monkeypatch) -> Path:
    """This test's copy of the store; returns the project's folder."""
    projects = copy_trained(template, wb_home, tmp_path)
    sql(
        wb_home,
        "UPDATE dataset_versions SET path = replace(path, ?, ?)",
        (str(template / "projects"), str(projects)),
    )
    use_fixed_system_sampler(monkeypatch)
    return projects / "penguins-lightgbm"


def versions() -> dict[int, registry.ModelVersion]:
    store = open_store()
    try:
        return {v.version: v for v in registry.list_versions(store, "penguins")}
    finally:
        store.close()


def shown(widget: Static) -> str:
    """What a Static shows, markup or Rich renderable, as plain text."""
    content = widget.content
    console = Console(width=300, file=io.StringIO(), record=True, color_system=None)
    console.print(Text.from_markup(content) if isinstance(content, str) else content)
    return console.export_text()


async def open_models(pilot) -> ModelsScreen:
    app = pilot.app
    app.open_project("penguins")
    await wait_for(pilot, lambda: isinstance(app.screen, ProjectScreen), what="the project")
    await pilot.press("M")
    screen = await wait_for(
        pilot, lambda: isinstance(app.screen, ModelsScreen) and app.screen, what="Models"
    )
    await wait_for(pilot, lambda: screen.query_one("#versions").row_count == 2, what="versions")
    return screen


async def test_models_screen_lists_versions_with_aliases_and_details(trained):
    known = versions()
    app = WorkbenchApp(Settings())
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_models(pilot)
        table = screen.query_one("#versions", SyncedTable)
        assert row_keys(table) == ["2", "1"]  # newest first
        assert [c.label.plain for c in table.columns.values()][:5] == [
            "Version",
            "Aliases",
            "Run",
            "Framework",
            "f1",
        ]
        v1, v2 = row(table, "1"), row(table, "2")
        assert v1[1] == "champion" and v2[1] == "challenger"
        assert v2[2] == str(known[2].run_id) and v2[3] == "lightgbm"
        assert v2[4] == fmt.metric(known[2].metrics["f1"])
        assert "green" in table.get_row("2")[4]  # the best f1 stands out
        assert "green" not in table.get_row("1")[4]
        summary = plain(screen.query_one("#models-summary", Label))
        assert "primary metric f1" in summary and "champion v1  challenger v2" in summary

        detail = shown(screen.query_one("#model-info", Static))
        assert "penguins@2" in detail and "challenger" in detail
        assert f"f1 = {fmt.metric(known[2].metrics['f1'])}  (primary)" in detail
        assert known[2].model_sha256[:16] in detail
        assert "train" in detail and str(trained / "data" / "train.csv") in detail
        gate = shown(screen.query_one("#gate-info", Static))
        assert "v1 → champion: promoted" in gate and "no champion yet" in gate

        await pilot.press("down")
        await wait_for(
            pilot, lambda: "penguins@1" in shown(screen.query_one("#model-info", Static))
        )
        await pilot.press("enter")  # the version's training run
        run_screen = await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen)
        assert run_screen.run_id == known[1].run_id
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)


async def test_promote_moves_the_champion_and_force_moves_it_back(trained):
    known = versions()
    app = WorkbenchApp(Settings())
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_models(pilot)
        table = screen.query_one("#versions", SyncedTable)

        await pilot.press("p")  # version 2, the challenger
        modal = await wait_for(pilot, lambda: isinstance(app.screen, PromoteModal) and app.screen)
        text = shown(modal.query_one("#promote-decision", Static))
        assert "the gate would promote it" in text
        assert fmt.metric(known[2].metrics["f1"]) in text  # both scores
        assert fmt.metric(known[1].metrics["f1"]) in text
        assert "beats" in text
        assert versions()[1].aliases == ["champion"]  # a dry run changes nothing
        await pilot.press("enter")  # the focused button: Promote
        await wait_for(pilot, lambda: versions()[2].aliases == ["champion"], what="the promotion")
        await wait_for(pilot, lambda: row(table, "2")[1] == "champion", what="the table")
        assert row(table, "1")[1] == ""
        assert any("penguins@2 is now champion" in n for n in notifications(app))
        gate = shown(screen.query_one("#gate-info", Static))
        assert "v2 → champion over v1: promoted" in gate

        table.move_cursor(row=1)  # version 1: worse, the gate says no
        await pilot.press("p")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, PromoteModal) and app.screen)
        text = shown(modal.query_one("#promote-decision", Static))
        assert "would keep version 2 as champion" in text and "does not beat" in text
        assert modal.focused.id == "cancel"  # Enter must not force
        await pilot.click("#force")
        await wait_for(pilot, lambda: versions()[1].aliases == ["champion"], what="forced")
        await wait_for(pilot, lambda: row(table, "1")[1] == "champion", what="the table")
        store = open_store()
        try:
            latest = registry.promotions(store, "penguins")[0]
        finally:
            store.close()
        assert latest["promoted"] and latest["reason"].startswith("forced; the gate said:")


class SlowExporter:
    """Stands in for the bundle exporter: says each step, then waits for the
    test to let it go on, so the progress line can be seen at each step."""

    def __init__(self, fail: str | None = None) -> None:
        self.go_on = threading.Event()
        self.fail = fail

    def export_bundle(self, version: Any, folder: Path, **kwargs: Any) -> dict[str, Any]:
        say = kwargs["progress"]
        say("checking the model")
        assert self.go_on.wait(20)
        say("writing the manifest")
        if self.fail:
            raise WorkbenchError(self.fail)
        (folder / "manifest.json").write_text(json.dumps({"model": version.ref}))
        return {"notes": ["a note for the user"]}


def use_exporter(monkeypatch: pytest.MonkeyPatch, exporter: SlowExporter) -> None:
    module = types.ModuleType("workbench.models.bundle")
    module.export_bundle = exporter.export_bundle
    module.zip_folder = shutil.make_archive  # not called: no .zip asked for
    monkeypatch.setitem(sys.modules, "workbench.models.bundle", module)


def step_text(screen: ModelsScreen) -> str:
    return plain(screen.query_one("#export-step", Label))


async def test_export_shows_each_step_then_where_it_went(trained, monkeypatch):
    exporter = SlowExporter()
    use_exporter(monkeypatch, exporter)
    app = WorkbenchApp(Settings())
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_models(pilot)
        await pilot.press("e")
        form = await wait_for(pilot, lambda: isinstance(app.screen, ExportModal) and app.screen)
        output = form.query_one("#export-output", Input)
        assert output.value == str(trained / "exports" / "penguins-v2-bundle")
        await pilot.press("enter")
        status = screen.query_one("#export-status")
        await wait_for(pilot, lambda: "checking the model" in step_text(screen), what="step 1")
        assert status.display and status.query_one("#export-bar").total is None
        await pilot.press("e")  # one export at a time
        assert app.screen is screen
        assert any("Still exporting penguins@2" in n for n in notifications(app))
        exporter.go_on.set()
        target = trained / "exports" / "penguins-v2-bundle"
        await wait_for(pilot, lambda: not status.display, what="the export to end")
        assert json.loads((target / "manifest.json").read_text()) == {"model": "penguins@2"}
        done = [n for n in notifications(app) if n.startswith("exported penguins@2")]
        assert done == [f"exported penguins@2 as bundle to {target}\na note for the user"]


async def test_export_failure_is_shown_and_the_app_goes_on(trained, monkeypatch):
    exporter = SlowExporter(fail="the model uses an operator ONNX cannot express")
    exporter.go_on.set()
    use_exporter(monkeypatch, exporter)
    existing = trained / "exports" / "taken"
    existing.mkdir(parents=True)
    app = WorkbenchApp(Settings())
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_models(pilot)
        await pilot.press("e")
        form = await wait_for(pilot, lambda: isinstance(app.screen, ExportModal) and app.screen)
        form.query_one("#export-output", Input).value = str(existing)
        await pilot.press("enter")  # it exists: the form says so and stays open
        assert app.screen is form
        assert any("taken already exists: tick “replace”" in n for n in notifications(app))
        form.query_one("#export-output", Input).value = str(trained / "exports" / "fails")
        await pilot.press("enter")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, ErrorModal) and app.screen)
        assert "ONNX cannot express" in str(modal.query_one("#error-message", Static).content)
        assert not (trained / "exports" / "fails").exists()  # nothing left behind
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        assert not screen.query_one("#export-status").display
        await pilot.press("down")  # still alive and polling
        await wait_for(
            pilot, lambda: "penguins@1" in shown(screen.query_one("#model-info", Static))
        )


async def test_export_form_defaults_follow_the_format(trained):
    app = WorkbenchApp(Settings())
    async with app.run_test(size=SIZE) as pilot:
        await open_models(pilot)
        await pilot.press("e")
        form = await wait_for(pilot, lambda: isinstance(app.screen, ExportModal) and app.screen)
        output = form.query_one("#export-output", Input)
        zip_box = form.query_one("#export-zip", Checkbox)
        form.query_one("#export-fmt").value = "onnx"
        await wait_for(pilot, lambda: output.value.endswith("penguins-v2-onnx"))
        assert zip_box.disabled
        form.query_one("#export-fmt").value = "bundle"
        await wait_for(pilot, lambda: not zip_box.disabled)
        output.value = str(trained / "mine")  # typed by the user: kept
        form.query_one("#export-fmt").value = "mlflow"
        await pilot.pause(0.2)
        assert output.value == str(trained / "mine")
        await pilot.press("escape")
        assert isinstance(app.screen, ModelsScreen)


async def test_models_keys_are_remappable_and_in_the_help(trained, wb_home):
    (wb_home / "config.toml").write_text('[keys]\n"project.models" = "m"\n"models.export" = "x"\n')
    app = make_app(open_project="penguins")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ProjectScreen), what="the project")
        await pilot.press("m")
        screen = await wait_for(pilot, lambda: isinstance(app.screen, ModelsScreen) and app.screen)
        await wait_for(pilot, lambda: screen.query_one("#versions").row_count == 2)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        lines = plain(app.screen.query_one(Static)).splitlines()
        assert lines[0] == "Models of penguins keys"
        for key, words in (("p", "Promote"), ("x", "Export"), ("esc", "Back")):
            assert any(x.split()[:1] == [key] and words in x for x in lines), (key, lines)
        await pilot.press("escape")
        await pilot.press("e")  # the default key is replaced, not added to
        assert app.screen is screen
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportModal))
        assert isinstance(app.screen.query_one("#export", Button), Button)


async def test_palette_opens_the_models_and_promotes(trained):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.project_names == ["penguins"], what="the project list")
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), what="the palette")
        await pilot.press(*"models of peng")
        await wait_for(pilot, lambda: app.screen.query_one("CommandList").option_count > 0)
        first = app.screen.query_one("CommandList").get_option_at_index(0)
        assert "Models of penguins" in str(first.prompt)
        await pilot.press("enter")
        screen = await wait_for(pilot, lambda: isinstance(app.screen, ModelsScreen) and app.screen)
        await wait_for(pilot, lambda: screen.query_one("#versions").row_count == 2)
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), what="the palette")
        await pilot.press(*"promote selected")
        await wait_for(pilot, lambda: app.screen.query_one("CommandList").option_count > 0)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, PromoteModal), what="the gate")


# The real bundle exporter ---------------------------------------------------


async def test_export_of_a_bundle_writes_it(trained):
    from workbench.models.bundle import verify_bundle

    app = WorkbenchApp(Settings())
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_models(pilot)
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportModal))
        await pilot.press("enter")
        target = trained / "exports" / "penguins-v2-bundle"
        await wait_for(
            pilot,
            lambda: any(n.startswith("exported penguins@2") for n in notifications(app)),
            timeout=120,
            what="the bundle",
        )
        assert (target / "manifest.json").exists()
        assert verify_bundle(target)["ok"]
        assert not screen.query_one("#export-status").display


# Snapshot -------------------------------------------------------------------

T0 = 1_750_000_000.0
NOW = T0 + 7_200


def test_models_snapshot(trained, wb_home, monkeypatch, snap_compare):
    """Times, folder paths and the hashes of files whose bytes depend on library
    versions are pinned, so the picture is the same everywhere."""
    sql(wb_home, "UPDATE model_versions SET created_at = ? + version * 600", (T0,))
    sql(wb_home, "UPDATE promotions SET created_at = ? + id * 60", (T0,))
    monkeypatch.setattr(time, "time", lambda: NOW)
    real_overview = reads.models_overview

    def pinned_overview(name: str) -> dict[str, Any]:
        overview = real_overview(name)
        overview["versions"] = [
            dataclasses.replace(
                version,
                framework_version="4.6.0",
                model_sha256=f"{version.version}" * 64,
                schema_sha256="5" * 64,
                holdout_sha256="6" * 64,
            )
            for version in overview["versions"]
        ]
        for found in overview["datasets"].values():
            found[:] = [
                dataclasses.replace(
                    d, path="~/projects/penguins-lightgbm/data/" + Path(d.path).name
                )
                for d in found
            ]
        return overview

    monkeypatch.setattr(reads, "models_overview", pinned_overview)

    async def loaded(pilot):
        from test_tui_snapshots import settle

        await pilot.press("M")
        await settle(
            pilot,
            lambda: (
                isinstance(pilot.app.screen, ModelsScreen)
                and pilot.app.screen.query_one("#versions").row_count == 2
            ),
            "the two versions",
        )

    assert snap_compare(
        make_app(open_project="penguins"), terminal_size=(100, 30), run_before=loaded
    )
