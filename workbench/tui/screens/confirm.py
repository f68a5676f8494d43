"""A yes/no question before an action that cannot be taken back from here."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static


class ConfirmModal(ModalScreen[bool]):
    """Returns True when the user confirms; Escape or Cancel return False."""

    AUTO_FOCUS = "#confirm"  # at compose: see StartRunModal
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="confirm.cancel")]

    def __init__(self, title: str, message: str, confirm: str = "OK") -> None:
        super().__init__()
        self.title_text = title
        self.message = message
        self.confirm_label = confirm

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="form-box"):
            yield Label(self.title_text, id="confirm-title")
            yield Static(self.message, id="confirm-message", markup=False)
            with Horizontal(id="form-buttons"):
                yield Button(self.confirm_label, variant="warning", id="confirm")
                yield Button("Cancel", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm")

    def action_cancel(self) -> None:
        self.dismiss(False)
