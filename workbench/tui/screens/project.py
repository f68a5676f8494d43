"""A project's runs: sort, filter, start, stop, open, mark and compare."""

from __future__ import annotations

import time
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Header, Input, Label

from workbench.core import formatting as fmt
from workbench.tui import reads
from workbench.tui.screens.base import LiveScreen
from workbench.tui.widgets.footer import KeyFooter
from workbench.tui.widgets.synced_table import SyncedTable, cell

SORTS = ("id", "status", "duration", "metric")


class ProjectScreen(LiveScreen):
    AUTO_FOCUS = "#runs"
    # The keys the footer keeps below 100 columns; help (?) lists them all.
    FOOTER_NARROW = {
        "project.start",
        "project.stop",
        "project.data",
        "project.models",
        "project.automation",
        "project.back",
        "app.quit",
    }
    BINDINGS = [
        Binding("enter", "open_run", "Open run", id="project.open"),
        Binding("n", "start_run", "Start run", id="project.start"),
        Binding("x", "stop_run", "Stop run", id="project.stop"),
        Binding("space", "mark", "Mark", id="project.mark"),
        Binding("c", "compare", "Compare", id="project.compare"),
        Binding("s", "sort", "Sort", id="project.sort"),
        Binding("slash", "filter", "Filter", id="project.filter"),
        Binding("D", "data", "Data", id="project.data"),
        Binding("M", "models", "Models", id="project.models"),
        Binding("A", "automation", "Automation", id="project.automation"),
        Binding("escape", "back", "Back", id="project.back"),
    ]

    def __init__(self, name: str) -> None:
        super().__init__()
        self.project = name
        self.title = f"Project {name}"
        self.marked: set[int] = set()
        self.sort_by = "id"
        self.filter_text = ""
        self.snapshot: reads.ProjectRuns | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label("", id="project-summary")
        yield Input(placeholder="filter runs (any column); Esc clears", id="filter")
        yield Label("", id="project-empty", classes="empty-hint")
        yield SyncedTable(
            [
                ("mark", " "),
                ("id", "Run"),
                ("status", "Status"),
                ("started", "Started"),
                ("duration", "Duration"),
                ("metric", "Metric"),
                ("params", "Params"),
            ],
            id="runs",
        )
        yield KeyFooter()

    def load(self) -> reads.ProjectRuns:
        return reads.project_runs(self.project)

    def show(self, snapshot: reads.ProjectRuns) -> None:
        self.snapshot = snapshot
        project = snapshot.project
        best = project.best
        summary = project.config_error or (
            f"{project.trainer}  target {project.target}  "
            f"metric {project.metric or '-'}  {project.runs} runs"
            + (f"  best: run {best.run} {fmt.metric(best.value)}" if best else "")
        )
        self.query_one("#project-summary", Label).update(summary)
        self._render_runs()

    def _render_runs(self) -> None:
        if self.snapshot is None:
            return
        snapshot = self.snapshot
        key_params = snapshot.key_params
        now = time.time()
        rows = []
        for run in snapshot.runs:
            value = snapshot.metric.get(run.id)
            params = snapshot.params.get(run.id, {})
            cells = (
                "●" if run.id in self.marked else "",
                str(run.id),
                fmt.status(run.status),
                _when(run.started_at),
                fmt.seconds(run.duration(now)),
                fmt.metric(value),
                " ".join(f"{k}={cell(params[k])}" for k in key_params if k in params),
            )
            if self.filter_text and not any(self.filter_text in str(c).lower() for c in cells):
                continue
            rows.append((str(run.id), cells, run, value))
        rows.sort(key=lambda row: self._sort_key(row, now), reverse=self.sort_by != "status")
        runs = self.query_one("#runs", SyncedTable)
        runs.set_sort(self.sort_by, descending=self.sort_by != "status")
        runs.show([(key, cells) for key, cells, _, _ in rows])
        hint = self.query_one("#project-empty", Label)
        hint.update(
            ""
            if snapshot.runs
            else "No runs yet — press n to start one (the params of workbench.toml are filled in)."
        )
        hint.set_class(not snapshot.runs, "-visible")

    def _sort_key(self, row: tuple, now: float) -> Any:
        _, _, run, value = row
        if self.sort_by == "status":
            return (run.status, -run.id)
        if self.sort_by == "duration":
            return (run.duration(now) or 0, run.id)
        if self.sort_by == "metric":
            from workbench.core.metric_rules import lower_is_better

            metric_key = (self.snapshot.project.metric if self.snapshot else None) or ""
            if value is None:
                return (float("-inf"), run.id)
            return (-value if lower_is_better(metric_key) else value, run.id)
        return run.id

    @property
    def selected_run(self) -> int | None:
        key = self.query_one("#runs", SyncedTable).selected_key
        return int(key) if key else None

    def on_data_table_row_selected(self, event: SyncedTable.RowSelected) -> None:
        self.action_open_run()

    def action_open_run(self) -> None:
        if self.selected_run is not None:
            self.app.open_run(self.selected_run)

    def action_mark(self) -> None:
        run_id = self.selected_run
        if run_id is None:
            return
        self.marked.symmetric_difference_update({run_id})
        self._render_runs()
        self.query_one("#runs", SyncedTable).action_cursor_down()

    def action_compare(self) -> None:
        if len(self.marked) < 2:
            self.notify("Mark two or more runs with space, then press c.", severity="warning")
            return
        self.app.open_compare(sorted(self.marked))

    def action_sort(self) -> None:
        self.sort_by = SORTS[(SORTS.index(self.sort_by) + 1) % len(SORTS)]
        self.notify(f"sorted by {self.sort_by}", timeout=1.5)
        self._render_runs()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("-visible")
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.filter_text = event.value.strip().lower()
            self._render_runs()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            self.query_one("#runs", SyncedTable).focus()

    def action_back(self) -> None:
        box = self.query_one("#filter", Input)
        if box.has_class("-visible"):
            box.value = ""
            box.remove_class("-visible")
            self.query_one("#runs", SyncedTable).focus()
            return
        self.app.pop_screen()

    def action_data(self) -> None:
        from workbench.tui.screens.data import DataScreen

        self.app.push_screen(DataScreen(self.project))

    def action_models(self) -> None:
        self.app.open_models(self.project)

    def action_automation(self) -> None:
        self.app.open_automation(self.project)

    def action_start_run(self) -> None:
        # Before the first poll the params are not known yet: let the app load them.
        params = self.snapshot.project.params if self.snapshot else None
        self.app.start_run_form(self.project, params)

    def action_stop_run(self) -> None:
        run_id = self.selected_run
        if run_id is None:
            self.notify("No run selected.", severity="warning")
            return
        runs = self.snapshot.runs if self.snapshot else []
        status = next((r.status for r in runs if r.id == run_id), None)
        self.app.stop_run(run_id, status)


def _when(ts: float | None) -> str:
    """A run's start, in UTC to the second (as `run list` shows it)."""
    return "" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))
