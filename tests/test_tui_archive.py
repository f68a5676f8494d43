"""The archive forms of the TUI, from the command palette: "Export archive…"
writes the file in a worker with progress; "Import archive…" shows the dry
run's diff before the import can run, and asks for a missing project folder."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from textual.command import CommandPalette
from textual.widgets import Button, DataTable, Input, Label
from tui_support import plain, use_fixed_system_sampler, wait_for
from wbtest import REPO
from wbtest import wb_inprocess as wbi

from workbench.store import open_store
from workbench.tui.app import make_app
from workbench.tui.screens.archive_export import ArchiveExportModal
from workbench.tui.screens.archive_import import ArchiveImportModal

SIZE = (100, 40)


@pytest.fixture(autouse=True)
def fixed_sampler(monkeypatch: pytest.MonkeyPatch) -> None:
    use_fixed_system_sampler(monkeypatch)  # the app exits without waiting on its sampler


def _one_run_store(root: Path) -> Path:
    """A store under root/home with penguins and one finished, tagged run with
    metrics; returns the project's folder."""
    from workbench.store import metrics
    from workbench.store import runs as store_runs

    folder = root / "penguins"
    shutil.copytree(REPO / "sample_projects" / "penguins-lightgbm", folder)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", str(root / "home"))
        assert wbi("project", "add", str(folder)).returncode == 0
        store = open_store()
        try:
            now = time.time()
            run_id = store_runs.create(
                store,
                store.scalar("SELECT id FROM projects"),
                "lightgbm",
                event_message="run {id} made for the test",
                status="succeeded",
                started_at=now,
                ended_at=now + 1,
                exit_code=0,
            )
            with store.write() as conn:
                metrics.append_points(
                    conn, run_id, {"loss": [(i, now + i, 1.0 / (i + 1)) for i in range(20)]}
                )
        finally:
            store.close()
        assert wbi("run", "tag", "1", "baseline").returncode == 0
    return folder


@pytest.fixture(scope="module")
def moved_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An archive of that store, whose project folder is then gone (as on
    another machine)."""
    root = tmp_path_factory.mktemp("tui-archive")
    folder = _one_run_store(root)
    out = root / "moved.wbx"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", str(root / "home"))
        made = wbi("archive", "export", "penguins", "-o", str(out))
        assert made.returncode == 0, made.stderr
    shutil.rmtree(folder)
    return out


async def _palette(pilot, words: str, kind: type):
    app = pilot.app
    await pilot.press("ctrl+p")
    await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), what="the palette")
    await pilot.press(*words)
    await wait_for(
        pilot, lambda: app.screen.query_one("CommandList").option_count > 0, what="palette hits"
    )
    await pilot.press("enter")
    return await wait_for(pilot, lambda: isinstance(app.screen, kind) and app.screen, what="form")


def _rows(home: Path, sql: str) -> list[tuple]:
    if not (home / "workbench.db").exists():
        return []
    conn = sqlite3.connect(f"file:{home / 'workbench.db'}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def test_export_from_the_palette_writes_the_archive_with_progress(tmp_path, monkeypatch):
    _one_run_store(tmp_path)
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    from workbench.tui.screens import archive_export

    shown: list[tuple[str, bool]] = []
    original = archive_export.ArchiveExportModal._show_progress

    def record(self, what, done, total):
        shown.append((what, threading.current_thread() is threading.main_thread()))
        original(self, what, done, total)

    monkeypatch.setattr(archive_export.ArchiveExportModal, "_show_progress", record)
    out = tmp_path / "out" / "penguins.wbx"
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.project_names == ["penguins"], what="projects")
        form = await _palette(pilot, "export arch", ArchiveExportModal)
        assert form.query_one("#export-projects", Input).value == "penguins"
        assert form.query_one("#export-file", Input).value.endswith(".wbx")
        form.query_one("#export-file", Input).value = str(out)
        form.query_one("#export-projects", Input).value = "penguins nope"
        await pilot.press("ctrl+s")
        error = form.query_one("#export-error", Label)
        await wait_for(pilot, lambda: "no project named 'nope'" in plain(error), what="error")
        assert not out.exists() and form.query_one("#export", Button).disabled is False

        form.query_one("#export-projects", Input).value = "penguins"
        form.query_one("#export-to", Input).value = "laptop"
        await pilot.press("ctrl+s")
        status = form.query_one("#export-status", Label)
        await wait_for(pilot, lambda: "exported 1 runs" in plain(status), what="the export")
        assert str(out) in plain(status) and out.is_file()
        assert shown and all(on_main for _, on_main in shown)  # progress reached the loop
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ArchiveExportModal))
    shown_archive = wbi("archive", "show", str(out), "--json")
    assert shown_archive.returncode == 0 and '"destination": "laptop"' in shown_archive.stdout


async def test_import_shows_the_dry_run_before_it_imports(
    moved_archive, tmp_path, wb_home, monkeypatch
):
    from workbench.archive import importer

    open_store().close()
    threads: list[bool] = []
    original = importer.import_archive

    def record(*args, **kwargs):
        threads.append(threading.current_thread() is threading.main_thread())
        return original(*args, **kwargs)

    monkeypatch.setattr(importer, "import_archive", record)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        form = await _palette(pilot, "import arch", ArchiveImportModal)
        import_button = form.query_one("#import", Button)
        assert import_button.disabled
        form.query_one("#import-file", Input).value = str(moved_archive)
        await pilot.press("ctrl+s")  # no import before the check
        error = form.query_one("#import-error", Label)
        assert "check the archive first" in plain(error)

        await pilot.press("ctrl+r")
        table = form.query_one("#import-diff", DataTable)
        await wait_for(pilot, lambda: table.row_count > 0, what="the dry run's diff")
        assert [str(c) for c in table.get_row("runs")] == ["runs", "1", "0", "0"]
        assert [str(c) for c in table.get_row("tags")] == ["tags", "1", "0", "0"]
        assert "its folder" in plain(form.query_one("#import-notes", Label))
        assert not import_button.disabled
        assert _rows(wb_home, "SELECT id FROM runs") == []  # the check wrote nothing

        await pilot.press("ctrl+s")  # the folder is missing: asked for, nothing written
        await wait_for(pilot, lambda: "give the project folder" in plain(error), what="ask")
        assert _rows(wb_home, "SELECT id FROM runs") == []

        folder = tmp_path / "here" / "penguins"
        form.query_one("#import-folder", Input).value = str(folder)
        await wait_for(pilot, lambda: import_button.disabled, what="a stale check")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: not import_button.disabled, what="the new check")
        await pilot.press("ctrl+s")
        status = form.query_one("#import-status", Label)
        await wait_for(pilot, lambda: "imported" in plain(status), what="the import")
        assert threads and not any(threads)  # the work ran in worker threads
    assert _rows(wb_home, "SELECT name, path FROM projects") == [("penguins", str(folder))]
    assert _rows(wb_home, "SELECT tag FROM run_tags") == [("baseline",)]
    assert _rows(wb_home, "SELECT COUNT(*) FROM metric_points") == [(20,)]
