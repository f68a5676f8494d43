"""Two or more runs side by side: what they are, the data versions and
evaluation set each used, their params (only those that differ, on `d`), their
metrics (the best run of each, or deltas against a pinned baseline run on `b`),
and one metric overlaid for every run on a shared x axis (steps or fraction of
training on `x`, zoomed on `z`), the project's primary metric first.

The table scrolls sideways (← →) for any number of runs, its first column
kept in place; the chart's legend is a line of its own under the chart."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.markup import escape as title_escape  # border titles are Textual markup
from textual.widgets import Header, Label, Static

from workbench.core import formatting as fmt
from workbench.core.metric_rules import higher_is_better
from workbench.runs.compare import (
    ZOOMS,
    Comparison,
    Line,
    compare_runs,
    default_x_axis,
    read_line,
    zoom_label,
)
from workbench.tui import reads
from workbench.tui.screens.base import LiveScreen
from workbench.tui.widgets.compare_chart import CompareChart, Curve, Value, swatch
from workbench.tui.widgets.footer import KeyFooter
from workbench.tui.widgets.synced_table import SyncedTable

# Points of each run's curve (downsampled in the store): 300 each, fewer per run
# beyond ten runs, so a redraw (on the event loop) stays as cheap with fifty.
CHART_POINTS = 300
CHART_BUDGET = 3000
MARKS = {"best": "b green", "baseline": "b", "better": "green", "worse": "red"}


@dataclass(slots=True)
class CompareView:
    """What one poll read: the comparison, and the charted metric's curves."""

    comparison: Comparison
    key: str | None
    x_axis: str
    zoom: float | None
    lines: dict[int, Line] = field(default_factory=dict)


class CompareScreen(LiveScreen):
    CSS_PATH = "compare.tcss"
    AUTO_FOCUS = "#compare-table"
    POLL_SECONDS = 2.0
    # At 80 columns the footer keeps these (and ? for help, which lists all).
    FOOTER_NARROW = {
        "compare.next_key",
        "compare.x_axis",
        "compare.zoom",
        "compare.diff_only",
        "compare.baseline",
        "compare.back",
    }
    BINDINGS = [
        Binding("m", "next_key", "Next metric", id="compare.next_key"),
        Binding("M", "previous_key", "Prev metric", id="compare.previous_key", show=False),
        # Priority: the table's own Enter (select) would take it first.
        Binding("enter", "chart_row", "Chart row", id="compare.chart_row", priority=True),
        Binding("x", "x_axis", "Steps/fraction", id="compare.x_axis"),
        Binding("z", "zoom", "Zoom", id="compare.zoom"),
        Binding("d", "diff_only", "Diff only", id="compare.diff_only"),
        Binding("b", "baseline", "Baseline", id="compare.baseline"),
        Binding("escape", "app.pop_screen", "Back", id="compare.back"),
    ]

    def __init__(self, run_ids: list[int]) -> None:
        super().__init__()
        self.run_ids = list(dict.fromkeys(run_ids))
        self.title = "Compare " + ", ".join(map(str, self.run_ids))
        self.key: str | None = None  # the charted metric (None: the comparison's choice)
        self.keys: list[str] = []
        self.x_axis: str | None = None  # None: chosen from the runs' lengths
        self.zoom = 0  # index into ZOOMS[x axis]
        self.diff_only = False
        self.baseline: int | None = None
        self.comparison: Comparison | None = None
        self.view: CompareView | None = None
        # Curves read so far by (run, key, x axis, zoom, points), with the count
        # and status they were read at: read again only when either changes.
        # Only the poll worker touches it (one at a time).
        self._cache: dict[tuple[int, str, str, float | None, int], tuple[int, str, Line]] = {}
        self._header = self._columns()  # the table's columns as last set
        self._points_only: bool | None = None  # whether the chart shows one value per run

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label("", id="compare-legend")
        yield SyncedTable(self._columns(), id="compare-table")
        yield CompareChart(id="compare-chart")
        yield Static("", id="compare-runs")
        yield KeyFooter()

    def on_mount(self) -> None:
        table = self.query_one("#compare-table", SyncedTable)
        # A cell cursor: ← → pick a run's column (to pin it) and scroll sideways,
        # while the names stay in view.
        table.cursor_type = "cell"
        table.fixed_columns = 1
        super().on_mount()

    def _columns(self) -> list[tuple[str, str]]:
        return [("name", "")] + [
            (str(i), f"run {i}" + (" ◆ base" if i == self.baseline else "")) for i in self.run_ids
        ]

    # Reading (in the poll worker) ------------------------------------------------

    def load(self) -> CompareView:
        db = reads.store()
        comparison = compare_runs(db, self.run_ids)
        keys = comparison.metric_order()
        key = self.key if self.key in keys else comparison.chart_metric
        x_axis = self.x_axis
        if x_axis is None:
            counts = comparison.points.get(key, []) if key else []
            x_axis = default_x_axis([c for c in counts if c > 1])
        zoom = ZOOMS[x_axis][self.zoom % len(ZOOMS[x_axis])]
        view = CompareView(comparison, key, x_axis, zoom)
        if key is not None:
            counts = comparison.points[key]
            points = max(50, min(CHART_POINTS, CHART_BUDGET // len(comparison.runs)))
            for run, count in zip(comparison.runs, counts, strict=True):
                cache_key = (run.id, key, x_axis, zoom, points)
                cached = self._cache.get(cache_key)
                if cached is None or cached[:2] != (count, run.status):
                    line = read_line(db, run, key, count, x_axis, zoom, points)
                    cached = self._cache[cache_key] = (count, run.status, line)
                view.lines[run.id] = cached[2]
        return view

    # Showing (on the event loop) -------------------------------------------------

    def show(self, view: CompareView) -> None:
        self.view = view
        self.comparison = view.comparison
        self.keys = view.comparison.metric_order()
        if self.key is None or self.key not in self.keys:
            self.key = view.key
        if self.x_axis is None:
            self.x_axis = view.x_axis  # chosen once; `x` changes it from here on
        self._show_table()
        if view.key != self.key or view.x_axis != self.x_axis:
            return  # read before a key changed the chart: the next poll is on its way
        self._show_chart(view)
        points_only = all(line.count <= 1 for line in view.lines.values())
        if points_only != self._points_only:
            self._points_only = points_only
            self.refresh_bindings()  # x and z do nothing to one value per run

    def _shown(self) -> Comparison | None:
        """The last comparison read, under the current toggles."""
        if self.comparison is None:
            return None
        shown = self.comparison.with_diff_only(self.diff_only)
        return shown.with_baseline(self.baseline if self.baseline in shown.ids else None)

    def _show_table(self) -> None:
        comparison = self._shown()
        if comparison is None:
            return
        table = self.query_one("#compare-table", SyncedTable)
        # Where the cursor is, by row key and column: rows that come and go
        # (d) or a header that changes (b) refill the table, which resets it.
        selected, column = table.selected_key, table.cursor_coordinate.column
        columns = self._columns()
        if columns != self._header:  # the baseline's column is marked in its header
            table.set_columns(columns)
            self._header = columns
        rows = []
        for row in comparison.table():
            label = escape(row.marked_label)
            if row.differs:
                label = f"[b yellow]{label}[/]"
            cells = [escape(c) for c in row.cells]
            if row.key == "status":
                cells = [fmt.status(c) for c in row.cells]
            elif row.differs:
                cells = [f"[b yellow]{c}[/]" for c in cells]
            for i, mark in enumerate(row.marks):
                if mark in MARKS:
                    cells[i] = f"[{MARKS[mark]}]{cells[i]}[/]"
            rows.append((row.key, (label, *cells)))
        table.show(rows)
        keys = [key for key, _ in rows]
        moved = (table.selected_key, table.cursor_coordinate.column) != (selected, column)
        if selected in keys and moved:
            table.move_cursor(row=keys.index(selected), column=column, animate=False)
        self.query_one("#compare-legend", Label).update(self._legend(comparison))

    def _legend(self, comparison: Comparison) -> str:
        parts = ["[b yellow]*[/] differs"]
        if comparison.baseline is None:
            parts.append("[b green]green[/]: best  b: pin the run under the cursor")
        else:
            parts.append(
                f"vs run {comparison.baseline}: [green]better[/] [red]worse[/]  b: unpin"
            )
        if comparison.diff_only:
            hidden = len(comparison.params) - len(comparison.shown_params)
            parts.append(f"{hidden} same params hidden (d)")
        if comparison.evaluation_differs:
            parts.append("[b red]different eval sets[/]")
        return "   ".join(parts)

    def _show_chart(self, view: CompareView) -> None:
        chart = self.query_one("#compare-chart", CompareChart)
        legend = self.query_one("#compare-runs", Static)
        comparison = view.comparison
        if view.key is None:
            chart.show_curves([], title="No metrics logged by these runs yet")
            legend.update("")
            return
        key = view.key
        arrow = "↑" if higher_is_better(key) else "↓"
        counts = dict(zip(comparison.ids, comparison.points[key], strict=True))
        entries = []
        for index, run_id in enumerate(comparison.ids):
            base = "◆" if run_id == self.baseline else ""
            count = counts[run_id]
            entries.append(
                swatch(index)
                + f" {run_id}{base}"
                + (f" [dim]({count})[/]" if count else " [dim](none)[/]")
            )
        legend.update("  ".join(entries))
        if all(line.count <= 1 for line in view.lines.values()):
            values = [
                Value(f"run {rid}", line.ys[-1] if line.ys else None, index)
                for index, (rid, line) in enumerate(view.lines.items())
            ]
            chart.show_values(values, title=f"{title_escape(key)} {arrow}  one value per run")
            return
        curves = [
            Curve(f"run {rid}", line.xs, line.ys, index)
            for index, (rid, line) in enumerate(view.lines.items())
        ]
        xlim = None
        if view.x_axis == "fraction":
            xlim = (0.0 if view.zoom is None else 1 - view.zoom, 1.0)
        axis = "fraction of training" if view.x_axis == "fraction" else "steps"
        chart.show_curves(
            curves,
            title=f"{title_escape(key)} {arrow}  x: {axis}"
            f"  z: {zoom_label(view.x_axis, view.zoom)}",
            xlim=xlim,
        )

    # Keys --------------------------------------------------------------------------

    def _chart(self, key: str) -> None:
        self.key = key
        self.query_one("#compare-chart", CompareChart).show_curves(
            [], title=f"{title_escape(key)}  (loading…)"
        )
        self.poll()

    def action_next_key(self, step: int = 1) -> None:
        if not self.keys:
            return
        index = self.keys.index(self.key) if self.key in self.keys else -step
        self._chart(self.keys[(index + step) % len(self.keys)])

    def action_previous_key(self) -> None:
        self.action_next_key(-1)

    def action_chart_row(self) -> None:
        selected = self.query_one("#compare-table", SyncedTable).selected_key
        if selected and selected.startswith("metric:"):
            self._chart(selected.removeprefix("metric:"))
        else:
            self.notify("Enter on a metric's row charts it.", timeout=3)

    def action_x_axis(self) -> None:
        self.x_axis = "steps" if self.x_axis == "fraction" else "fraction"
        self.zoom = 0  # the zooms differ: N steps, or a share of training
        self._redraw()

    def action_zoom(self) -> None:
        axis = self.x_axis or "steps"
        self.zoom = (self.zoom + 1) % len(ZOOMS[axis])
        self._redraw()

    def _redraw(self) -> None:
        if self.key:
            self.query_one("#compare-chart", CompareChart).show_curves(
                [], title=f"{title_escape(self.key)}  (loading…)"
            )
        self.poll()

    def action_diff_only(self) -> None:
        self.diff_only = not self.diff_only
        self._show_table()

    def action_baseline(self) -> None:
        table = self.query_one("#compare-table", SyncedTable)
        column = table.cursor_coordinate.column
        if column == 0 or column > len(self.run_ids):
            self.notify(
                "Move to a run's column (← →), then b pins it as the baseline.", timeout=4
            )
            return
        run_id = self.run_ids[column - 1]
        self.baseline = None if self.baseline == run_id else run_id
        self._show_table()
        if self.view is not None:
            self._show_chart(self.view)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("x_axis", "zoom"):
            return not self._points_only  # nothing to scale or zoom in one value per run
        return True
