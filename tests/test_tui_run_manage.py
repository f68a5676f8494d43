"""Run management on the project screen, through Textual's Pilot: tags and a
note in a small form (and the filter finds them), archive hides a run, delete
asks first with the space it frees, clone opens the start form prefilled."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from test_runs_e2e import script_project
from textual.widgets import Button, Input, Label, Static, TextArea
from tui_support import notifications, plain, row, row_keys, use_fixed_system_sampler, wait_for

from workbench.core import paths
from workbench.projects import add_project
from workbench.store import open_store
from workbench.store import run_notes
from workbench.store import runs as run_store
from workbench.tui.app import WorkbenchApp
from workbench.config.settings import Settings
from workbench.tui.screens.confirm import ConfirmModal
from workbench.tui.screens.forms import StartRunModal
from workbench.tui.screens.help import HelpScreen
from workbench.tui.screens.project import ProjectScreen
from workbench.tui.screens.run_notes import RunNotesModal
from workbench.tui.widgets.synced_table import SyncedTable


@pytest.fixture(autouse=True)
def fixed_system_sampler(monkeypatch: pytest.MonkeyPatch) -> None:
    use_fixed_system_sampler(monkeypatch)


@pytest.fixture
def runs(wb_home: Path, tmp_path: Path) -> tuple[int, int]:
    """Project `tidy` (params: epochs = 3) with two finished runs: the older
    one plain, the newer one with epochs=7 alpha=0.5, a 3000-byte log and a
    2048-byte artifact."""
    folder = script_project(tmp_path / "tidy", "print('hi')\n", name="tidy")
    store = open_store()
    try:
        project = add_project(store, folder)
        project_id = project.id if hasattr(project, "id") else project["id"]
        ids = []
        for params in ({"epochs": 3}, {"epochs": 7, "alpha": 0.5}):
            run_id = run_store.create(
                store,
                project_id,
                "script",
                event_message="run {id} made by the test",
                status="succeeded",
                params=params,
                started_at=time.time() - 5,
                ended_at=time.time(),
            )
            ids.append(run_id)
        newer = ids[1]
        paths.run_dir(newer).mkdir(parents=True)
        paths.run_log(newer).write_bytes(b"l" * 3000)
        content = b"a" * 2048
        sha = hashlib.sha256(content).hexdigest()
        paths.artifact_file(sha).parent.mkdir(parents=True)
        paths.artifact_file(sha).write_bytes(content)
        with store.write() as conn:
            run_store.put_artifacts(conn, [(newer, "weights.bin", sha, 2048, None, time.time())])
    finally:
        store.close()
    return ids[0], ids[1]


async def opened(pilot) -> tuple[ProjectScreen, SyncedTable]:
    app = pilot.app
    app.open_project("tidy")
    project = await wait_for(
        pilot, lambda: isinstance(app.screen, ProjectScreen) and app.screen, what="project"
    )
    table = await wait_for(pilot, lambda: project.query_one("#runs", SyncedTable), what="table")
    await wait_for(pilot, lambda: len(row_keys(table)) == 2, what="the runs")
    return project, table


def stored_notes(run_id: int) -> run_notes.RunNotes:
    store = open_store()
    try:
        return run_notes.notes_of(store, [run_id])[run_id]
    finally:
        store.close()


async def test_tags_and_note_are_edited_in_a_form_and_the_filter_finds_them(runs):
    older, newer = runs
    app = WorkbenchApp(Settings())
    async with app.run_test(size=(120, 40)) as pilot:
        project, table = await opened(pilot)
        assert table.selected_key == str(newer)
        await pilot.press("t")
        form = await wait_for(pilot, lambda: isinstance(app.screen, RunNotesModal) and app.screen)
        assert form.query_one("#notes-tags", Input).has_focus
        await pilot.press(*"baseline wide")
        form.query_one("#notes-note", TextArea).text = "deeper trees overfit"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is project, what="the form closed")
        await wait_for(
            pilot, lambda: stored_notes(newer).tags == ("baseline", "wide"), what="tags saved"
        )
        assert stored_notes(newer).note == "deeper trees overfit"
        await wait_for(
            pilot, lambda: row(table, str(newer))[7] == "baseline wide", what="the tags column"
        )

        await pilot.press("slash", *"overfit")  # a word of the note only
        await wait_for(pilot, lambda: row_keys(table) == [str(newer)], what="filtered by note")
        box = project.query_one("#filter", Input)
        box.value = "wide"
        await wait_for(pilot, lambda: row_keys(table) == [str(newer)], what="filtered by tag")
        box.value = "nothing-like-it"
        await wait_for(pilot, lambda: row_keys(table) == [], what="nothing matches")
        box.value = ""
        await wait_for(pilot, lambda: len(row_keys(table)) == 2, what="both again")

        table.focus()
        await pilot.press("t")  # a bad tag is named in the form, which stays open
        form = await wait_for(pilot, lambda: isinstance(app.screen, RunNotesModal) and app.screen)
        assert form.query_one("#notes-tags", Input).value == "baseline wide"
        assert form.query_one("#notes-note", TextArea).text == "deeper trees overfit"
        form.query_one("#notes-tags", Input).value = "good ../bad"
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        assert app.screen is form
        assert "not a tag: '../bad'" in plain(form.query_one("#notes-error", Label))
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is project)
        assert stored_notes(newer).tags == ("baseline", "wide")


async def test_archive_hides_a_run_until_shown_and_unarchived(runs):
    older, newer = runs
    app = WorkbenchApp(Settings())
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        project, table = await opened(pilot)
        await pilot.press("a")
        await wait_for(pilot, lambda: row_keys(table) == [str(older)], what="the run hidden")
        assert stored_notes(newer).archived
        assert any(f"run {newer} archived" in n for n in notifications(app))

        await pilot.press("H")
        await wait_for(pilot, lambda: len(row_keys(table)) == 2, what="archived runs shown")
        assert row(table, str(newer))[7].startswith("(archived)")
        table.move_cursor(row=row_keys(table).index(str(newer)))
        await pilot.press("a")
        await wait_for(pilot, lambda: not stored_notes(newer).archived, what="unarchived")
        await wait_for(pilot, lambda: row(table, str(newer))[7] == "", what="marker gone")

        await pilot.press("question_mark")  # help lists the new keys by their ids
        shown = await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen) and app.screen)
        text = plain(shown.query_one(Static))
        for verb in ("notes", "archive", "archived", "delete", "clone", "artifacts"):
            assert f"project.{verb}" in text, text


async def test_delete_asks_with_the_space_freed_and_removes_the_files(runs):
    older, newer = runs
    app = WorkbenchApp(Settings())
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        project, table = await opened(pilot)
        await pilot.press("delete")
        ask = await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal) and app.screen)
        assert "Frees 4.9 KiB" in plain(ask.query_one("#confirm-title", Label))
        assert "1 artifact file(s)" in str(ask.query_one("#confirm-message", Static).visual)
        await pilot.press("escape")  # no: everything stays
        await wait_for(pilot, lambda: app.screen is project)
        assert paths.run_log(newer).exists()

        await pilot.press("delete")
        ask = await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal) and app.screen)
        await pilot.click("#confirm")
        await wait_for(pilot, lambda: row_keys(table) == [str(older)], what="the run gone")
        assert not paths.run_dir(newer).exists()
        store = open_store()
        try:
            assert run_store.get(store, newer) is None
        finally:
            store.close()
        freed = [n for n in notifications(app) if "deleted" in n]
        assert freed and "4.9 KiB freed" in freed[-1], notifications(app)


async def test_clone_opens_the_start_form_with_the_runs_params(runs):
    older, newer = runs
    app = WorkbenchApp(Settings())
    async with app.run_test(size=(80, 24)) as pilot:
        project, table = await opened(pilot)
        await pilot.press("C")
        form = await wait_for(pilot, lambda: isinstance(app.screen, StartRunModal) and app.screen)
        assert form.heading == f"Clone run {newer} of tidy"
        assert form.query_one("#param-epochs", Input).value == "7"
        assert form.query_one("#extra", Input).value == "alpha=0.5"
        await pilot.press("escape")  # cancelled: no run is started
        await wait_for(pilot, lambda: app.screen is project)
        assert len(row_keys(table)) == 2

        # The tags form fits 80x24 too, its first field focused.
        await pilot.press("t")
        form = await wait_for(pilot, lambda: isinstance(app.screen, RunNotesModal) and app.screen)
        await wait_for(pilot, lambda: form.query_one("#notes-tags", Input).has_focus)
        for button in form.query(Button):
            region = button.region
            assert region.height > 0 and region.bottom <= 24 and region.right <= 80, region


# --- the artifacts browser -------------------------------------------------------------

ARTIFACTS = {
    "notes.txt": b"first line\nsecond line\n",
    "predictions.csv": b"id,label,score\n1,yes,0.9\n2,no,0.2\n",
    "metrics.json": b'{"accuracy": 0.91, "classes": ["no", "yes"]}',
    "weights.bin": b"\x00\x01\x02" * 100,  # replaces the 2048-byte one
    "[/b]odd.csv": b"[/],[red]\n[b]1,2\n",  # markup in a name and in cells is text
}


def log_artifacts(run_id: int) -> None:
    store = open_store()
    try:
        rows = []
        for name, content in ARTIFACTS.items():
            sha = hashlib.sha256(content).hexdigest()
            paths.artifact_file(sha).parent.mkdir(parents=True, exist_ok=True)
            paths.artifact_file(sha).write_bytes(content)
            rows.append((run_id, name, sha, len(content), None, time.time()))
        with store.write() as conn:
            run_store.put_artifacts(conn, rows)
    finally:
        store.close()


async def test_artifacts_browser_lists_sizes_and_shows_text_csv_and_json(runs):
    from textual.widgets import DataTable

    from workbench.tui.screens.artifacts import ArtifactsScreen

    older, newer = runs
    log_artifacts(newer)
    app = WorkbenchApp(Settings())
    async with app.run_test(size=(120, 40)) as pilot:
        project, table = await opened(pilot)
        await pilot.press("f")
        screen = await wait_for(
            pilot, lambda: isinstance(app.screen, ArtifactsScreen) and app.screen, what="screen"
        )
        listed = await wait_for(pilot, lambda: screen.query_one("#artifact-list", SyncedTable))
        await wait_for(pilot, lambda: len(row_keys(listed)) == 5, what="the artifacts")
        assert row(listed, "weights.bin") == ["weights.bin", "300 B"]
        caption = screen.query_one("#artifact-caption", Label)
        text = screen.query_one("#artifact-text", TextArea)
        csv_table = screen.query_one("#artifact-csv", DataTable)

        async def highlight(name: str, kind: str) -> None:
            listed.move_cursor(row=row_keys(listed).index(name))
            await wait_for(pilot, lambda: plain(caption).startswith(f"{name}  {kind}"), what=name)

        await highlight("notes.txt", "text")
        assert text.text == "first line\nsecond line\n" and not csv_table.display
        await highlight("predictions.csv", "csv")
        assert csv_table.display and not text.display
        assert [str(c.label) for c in csv_table.columns.values()] == ["id", "label", "score"]
        assert csv_table.row_count == 2
        assert [str(c) for c in csv_table.get_row_at(0)] == ["1", "yes", "0.9"]
        await highlight("metrics.json", "json")
        assert '"accuracy": 0.91' in text.text and text.display
        await highlight("[/b]odd.csv", "csv")
        assert [str(c.label) for c in csv_table.columns.values()] == ["[/]", "[red]"]
        assert [str(c) for c in csv_table.get_row_at(0)] == ["[b]1", "2"]
        await highlight("weights.bin", "binary")
        assert "binary file, 300 bytes" in text.text
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is project)

