""""Import archive…" from the palette: the archive's file, where its project's
folder is here, the conflict rule; "Check" runs the dry run (in a thread
worker, with progress) and shows what would be new, identical and conflicting
per kind; only then can "Import" run the real import. Changing any field
asks for a new check first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, DataTable, Input, Label, ProgressBar, Select

from workbench.tui.screens.archive_progress import ArchiveProgress
from workbench.tui.screens.base import describe

CONFLICT_RULES = (
    ("skip: keep this store's copy", "skip"),
    ("overwrite: take the archive's", "overwrite"),
    ("rename: import it as another run", "rename"),
)


class ArchiveImportModal(ArchiveProgress, ModalScreen[None]):
    """The import form: check (a dry run) first, then import what was shown."""

    PROGRESS_ID = "import"
    # Focused as the form is mounted (not by a later focus() in on_mount), so
    # the keys typed right after the palette's Enter go into the file's field.
    AUTO_FOCUS = "#import-file"

    CSS_PATH = "archive_import.tcss"
    BINDINGS = [
        Binding("escape", "cancel", "Close", id="archive_import.cancel"),
        Binding("ctrl+r", "check", "Check (dry run)", id="archive_import.check"),
        Binding("ctrl+s", "run_import", "Import", id="archive_import.import"),
    ]

    def __init__(self, file: str = "") -> None:
        super().__init__()
        self.file = file
        self.working = False
        self.checked: Any = None  # the dry run's report, for the fields as they are

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="form-box"):
            yield Label("[b]Import archive[/b]  (ctrl+r checks, ctrl+s imports)")
            with Horizontal(classes="form-row"):
                yield Label("file", classes="form-label")
                yield Input(self.file, placeholder="the .wbx file", id="import-file")
            with Horizontal(classes="form-row"):
                yield Label("project folder", classes="form-label")
                yield Input(
                    placeholder="its folder here, if new and not where the archive says",
                    id="import-folder",
                )
            with Horizontal(classes="form-row"):
                yield Label("on conflict", classes="form-label")
                yield Select(CONFLICT_RULES, value="skip", allow_blank=False, id="import-conflict")
            with Horizontal(classes="form-row"):
                yield Label("aliases", classes="form-label")
                yield Checkbox("move them (not as proposals)", id="import-aliases")
            yield Label("", id="import-error", classes="form-error", markup=False)
            yield Label("", id="import-status", markup=False)
            yield ProgressBar(id="import-progress", show_eta=False)
            yield DataTable(id="import-diff", cursor_type="none", zebra_stripes=True)
            yield Label("", id="import-notes", markup=False)
            with Horizontal(id="form-buttons"):
                yield Button("Check", variant="primary", id="check")
                yield Button("Import", variant="warning", id="import", disabled=True)
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        table = self.query_one("#import-diff", DataTable)
        table.add_columns("kind", "new", "identical", "conflicting")

    # -- the fields ------------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "check":
            self.action_check()
        elif event.button.id == "import":
            self.action_run_import()
        else:
            self.action_cancel()

    def on_input_submitted(self) -> None:
        self.action_check()

    def on_input_changed(self) -> None:
        self._stale()

    def on_select_changed(self) -> None:
        self._stale()

    def on_checkbox_changed(self) -> None:
        self._stale()

    def _stale(self) -> None:
        """A field changed: what was checked no longer says what would happen."""
        if self.checked is not None and not self.working:
            self.checked = None
            self.query_one("#import", Button).disabled = True
            self.query_one("#import-status", Label).update("changed: check again before importing")

    def action_cancel(self) -> None:
        if self.working:  # an import is one transaction; it ends on its own
            self.notify("the archive is still being read", severity="warning")
            return
        self.dismiss(None)

    def _options(self) -> dict[str, Any] | None:
        file = self.query_one("#import-file", Input).value.strip()
        if not file:
            self._error("give the archive's file")
            return None
        folder = self.query_one("#import-folder", Input).value.strip()
        return {
            "source": Path(file).expanduser(),
            "project_dir": Path(folder).expanduser() if folder else None,
            "on_conflict": str(self.query_one("#import-conflict", Select).value),
            "accept_aliases": self.query_one("#import-aliases", Checkbox).value,
        }

    def _error(self, message: str) -> None:
        error = self.query_one("#import-error", Label)
        error.update(message)
        error.set_class(bool(message), "-visible")

    def _busy(self, working: bool, status: str) -> None:
        self.working = working
        self.query_one("#check", Button).disabled = working
        if working:
            self.query_one("#import", Button).disabled = True
        for field in (*self.query(Input), *self.query(Select), *self.query(Checkbox)):
            field.disabled = working
        self.query_one("#import-status", Label).update(status)
        progress = self.query_one("#import-progress", ProgressBar)
        progress.update(total=None, progress=0)
        progress.set_class(working, "-visible")

    # -- check, then import ----------------------------------------------------------

    def action_check(self) -> None:
        options = self._options()
        if options is None or self.working:
            return
        self._error("")
        self._busy(True, "checking the archive…")
        self._import(options, dry_run=True)

    def action_run_import(self) -> None:
        if self.working or self.checked is None:
            if self.checked is None:
                self._error("check the archive first (ctrl+r): the import shows what it will do")
            return
        options = self._options()
        if options is None:
            return
        if self.checked.missing_folders and options["project_dir"] is None:
            names = ", ".join(m["project"] for m in self.checked.missing_folders)
            self._error(f"{names}: its folder is not here; give the project folder")
            return
        self._error("")
        self._busy(True, "importing…")
        self._import(options, dry_run=False)

    @work(thread=True, exclusive=True, exit_on_error=False, group="archive")
    def _import(self, options: dict[str, Any], dry_run: bool) -> None:
        from workbench.archive.importer import import_archive
        from workbench.tui import reads

        try:
            report = import_archive(
                reads.store(), dry_run=dry_run, progress=self._progress, **options
            )
        except Exception as exc:
            self.app.call_from_thread(self._failed, describe(exc))
            return
        self.app.call_from_thread(self._show, report)

    def _failed(self, message: str) -> None:
        self._busy(False, "")
        self.checked = None
        self._error(message)

    def _show(self, report: Any) -> None:
        self._busy(False, "")
        table = self.query_one("#import-diff", DataTable)
        table.clear()
        for kind, c in report.counts.items():
            table.add_row(kind, c["new"], c["identical"], c["conflicting"], key=kind)
        notes = [f"signer: {report.signer}", f"metric points to add: {report.metric_points_added}"]
        for missing in report.missing_folders:
            notes.append(
                f"project {missing['project']}: its folder {missing['folder']} is not here;"
                " give the project folder above"
            )
        if report.wheels:
            notes.append(f"{len(report.wheels)} wheels for serving go to {report.wheels_dir}")
        if report.proposals:
            notes.append(f"{report.proposals} alias(es) arrive as proposals (see Models)")
        self.query_one("#import-notes", Label).update("\n".join(notes))
        status = self.query_one("#import-status", Label)
        if report.dry_run:
            self.checked = report
            self.query_one("#import", Button).disabled = False
            status.update("would import (nothing written yet); Import to go ahead")
            self.query_one("#import", Button).focus()
            return
        self.checked = None
        status.update(f"imported {report.file}")
        self.query_one("#cancel", Button).label = "Close"
        self.query_one("#cancel", Button).focus()
        self.notify(f"archive imported: {report.file}")
