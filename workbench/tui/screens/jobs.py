"""`J`: the store's cluster jobs (Slurm) that are queued or running, with
Slurm's state, its reason for a pending job, and the node of a running one."""

from __future__ import annotations

import time

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Header, Label

from workbench.core import formatting as fmt
from workbench.store.jobs import QueueRow
from workbench.tui import reads
from workbench.tui.screens.base import LiveScreen
from workbench.tui.widgets.footer import KeyFooter
from workbench.tui.widgets.synced_table import SyncedTable


class JobsScreen(LiveScreen):
    AUTO_FOCUS = "#jobs"
    TITLE = "Jobs"
    POLL_SECONDS = 2.0  # Slurm is asked at most this often anyway
    BINDINGS = [
        Binding("enter", "open_run", "Open run", id="jobs.open"),
        Binding("x", "stop_run", "Cancel job", id="jobs.stop"),
        Binding("r", "refresh", "Refresh", id="jobs.refresh"),
        Binding("escape", "back", "Back", id="jobs.back"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label("Cluster jobs, queued and running", classes="pane-title")
        yield Label("", id="jobs-empty", classes="empty-hint")
        yield SyncedTable(
            [
                ("run", "Run"),
                ("project", "Project"),
                ("status", "Status"),
                ("job", "Job"),
                ("state", "Slurm state"),
                ("where", "Node / reason"),
                ("age", "Submitted"),
            ],
            id="jobs",
        )
        yield KeyFooter()

    def load(self) -> list[QueueRow]:
        return reads.job_queue()

    def show(self, jobs: list[QueueRow]) -> None:
        now = time.time()
        self._status = {j.run_id: j.status.value for j in jobs}
        rows = [
            (
                str(j.run_id),
                (
                    str(j.run_id),
                    escape(j.project),
                    fmt.status(j.status),
                    escape(f"{j.executor} {j.job_id or '-'}"),
                    escape(j.slurm_state or "-"),
                    escape(j.node or "") if j.status.value == "running" else escape(j.slurm_reason or ""),
                    fmt.ago(now - j.created_at),
                ),
            )
            for j in jobs
        ]
        self.query_one("#jobs", SyncedTable).show(rows)
        hint = self.query_one("#jobs-empty", Label)
        hint.update("" if rows else 'No cluster jobs: runs go to Slurm with [runs] executor = "slurm".')
        hint.set_class(not rows, "-visible")

    @property
    def selected(self) -> int | None:
        key = self.query_one("#jobs", SyncedTable).selected_key
        return int(key) if key else None

    def on_data_table_row_selected(self, event: SyncedTable.RowSelected) -> None:
        self.action_open_run()

    def action_open_run(self) -> None:
        if self.selected is not None:
            self.app.open_run(self.selected)

    def action_stop_run(self) -> None:
        if self.selected is not None:
            self.app.stop_run(self.selected, getattr(self, "_status", {}).get(self.selected))

    def action_refresh(self) -> None:
        self.poll()

    def action_back(self) -> None:
        self.app.pop_screen()
