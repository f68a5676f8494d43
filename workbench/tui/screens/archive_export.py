""""Export archive…" from the palette: a small form for `archive export` (file,
projects, --since, --to, --include), the export in a thread worker with its
progress on a bar, the result in the form."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, ProgressBar

from workbench.tui.screens.archive_progress import ArchiveProgress
from workbench.tui.screens.base import describe


def default_file(projects: list[str]) -> str:
    """Where the form proposes to write: ./NAME-YYYYMMDD.wbx."""
    name = projects[0] if len(projects) == 1 else "projects"
    return str(Path.cwd() / f"{name}-{time.strftime('%Y%m%d')}.wbx")


class ArchiveExportModal(ArchiveProgress, ModalScreen[None]):
    """The export form; it stays open after the export to show what was written."""

    PROGRESS_ID = "export"
    # Focused as the form is mounted, before the next key is routed: the keys
    # typed right after the palette's Enter go into the file's field (a focus()
    # in on_mount comes later, and the form's box takes them meanwhile).
    AUTO_FOCUS = "#export-file"

    CSS_PATH = "archive_export.tcss"
    BINDINGS = [
        Binding("escape", "cancel", "Close", id="archive_export.cancel"),
        Binding("ctrl+s", "export", "Export", id="archive_export.export"),
    ]

    def __init__(self, projects: list[str]) -> None:
        super().__init__()
        self.projects = projects
        self.working = False

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="form-box"):
            yield Label("[b]Export archive[/b]  (ctrl+s exports)")
            for label, field, value, hint in (
                ("file", "file", default_file(self.projects), "the .wbx file to write"),
                ("projects", "projects", " ".join(self.projects), "names, separated by spaces"),
                ("since", "since", "", "last, a date (2026-01-31) or a watermark; empty: all"),
                ("to", "to", "", "the destination's name (for --since last)"),
                ("include", "include", "artifacts,models", "artifacts,models,datasets,wheels"),
            ):
                with Horizontal(classes="form-row"):
                    yield Label(label, classes="form-label")
                    yield Input(value, placeholder=hint, id=f"export-{field}")
            yield Label("", id="export-error", classes="form-error", markup=False)
            yield Label("", id="export-status", markup=False)
            yield ProgressBar(id="export-progress", show_eta=False)
            with Horizontal(id="form-buttons"):
                yield Button("Export", variant="primary", id="export")
                yield Button("Cancel", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "export":
            self.action_export()
        else:
            self.action_cancel()

    def on_input_submitted(self) -> None:
        self.action_export()

    def action_cancel(self) -> None:
        if self.working:  # the export finishes (or fails) on its own; the file is whole or absent
            self.notify("the export is still running", severity="warning")
            return
        self.dismiss(None)

    def _value(self, field: str) -> str:
        return self.query_one(f"#export-{field}", Input).value.strip()

    def _error(self, message: str) -> None:
        error = self.query_one("#export-error", Label)
        error.update(message)
        error.set_class(bool(message), "-visible")

    def action_export(self) -> None:
        if self.working:
            return
        file, projects = self._value("file"), self._value("projects").split()
        if not file or not projects:
            self._error("give the file to write and at least one project")
            return
        self._error("")
        self._busy(True, "exporting…")
        self._export(
            Path(file).expanduser(),
            projects,
            self._value("since") or None,
            self._value("to") or None,
            self._value("include") or None,
        )

    def _busy(self, working: bool, status: str) -> None:
        self.working = working
        self.query_one("#export", Button).disabled = working
        for field in self.query(Input):
            field.disabled = working
        self.query_one("#export-status", Label).update(status)
        self.query_one("#export-progress", ProgressBar).set_class(working, "-visible")

    @work(thread=True, exclusive=True, exit_on_error=False, group="archive")
    def _export(
        self, out: Path, projects: list[str], since: str | None, to: str | None, include: str | None
    ) -> None:
        from workbench.archive.export import export_archive
        from workbench.tui import reads

        try:
            made = export_archive(
                reads.store(),
                projects,
                out,
                since=since,
                to=to,
                include=include,
                progress=self._progress,
            )
        except Exception as exc:
            self.app.call_from_thread(self._failed, describe(exc))
            return
        self.app.call_from_thread(self._done, made)

    def _failed(self, message: str) -> None:
        self._busy(False, "")
        self._error(message)

    def _done(self, made: Any) -> None:
        c = made.counts
        self._busy(False, "")
        self.query_one("#export-status", Label).update(
            f"exported {c['runs']} runs, {c['metric_points']} metric points,"
            f" {c['model_versions']} model versions and {c['blobs']} files"
            f" ({made.bytes / (1 << 20):.1f} MB) to {made.path}"
        )
        self.query_one("#export", Button).disabled = True
        self.query_one("#cancel", Button).label = "Close"
        self.query_one("#cancel", Button).focus()
        self.notify(f"archive written: {made.path}")
