"""Automation: the watcher (start it detached, stop it), the latest pipelines
with the steps of the selected one, and the timeline of automation events;
of every project, or of one when opened from its project screen."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Header, Label, Static

from workbench.core import formatting as fmt
from workbench.automation.daemon import HEARTBEAT
from workbench.store.dashboard import PipelineRow
from workbench.tui import reads
from workbench.tui.screens.base import LiveScreen
from workbench.tui.screens.confirm import ConfirmModal
from workbench.tui.widgets.footer import KeyFooter
from workbench.tui.widgets.synced_table import SyncedTable

STEP_STYLES = {
    "ok": "green",
    "alert": "yellow",
    "kept": "yellow",
    "rejected": "red",
    "failed": "red",
    "skipped": "dim",
    "running": "cyan",
}
STATE_STYLES = {"pending": "dim", "running": "cyan", "done": "green", "failed": "red"}
# `workbench pipeline` exit codes: promoted/nothing to do, rejected, kept, failed
EXIT_STYLES = {0: "green", 1: "red", 3: "yellow", 4: "red"}
KIND_STYLES = {
    "notify.model.promoted": "b green",
    "model.promoted": "green",
    "notify.data.rejected": "b red",
    "data.rejected": "red",
    "notify.data.drift": "b yellow",
    "data.alert": "yellow",
    "model.kept": "yellow",
    "pipeline.failed": "red",
    "notify.failed": "red",
}
FOLDERS_SHOWN = 4


class AutomationScreen(LiveScreen):
    POLL_SECONDS = 2.0
    AUTO_FOCUS = "#pipelines"
    BINDINGS = [
        Binding("s", "start_watcher", "Start watcher", id="automation.start"),
        Binding("x", "stop_watcher", "Stop watcher", id="automation.stop"),
        Binding("enter", "open_run", "Open run", id="automation.open"),
        Binding("r", "refresh", "Refresh", id="automation.refresh"),
        Binding("escape", "app.pop_screen", "Back", id="automation.back"),
    ]

    def __init__(self, project: str | None = None) -> None:
        super().__init__()
        self.project = project
        self.title = f"Automation of {project}" if project else "Automation"
        self.snapshot: reads.AutomationSnapshot | None = None
        self.busy: str | None = None  # "starting" or "stopping" the watcher

    def compose(self) -> ComposeResult:
        # One project's screen has no use for a project column.
        project = [] if self.project else [("project", "Project")]
        yield Header()
        yield Static("", id="watcher-status")
        yield Label("Pipelines", classes="pane-title")
        yield SyncedTable(
            [
                ("id", "ID"),
                *project,
                ("trigger", "Trigger"),
                ("files", "Files"),
                ("state", "State"),
                ("outcome", "Outcome"),
                ("exit", "Exit"),
                ("created", "Created"),
            ],
            id="pipelines",
        )
        yield Label("Steps", classes="pane-title", id="steps-title")
        yield SyncedTable(
            [
                ("step", "Step"),
                ("file", "File"),
                ("status", "Status"),
                ("seconds", "Seconds"),
                ("summary", "Summary"),
            ],
            id="steps",
        )
        yield Label("Events", classes="pane-title")
        yield SyncedTable(
            [("when", "When"), ("kind", "Kind"), *project, ("message", "Message")],
            id="timeline",
        )
        yield KeyFooter()

    def load(self) -> reads.AutomationSnapshot:
        return reads.automation_overview(self.project)

    # Showing --------------------------------------------------------------

    def show(self, snapshot: reads.AutomationSnapshot) -> None:
        self.snapshot = snapshot
        now = time.time()
        self.query_one("#watcher-status", Static).update(
            _watcher(snapshot.watcher, self.project, self.busy, now)
        )
        _follow(
            self.query_one("#pipelines", SyncedTable),
            [
                (str(p.id), _pipeline_cells(p, now, self.project is None))
                for p in snapshot.pipelines
            ],
        )
        _follow(
            self.query_one("#timeline", SyncedTable),
            [
                (
                    str(e.id),
                    (
                        fmt.ago(max(0.0, now - e.ts)),
                        _styled(e.kind, KIND_STYLES.get(e.kind)),
                        *([] if self.project else [escape(e.project or "")]),
                        escape(e.message),
                    ),
                )
                for e in snapshot.events
            ],
        )
        self._show_steps()

    def on_data_table_row_highlighted(self, event: SyncedTable.RowHighlighted) -> None:
        if event.data_table.id == "pipelines":
            self._show_steps()

    def _show_steps(self) -> None:
        pipeline = self.selected_pipeline
        title = self.query_one("#steps-title", Label)
        if pipeline is None or self.snapshot is None:
            title.update(
                "Steps: no pipeline yet (the watcher starts one per batch of new data files)"
                if self.snapshot is not None
                else "Steps"
            )
            self.query_one("#steps", SyncedTable).show([])
            return
        outcome = pipeline.outcome or pipeline.state
        error = f"  [red]{escape(pipeline.error)}[/]" if pipeline.error else ""
        title.update(
            f"Steps of pipeline {pipeline.id} ({escape(pipeline.project)},"
            f" {escape(_files(pipeline.files))}): {escape(outcome)}{error}"
        )
        now = time.time()
        self.query_one("#steps", SyncedTable).show(
            [
                (
                    f"{s.step}|{s.file}",
                    (
                        s.step,
                        escape(Path(s.file).name if s.file else ""),
                        _styled(s.status, STEP_STYLES.get(s.status)),
                        fmt.seconds((s.ended_at or now) - s.started_at),
                        escape(s.summary or ""),
                    ),
                )
                for s in self.snapshot.steps.get(pipeline.id, [])
            ]
        )

    @property
    def selected_pipeline(self) -> PipelineRow | None:
        key = self.query_one("#pipelines", SyncedTable).selected_key
        found = self.snapshot.pipelines if self.snapshot else []
        return next((p for p in found if str(p.id) == key), None)

    @property
    def watcher(self) -> dict[str, Any] | None:
        return self.snapshot.watcher if self.snapshot else None

    # Actions --------------------------------------------------------------

    def action_refresh(self) -> None:
        self.poll()

    def on_data_table_row_selected(self, event: SyncedTable.RowSelected) -> None:
        self.action_open_run()

    def action_open_run(self) -> None:
        """The training run of the selected pipeline, step or event."""
        focused = self.focused.id if self.focused else None
        run_id = None
        if focused == "timeline":
            key = self.query_one("#timeline", SyncedTable).selected_key
            found = self.snapshot.events if self.snapshot else []
            run_id = next((e.run_id for e in found if str(e.id) == key), None)
        elif self.selected_pipeline is not None and self.snapshot is not None:
            steps = self.snapshot.steps.get(self.selected_pipeline.id, [])
            run_id = next((s.run for s in steps if s.run is not None), None)
        if run_id is None:
            self.notify("No training run here: only a retrain step has one.", timeout=3)
            return
        self.app.open_run(int(run_id))

    def action_start_watcher(self) -> None:
        watcher = self.watcher
        if self.busy:
            self.notify(f"Already {self.busy} the watcher.", severity="warning")
            return
        if watcher and watcher["running"]:
            self.notify(f"The watcher is already running (pid {watcher['pid']}).")
            return
        self.notify("starting the watcher in the background…", timeout=3)
        self._on_watcher("starting", "Cannot start the watcher", reads.start_watcher, self._started)

    def _started(self, status: dict[str, Any]) -> None:
        folders = len(status.get("folders") or [])
        self.notify(
            f"watcher started (pid {status['pid']}), watching {folders} folder"
            f"{'s' if folders != 1 else ''}; it keeps running after you quit"
        )

    def action_stop_watcher(self) -> None:
        watcher = self.watcher
        if self.busy:
            self.notify(f"Already {self.busy} the watcher.", severity="warning")
            return
        if watcher is not None and not watcher["running"]:
            self.notify("No watcher is running.", severity="warning")
            return
        pid = f" (pid {watcher['pid']})" if watcher and watcher["pid"] else ""

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            self._on_watcher(
                "stopping", "Cannot stop the watcher", reads.stop_watcher, self._stopped
            )

        self.app.push_screen(
            ConfirmModal(
                f"Stop the watcher{pid}?",
                "New files in the watched folders wait until a watcher runs again; "
                "a pipeline stopped half-way resumes then.",
                confirm="Stop watcher",
            ),
            answered,
        )

    def _stopped(self, result: dict[str, Any]) -> None:
        if not result["was_running"]:
            self.notify("No watcher was running.", severity="warning")
        elif result["killed"]:
            self.notify(f"watcher {result['pid']} did not stop in time; killed it", timeout=6)
        else:
            self.notify(f"watcher {result['pid']} stopped")

    def _on_watcher(
        self, what: str, title: str, fn: Callable[[], Any], then: Callable[[Any], None]
    ) -> None:
        """Start or stop the watcher in a worker; the pane says so meanwhile,
        and stops saying so however it ends."""

        def work() -> Any:
            try:
                return fn()
            finally:
                self.app.call_from_thread(self._set_busy, None)

        self._set_busy(what)
        self.in_background(title, work, then)

    def _set_busy(self, what: str | None) -> None:
        self.busy = what
        if not self.is_attached:
            return
        if self.watcher is not None:
            self.query_one("#watcher-status", Static).update(
                _watcher(self.watcher, self.project, what, time.time())
            )
        self.poll()


# Rendering ------------------------------------------------------------------


def _follow(table: SyncedTable, rows: list[tuple[str, tuple[str, ...]]]) -> None:
    """Show newest-first rows; a cursor on the top row stays on the top row, so
    new pipelines and events come into view (and the newest pipeline's steps)
    unless the user has moved down to look at an older one."""
    at_top = table.cursor_row == 0
    table.show(rows)
    if at_top and table.row_count and table.cursor_row != 0:
        table.move_cursor(row=0)


def _styled(text: str, style: str | None) -> str:
    return f"[{style}]{escape(text)}[/]" if style else escape(text)


def _files(files: Sequence[str]) -> str:
    if len(files) == 1:
        return Path(files[0]).name
    return f"{len(files)} files"


def _pipeline_cells(p: PipelineRow, now: float, with_project: bool) -> tuple[str, ...]:
    code = p.exit_code
    return (
        str(p.id),
        *([escape(p.project)] if with_project else []),
        p.trigger,
        escape(_files(p.files)),
        _styled(p.state, STATE_STYLES.get(p.state)),
        _styled(p.outcome or "", None if code is None else EXIT_STYLES.get(code)),
        "" if code is None else _styled(str(code), EXIT_STYLES.get(code)),
        fmt.ago(max(0.0, now - p.created_at)),
    )


def _clock(ts: float, now: float) -> str:
    when = datetime.fromtimestamp(ts)
    today = when.date() == datetime.fromtimestamp(now).date()
    clock = f"{when:%H:%M:%S}" if today else f"{when:%Y-%m-%d %H:%M}"
    return f"{clock} ({fmt.ago(max(0.0, now - ts))})"


def _watcher(doc: dict[str, Any], project: str | None, busy: str | None, now: float) -> str:
    """The watcher pane: whether it runs, since when, what it watches and how."""
    head = "[b]Watcher[/b]  "
    if busy:
        return head + f"[yellow]◌ {busy}…[/]"
    if not doc["running"]:
        return head + (
            "[dim]○ stopped[/]  once started it runs the pipeline on each new data file,"
            " and outlives this app"
        )
    state = "[yellow]◌ starting[/]" if doc.get("starting") else "[green]● running[/]"
    parts = [f"{state}  pid {doc['pid']}"]
    if doc["since"]:
        parts.append(f"since {_clock(doc['since'], now)}")
    if doc["heartbeat"]:
        age = max(0.0, now - doc["heartbeat"])
        beat = f"heartbeat {fmt.ago(age)}"
        parts.append(f"[yellow]{beat}[/]" if age > 2 * HEARTBEAT + 5 else beat)
    if project and doc["projects"] and project not in doc["projects"]:
        parts.append(f"[yellow]not watching {escape(project)}[/]")
    lines = [head + "  ".join(parts)]
    folders = doc["folders"]
    shown = [f for f in folders if not project or f["project"] == project] or folders
    width = max((len(f["project"]) for f in shown), default=0)
    for f in shown[:FOLDERS_SHOWN]:
        mode = "[green]inotify[/]" if f["mode"] == "inotify" else "[yellow]polling[/]"
        why = f" [dim]({escape(f['reason'])})[/]" if f.get("reason") else ""
        lines.append(f"  {escape(f['project']):<{width}}  {mode}  {escape(f['path'])}{why}")
    if len(shown) > FOLDERS_SHOWN:
        lines.append(f"  [dim]and {len(shown) - FOLDERS_SHOWN} more folders[/]")
    event = doc.get("last_event")
    if event:
        ago = fmt.ago(max(0.0, now - event["ts"]))
        lines.append(f"  [dim]last event {ago}:[/] {escape(event['message'])}")
    return "\n".join(lines)
