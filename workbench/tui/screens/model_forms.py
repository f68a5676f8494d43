"""Dialogs of the Models screen: confirming what the promotion gate decided,
and the export form."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from workbench.core import formatting as fmt
from workbench.models.export import FORMATS


class PromoteModal(ModalScreen[str | None]):
    """The gate's dry-run decision for a version against the champion. Returns
    "promote", "force" (the gate said no, the user insists) or None."""

    # Enter confirms only what the gate agrees with (#promote is there only
    # then); forcing takes a Tab. Focused at compose: see StartRunModal.
    AUTO_FOCUS = "#promote, #cancel"
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="promote.cancel")]

    def __init__(self, decision: Any) -> None:
        super().__init__()
        self.decision = decision

    def compose(self) -> ComposeResult:
        d = self.decision
        mine, holder = d.challenger, d.champion
        if d.promoted:
            verdict = "[b green]the gate would promote it[/]"
        elif holder is not None and holder.id == mine.id:
            verdict = f"[b]it is already {d.alias}[/]"
        elif holder is not None:
            verdict = f"[b yellow]the gate would keep version {holder.version} as {d.alias}[/]"
        else:
            verdict = "[b yellow]the gate would not promote it[/]"
        lines = [verdict, ""]
        if d.metric:
            lines.append(f"{d.metric}  (margin {d.margin:g})")
        lines.append(f"  version {mine.version} (challenger)  {fmt.metric(d.challenger_score)}")
        if holder is not None and holder.id != mine.id:
            rescored = "  re-scored on the challenger's hold-out" if d.rescored else ""
            lines.append(
                f"  version {holder.version} (champion)    {fmt.metric(d.champion_score)}{rescored}"
            )
        lines += ["", escape(d.reason)]
        with VerticalScroll(id="form-box"):
            yield Label(f"[b]Promote {escape(mine.ref)} to {d.alias}?[/b]")
            yield Static("\n".join(lines), id="promote-decision")
            with Horizontal(id="form-buttons"):
                if d.promoted:
                    yield Button("Promote", variant="primary", id="promote")
                elif holder is not None and holder.id != mine.id:
                    yield Button("Force promote", variant="warning", id="force")
                yield Button("Cancel", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id if event.button.id in ("promote", "force") else None)

    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass
class ExportRequest:
    fmt: str
    output: Path
    force: bool


class ExportModal(ModalScreen[ExportRequest | None]):
    """Format, output path (a default per format under the project's folder),
    zip for a bundle, and whether to replace what is there."""

    AUTO_FOCUS = "#export-output"  # at compose: see StartRunModal
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="export.cancel")]

    def __init__(
        self, ref: str, default_output: Any, formats: list[str] | None = None
    ) -> None:
        super().__init__()
        self.ref = ref
        self.default_output = default_output  # format -> default path
        # Every format the project can use (plugins' too); the built-ins when not known.
        found = list(formats or FORMATS)
        self.formats = [f for f in FORMATS if f in found] + [f for f in found if f not in FORMATS]
        self._default = str(default_output(self.formats[0]))

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="form-box"):
            yield Label(f"[b]Export {escape(self.ref)}[/b]")
            # The output first: it is the field typed into, and has the focus.
            with Horizontal(classes="form-row"):
                yield Label("output", classes="form-label")
                yield Input(self._default, id="export-output")
            with Horizontal(classes="form-row"):
                yield Label("format", classes="form-label")
                yield Select(
                    [(f, f) for f in self.formats],
                    value=self.formats[0],
                    allow_blank=False,
                    id="export-fmt",
                )
            with Horizontal(classes="form-row"):
                yield Label("zip", classes="form-label")
                yield Checkbox("write one .zip file (bundle only)", id="export-zip")
            with Horizontal(classes="form-row"):
                yield Label("replace", classes="form-label")
                yield Checkbox("replace the output if it exists", id="export-force")
            with Horizontal(id="form-buttons"):
                yield Button("Export", variant="primary", id="export")
                yield Button("Cancel", id="cancel")

    def on_select_changed(self, event: Select.Changed) -> None:
        fmt_ = str(event.value)
        box = self.query_one("#export-output", Input)
        if box.value == self._default:  # the user has not typed a path of their own
            box.value = self._default = str(self.default_output(fmt_))
        zip_box = self.query_one("#export-zip", Checkbox)
        zip_box.disabled = fmt_ != "bundle"
        if zip_box.disabled:
            zip_box.value = False

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "export":
            self._submit()
        else:
            self.dismiss(None)

    def on_input_submitted(self) -> None:
        self._submit()

    def _submit(self) -> None:
        text = self.query_one("#export-output", Input).value.strip()
        if not text:
            self.notify("Give the folder to export to.", severity="warning")
            return
        output = Path(text).expanduser()
        if self.query_one("#export-zip", Checkbox).value and output.suffix.lower() != ".zip":
            output = output.with_name(output.name + ".zip")
        force = self.query_one("#export-force", Checkbox).value
        if output.exists() and not force:
            self.notify(
                f"{output} already exists: tick “replace” to overwrite it.", severity="warning"
            )
            return
        fmt_ = str(self.query_one("#export-fmt", Select).value)
        self.dismiss(ExportRequest(fmt=fmt_, output=output, force=force))

    def action_cancel(self) -> None:
        self.dismiss(None)
