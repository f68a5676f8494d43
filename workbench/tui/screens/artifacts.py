"""`f` on a project's run: the run's artifacts with their sizes, and a view
of the highlighted one (text, a CSV as a table, JSON indented); `o` opens it
in $PAGER."""

from __future__ import annotations

import os
import shlex
import subprocess

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Header, Label, TextArea

from workbench.core import formatting as fmt
from workbench.core import paths
from workbench.runs.artifact_view import Preview, preview
from workbench.store import runs as run_store
from workbench.store.runs import Artifact
from workbench.tui import reads
from workbench.tui.messages import Loaded
from workbench.tui.screens.base import WorkbenchScreen
from workbench.tui.widgets.footer import KeyFooter
from workbench.tui.widgets.synced_table import SyncedTable


class ArtifactsScreen(WorkbenchScreen):
    CSS_PATH = "artifacts.tcss"
    AUTO_FOCUS = "#artifact-list"
    BINDINGS = [
        Binding("o", "open_pager", "Open in $PAGER", id="artifacts.pager"),
        Binding("r", "reload", "Reload", id="artifacts.reload"),
        Binding("escape", "back", "Back", id="artifacts.back"),
    ]

    def __init__(self, run_id: int) -> None:
        super().__init__()
        self.run_id = run_id
        self.title = f"Run {run_id} artifacts"
        self.artifacts: dict[str, Artifact] = {}
        self.shown: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="artifacts-body"):
            yield SyncedTable([("name", "Artifact"), ("size", "Size")], id="artifact-list")
            with Vertical(id="artifact-view"):
                yield Label("", id="artifact-caption", markup=False)
                yield TextArea("", id="artifact-text", read_only=True, soft_wrap=False)
                yield DataTable(id="artifact-csv", zebra_stripes=True)
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#artifact-csv").display = False
        self.action_reload()

    def action_reload(self) -> None:
        def work() -> None:
            try:
                found = run_store.artifacts(reads.store(), self.run_id)
            except Exception as exc:  # shown, not raised into the void of a worker
                self.app.call_from_thread(self.app.show_error, "Cannot list the artifacts", exc)
                return
            self.post_message(Loaded("artifacts", found))

        self.run_worker(work, thread=True, group="artifacts", exit_on_error=False)

    def on_loaded(self, message: Loaded) -> None:
        if message.kind == "artifacts":
            self._list(message.data)
        elif message.kind == "preview":
            self._show(*message.data)

    def _list(self, found: list[Artifact]) -> None:
        self.artifacts = {a.name: a for a in found}
        table = self.query_one("#artifact-list", SyncedTable)
        # Names and cells are the run's own text, never markup.
        table.show([(a.name, (Text(a.name), fmt.size(a.size))) for a in found])
        caption = self.query_one("#artifact-caption", Label)
        if not found:
            caption.update(f"Run {self.run_id} logged no artifacts.")
        elif table.selected_key:
            self._preview(table.selected_key)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "artifact-list" and event.row_key.value:
            self._preview(event.row_key.value)

    def _preview(self, name: str) -> None:
        artifact = self.artifacts.get(name)
        if artifact is None or name == self.shown:
            return
        self.shown = name

        def work() -> None:
            try:
                found = preview(paths.artifact_file(artifact.sha256), name)
            except Exception as exc:  # preview() turns file errors into text already
                found = Preview("missing", f"cannot show {name}: {exc}")
            self.post_message(Loaded("preview", (name, found)))

        self.run_worker(work, thread=True, exclusive=True, group="preview", exit_on_error=False)

    def _show(self, name: str, found: Preview) -> None:
        if name != self.shown:
            return  # the cursor has moved on
        note = "  (the start of it)" if found.truncated else ""
        self.query_one("#artifact-caption", Label).update(
            f"{name}  {found.kind}  {fmt.size(found.size)}{note}"
        )
        text = self.query_one("#artifact-text", TextArea)
        table = self.query_one("#artifact-csv", DataTable)
        if found.kind == "csv":
            table.clear(columns=True)
            table.add_columns(*(Text(c) for c in found.columns))
            width = len(found.columns)
            table.add_rows(
                [[Text(c) for c in (row + [""] * width)[:width]] for row in found.rows]
            )
            text.display, table.display = False, True
        else:
            text.load_text(found.text)
            text.display, table.display = True, False

    def action_open_pager(self) -> None:
        artifact = self.artifacts.get(self.shown or "")
        if artifact is None:
            self.notify("No artifact selected.", severity="warning")
            return
        command = shlex.split(os.environ.get("PAGER") or "less")
        try:
            with self.app.suspend():
                subprocess.run([*command, str(paths.artifact_file(artifact.sha256))], check=False)
        except Exception as exc:  # no terminal to hand over (a test), no such pager
            self.notify(f"Cannot open a pager: {exc}", severity="warning")

    def action_back(self) -> None:
        self.app.pop_screen()
