"""Home: projects, recent activity and the machine's CPU/RAM/GPU at a glance."""

from __future__ import annotations

import time
from dataclasses import replace

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Header, Label
from textual.worker import get_current_worker

from workbench.core import formatting as fmt
from workbench.store.dashboard import Activity
from workbench.tui import reads
from workbench.tui.screens.base import Fresh, LiveScreen, StoreWatch
from workbench.tui.widgets.footer import KeyFooter
from workbench.tui.widgets.synced_table import SyncedTable
from workbench.tui.widgets.system_strip import SystemStrip


AGE_STEP_SECONDS = 10  # the activity's ages under a minute, and its clock, move in these steps


class HomeScreen(LiveScreen):
    AUTO_FOCUS = "#projects"
    TITLE = "Home"
    FOOTER_NARROW = {"home.open", "home.demo", "home.init", "home.automation", "app.quit"}
    BINDINGS = [
        Binding("enter", "open_project", "Open", id="home.open"),
        Binding("d", "demo", "Demo", id="home.demo"),
        Binding("i", "init_project", "New project", id="home.init"),
        Binding("r", "refresh", "Refresh", id="home.refresh"),
        Binding("A", "automation", "Automation", id="home.automation"),
    ]

    def __init__(self) -> None:
        super().__init__()
        # Home reads when the store changed or a project's workbench.toml (or
        # folder) did; in full twice a minute anyway.
        self._watch = StoreWatch(full_read_seconds=30.0)
        self._paths: list[str] = []  # the projects' folders shown
        self._events: list[Activity] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="home-body"):
            with Vertical(id="projects-pane"):
                yield Label("Projects", classes="pane-title")
                yield Label("", id="home-empty", classes="empty-hint")
                yield SyncedTable(
                    [
                        ("name", "Project"),
                        ("runs", "Runs"),
                        ("last", "Last run"),
                        ("best", "Best"),
                        ("path", "Path"),
                    ],
                    id="projects",
                )
            with Vertical(id="activity-pane"):
                yield Label("Activity", classes="pane-title")
                yield SyncedTable([("when", "When"), ("what", "What")], id="activity")
        yield SystemStrip(id="system")
        yield KeyFooter()

    def on_mount(self) -> None:
        super().on_mount()
        self.run_worker(self._sample_system, thread=True, group="system", exit_on_error=False)

    def load(self) -> Fresh | str:
        fresh = self._watch.read(reads.config_stamps(self._paths), reads.home_snapshot)
        if isinstance(fresh, Fresh):
            paths = [p.path for p in fresh.data.projects]
            if paths != self._paths:  # the next poll compares the folders now shown
                fresh = replace(fresh, key=reads.config_stamps(paths))
        return fresh

    def show(self, fresh: Fresh | str) -> None:
        if not isinstance(fresh, Fresh):  # nothing new: only the activity's ages move on
            self._show_activity()
            return
        self._watch.shown(fresh)
        snapshot: reads.HomeSnapshot = fresh.data
        self._paths = [p.path for p in snapshot.projects]
        self.app.project_names = [p.name for p in snapshot.projects]
        rows = []
        for p in snapshot.projects:
            best = p.best
            rows.append(
                (
                    p.name,
                    (
                        p.name,
                        str(p.runs),
                        f"{p.last_run} {fmt.status(p.last_status)}" if p.last_run else "",
                        "[red]config error[/]"
                        if p.config_error
                        else (f"{best.metric} {fmt.metric(best.value)}" if best else ""),
                        p.path + (" [red](missing)[/]" if p.missing else ""),
                    ),
                )
            )
        self.query_one("#projects", SyncedTable).show(rows)
        hint = self.query_one("#home-empty", Label)
        if hint.has_class("-visible") != (not rows):  # not at every poll: a layout pass each
            hint.update(
                ""
                if rows
                else "No projects yet — press i to create one from a CSV, or d (or"
                " `workbench demo`) for the sample projects."
            )
            hint.set_class(not rows, "-visible")
        self._events = snapshot.events
        self._show_activity()

    def _show_activity(self) -> None:
        # The clock in steps of 10 s too: the ages of recent events move on
        # together, one redraw of the table per step, not one per event.
        now = time.time() // AGE_STEP_SECONDS * AGE_STEP_SECONDS
        self.query_one("#activity", SyncedTable).show(
            [(str(e.id), (_age(now - e.ts), e.message)) for e in self._events]
        )

    def _sample_system(self) -> None:
        # A loop in its own thread: psutil and NVML never run on the event loop.
        worker = get_current_worker()
        sampler = reads.SystemSampler()
        strip = self.query_one(SystemStrip)
        while not worker.is_cancelled:
            reading = sampler.sample()
            if worker.is_cancelled:
                break
            # Not while another screen covers Home: a hidden strip's redraw
            # still repaints the screen on top, every second.
            if not self._suspended:
                self.app.call_from_thread(strip.update_sample, reading)
            worker.cancelled_event.wait(1.0)

    @property
    def selected_project(self) -> str | None:
        return self.query_one("#projects", SyncedTable).selected_key

    def on_data_table_row_selected(self, event: SyncedTable.RowSelected) -> None:
        if event.data_table.id == "projects":
            self.action_open_project()

    def action_open_project(self) -> None:
        name = self.selected_project
        if name:
            self.app.open_project(name)

    def action_refresh(self) -> None:
        self._watch.forget()  # asked for: read, changed or not
        self.poll()

    def action_demo(self) -> None:
        self.app.confirm_demo()

    def action_init_project(self) -> None:
        self.app.action_init_project()

    def action_automation(self) -> None:
        self.app.open_automation()


def _age(seconds: float) -> str:
    """How long ago, in steps of 10 s under a minute: a table whose ages
    changed every second was redrawn every second while anything was recent."""
    if seconds < AGE_STEP_SECONDS:
        return "just now"
    if seconds < 60:
        return fmt.ago(seconds // AGE_STEP_SECONDS * AGE_STEP_SECONDS)
    return fmt.ago(seconds)
