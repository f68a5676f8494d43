"""`t` on a project's run: a small form for the run's tags and note."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, TextArea

from workbench.core.errors import UsageError
from workbench.runs.manage import check_note, check_tags


class RunNotesModal(ModalScreen[tuple[str, str] | None]):
    """Tags (space-separated) and a note, checked before the form closes;
    returns the (tags, note) texts to save, or None when cancelled."""

    CSS_PATH = "run_notes.tcss"
    AUTO_FOCUS = "#notes-tags"  # at compose: see StartRunModal
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="notes.cancel"),
        Binding("ctrl+s", "save", "Save", id="notes.save"),
    ]

    def __init__(self, run_id: int, tags: list[str] | tuple[str, ...], note: str | None) -> None:
        super().__init__()
        self.run_id = run_id
        self.tags = " ".join(tags)
        self.note = note or ""

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="form-box"):
            yield Label(f"[b]Run {self.run_id}: tags and note[/b]  (ctrl+s saves)")
            with Horizontal(classes="form-row"):
                yield Label("tags", classes="form-label")
                yield Input(self.tags, placeholder="baseline lr:0.1", id="notes-tags")
            with Horizontal(id="notes-note-row"):
                yield Label("note", classes="form-label")
                yield TextArea(self.note, id="notes-note", soft_wrap=True)
            yield Label("", id="notes-error", classes="form-error")
            with Horizontal(id="form-buttons"):
                yield Button("Save", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.dismiss(None)

    def on_input_submitted(self) -> None:
        self.action_save()

    def action_save(self) -> None:
        tags = self.query_one("#notes-tags", Input).value
        note = self.query_one("#notes-note", TextArea).text
        error = self.query_one("#notes-error", Label)
        try:
            check_tags(tags.split())
            check_note(note)
        except UsageError as exc:
            error.update(exc.message)
            error.add_class("-visible")
            return
        self.dismiss((tags, note))

    def action_cancel(self) -> None:
        self.dismiss(None)
