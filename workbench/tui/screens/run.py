"""One run, live: status, params, progress, a grid of metric charts (one of
them focused large, zoomed, smoothed, on a log scale), resource charts, the log,
environment."""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from rich.text import Text
from textual.widgets import Header, Input, Label, RichLog, Static

from workbench.core import formatting as fmt
from workbench.core import paths
from workbench.core.metric_rules import CV_FOLD_PREFIX, curve_groups, progress_total, user_params
from workbench.tui import reads
from workbench.tui.screens.base import LiveScreen
from workbench.tui.widgets.footer import KeyFooter
from workbench.tui.widgets.metric_chart import MetricChart
from workbench.tui.widgets.metric_grid import MetricGrid
from workbench.tui.widgets.run_progress import Progress, RunProgress, estimate
from workbench.tui.widgets.series_chart import Series, SeriesChart
from workbench.tui.widgets.synced_table import cell

LOG_TAIL = 256 * 1024  # bytes of an existing log shown on opening
LOG_LINES = 5000  # lines the log view keeps (the oldest go first)
MATCH_STYLE = "black on yellow"
ERROR_STYLE = "bold white on red"
GRID_POINTS = 150  # points of each small chart (downsampled in the store)
FOCUS_POINTS = 400  # points of the focused chart
ZOOMS = (None, 1000, 100)  # the focused chart's zoom: all steps, or the last N
SMOOTHING = (0.0, 0.6, 0.9, 0.99)  # EMA weights, `s` steps through them
# A line that reports an error: a traceback, an exception's name (ValueError),
# an ERROR/FATAL/CRITICAL level, "error:" or "fatal:" (metric names such as
# `multi_error` are not errors).
ERROR_LINE = re.compile(
    r"Traceback \(most recent call last\)|\b[A-Z]\w*(Error|Exception)\b"
    r"|\b(ERROR|FATAL|CRITICAL)\b|(?i:(?<![\w.])(error|fatal):)"
)


@dataclass(slots=True)
class RunView:
    """What one poll read: the run, its charts' groups and series (each
    downsampled), the focused chart's series."""

    info: reads.RunDetail
    groups: list[tuple[str, ...]]
    grid: dict[str, dict[str, Any]]
    key: str | None = None  # the group (by its first key) the focused series belong to
    zoom: int | None = None
    focus: dict[str, dict[str, Any]] = field(default_factory=dict)


class RunScreen(LiveScreen):
    FOOTER_NARROW = {
        "run.focus",
        "run.grid",
        "run.zoom",
        "run.stop",
        "run.search",
        "run.follow",
        "run.back",
        "app.quit",
    }
    AUTO_FOCUS = "#metric-grid"  # arrows move between the charts; Tab reaches the log
    BINDINGS = [
        Binding("enter", "focus_chart", "Focus chart", id="run.focus"),
        Binding("enter", "show_grid", "All charts", id="run.grid"),
        Binding("k", "next_key", "Next metric", id="run.next_key"),
        Binding("K", "previous_key", "Prev metric", id="run.previous_key"),
        Binding("right", "move(1, 0)", "Chart to the right", id="run.chart_right", show=False),
        Binding("left", "move(-1, 0)", "Chart to the left", id="run.chart_left", show=False),
        Binding("down", "move(0, 1)", "Chart below", id="run.chart_down", show=False),
        Binding("up", "move(0, -1)", "Chart above", id="run.chart_up", show=False),
        Binding("z", "zoom", "Zoom", id="run.zoom"),
        Binding("s", "smooth", "Smooth", id="run.smooth"),
        Binding("l", "log_scale", "Log scale", id="run.log_scale"),
        Binding("r", "toggle_resources", "CPU/memory", id="run.resources"),
        Binding("x", "stop_run", "Stop", id="run.stop"),
        Binding("S", "open_sweep", "Sweep", id="run.sweep"),
        Binding("slash", "search", "Search log", id="run.search"),
        Binding("n", "next_match", "Next match", id="run.next_match"),
        Binding("N", "previous_match", "Prev match", id="run.previous_match"),
        Binding("f", "toggle_follow", "Follow log", id="run.follow"),
        Binding("e", "first_error", "First error", id="run.first_error"),
        Binding("w", "toggle_wrap", "Wrap log", id="run.wrap"),
        Binding("escape", "back", "Back", id="run.back"),
    ]

    def __init__(self, run_id: int) -> None:
        super().__init__()
        self.run_id = run_id
        self.title = f"Run {run_id}"
        # The selected chart, by the first key of its group; `keys` are those
        # first keys in the grid's order.
        self.key: str | None = None
        self.keys: list[str] = []
        self.groups: list[tuple[str, ...]] = []
        self.focus_mode = False  # the selected chart shown large instead of the grid
        self.zoom = 0  # index into ZOOMS
        self.smoothing = 0  # index into SMOOTHING
        self.log_y = False
        self.progress: Progress | None = None
        self.log_offset: int | None = None
        self.memory_view = False  # the resource chart: utilization or memory
        self.info: reads.RunDetail | None = None
        # Series read so far, by (key, points, zoom), with the count they were
        # read at: a series is read again only when it grows. Only the poll
        # worker touches it (one at a time).
        self._cache: dict[tuple[str, int, int | None], tuple[int, dict[str, Any]]] = {}
        # The log as plain lines (what the view shows, line for line), for search.
        self.log_lines: list[str] = []
        # Follow the tail (while the view is at the bottom), or hold the view still.
        self.follow = True
        # Whether the log's view was last moved to its end (by following, or by
        # the user): new lines that came before the next refresh leave the view
        # short of the new end, and it still follows; a move up clears it.
        self._at_tail = True
        self.wrap = False
        self.search_text = ""
        self.matches: list[int] = []  # indexes into log_lines
        self.match = -1  # the match shown, an index into matches
        self.error_line: int | None = None  # the first error's line, once jumped to
        self._focus_view: RunView | None = None
        self._partial = ""  # the log's last line, until its newline comes

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label(f"run {self.run_id}", id="run-status")
        with Horizontal(id="run-body"):
            with VerticalScroll(id="run-side"):
                yield Static("", id="run-info")
            with Vertical(id="run-charts"):
                yield RunProgress(id="run-progress")
                yield MetricGrid(id="metric-grid")
                yield SeriesChart(id="metric-chart")
                yield MetricChart(id="resource-chart")
        yield Label("", id="log-state")
        yield Input(placeholder="search the log; Enter: find, n/N: next/previous, Esc: clear", id="log-search")
        yield RichLog(id="run-log", max_lines=LOG_LINES, wrap=False, markup=False, highlight=False)
        yield KeyFooter()

    def on_mount(self) -> None:
        super().on_mount()
        self._show_mode()
        self._show_log_state()
        # Scrolling the log by hand changes what "following" means: say it now.
        self.watch(self.query_one("#run-log", RichLog), "scroll_y", self._scrolled, init=False)

    def _scrolled(self, old: float, new: float) -> None:
        log = self.query_one("#run-log", RichLog)
        # Reaching the end follows again; only a move up stops following. A move
        # down short of the end (following that has not caught up with lines
        # written before the refresh, or a reader paging down) keeps the state.
        if new >= log.max_scroll_y:
            self._at_tail = True
        elif new < old:
            self._at_tail = False
        self._show_log_state()

    # Reading (in the poll worker) ------------------------------------------------

    def _series(self, key: str, count: int, points: int, zoom: int | None) -> dict[str, Any]:
        cached = self._cache.get((key, points, zoom))
        if cached is not None and cached[0] == count:
            return cached[1]
        if zoom is not None and count > zoom:
            found = reads.plotted_tail(self.run_id, key, zoom, points)
        else:
            found = reads.plotted(self.run_id, key, points)
        self._cache[(key, points, zoom)] = (count, found)
        return found

    def load(self) -> RunView:
        if self.log_offset is None:
            size = (
                paths.run_log(self.run_id).stat().st_size
                if paths.run_log(self.run_id).exists()
                else 0
            )
            self.log_offset = max(0, size - LOG_TAIL)
        info = reads.run_detail(self.run_id, [])
        counts = {s.key: s.count for s in info.series_keys}
        # One chart per metric that has a curve; a run of final values only
        # gets a chart of each, rather than none.
        charted = [k for k, n in counts.items() if n > 1] or list(counts)
        groups = curve_groups(charted)
        grid = {k: self._series(k, counts[k], GRID_POINTS, None) for k in charted}
        leaders = [g[0] for g in groups]
        key = self.key if self.key in leaders else (leaders[0] if leaders else None)
        view = RunView(info, groups, grid, key, ZOOMS[self.zoom])
        if key is not None:
            group = groups[leaders.index(key)]
            view.focus = {
                k: self._series(k, counts[k], FOCUS_POINTS, view.zoom if view.zoom else None)
                for k in group
            }
        info.log_chunk, self.log_offset = reads.read_log(self.run_id, self.log_offset)
        return view

    # Showing (on the event loop) -------------------------------------------------

    def show(self, view: RunView) -> None:
        info = view.info
        run = info.run
        self.groups = view.groups
        self.keys = [g[0] for g in view.groups]
        if self.key not in self.keys:
            self.key = view.key
        self.query_one("#run-status", Label).update(
            f"[b]run {run.id}[/b]  {run.project}  {fmt.status(run.status)}"
            f"  {fmt.seconds(run.duration(time.time()))}"
            + (f"  exit {run.exit_code}" if run.exit_code is not None else "")
            + (f"  {run.message}" if run.message else "")
            + _job_summary(info.job)
        )
        self.query_one("#run-info", Static).update(_side_panel(info))
        first = self.info is None
        self.info = info
        self._show_progress(view)
        self._show_grid(view)
        if not info.series_keys:
            self.query_one("#metric-chart", SeriesChart).show_series(
                {},
                title="No metrics logged"
                + (
                    " yet: they show here as the run logs them"
                    if run.status in ("queued", "running")
                    else ": log some with workbench.log_metric (see the README)"
                ),
            )
        elif view.key == self.key and view.zoom == ZOOMS[self.zoom]:
            self._show_focus(view)
        if first:
            self.refresh_bindings()  # "Sweep" shows on a sweep's run only
            if run.trainer == "sweep":
                # The Sweep screen (S) reads the study through Optuna, whose
                # import takes seconds: done now, it is not done then.
                self.run_worker(_import_optuna, thread=True, group="prefetch", exit_on_error=False)
        self._show_mode()
        self._plot_resources()
        finished = run.status not in ("queued", "running")
        if info.log_chunk or (finished and self._partial):
            # Whole lines only: a line read half-written waits for its end
            # (else it shows as two), unless the run is over.
            text = self._partial + info.log_chunk.decode("utf-8", errors="replace")
            complete: str | None
            if finished:
                complete, self._partial = text.rstrip("\n"), ""
            else:
                complete, newline, self._partial = text.rpartition("\n")
                if not newline:
                    complete = None
            if complete is not None and (complete or not finished):
                self._append_log(complete)

    def _show_grid(self, view: RunView) -> None:
        titles = []
        for group in view.groups:
            latest = [(k, view.info.metrics.get(k)) for k in group]
            titles.append(" · ".join(f"{k} {fmt.metric(v)}" for k, v in latest))
        series = {k: _xy(found) for k, found in view.grid.items()}
        selected = self.keys.index(self.key) if self.key in self.keys else 0
        self.query_one("#metric-grid", MetricGrid).show_groups(
            view.groups, series, titles, selected
        )

    def _show_focus(self, view: RunView) -> None:
        if view.key is None:
            return
        self._focus_view = view
        group = next(g for g in view.groups if g[0] == view.key)
        count = max((found["count"] for found in view.focus.values()), default=0)
        zoom = ZOOMS[self.zoom]
        weight = SMOOTHING[self.smoothing]
        chart = self.query_one("#metric-chart", SeriesChart)
        chart.show_series(
            {k: _xy(found) for k, found in view.focus.items()}, smoothing=weight, log_y=self.log_y
        )
        parts = [f"with {', '.join(group[1:])}"] if len(group) > 1 else []
        parts += [
            f"{count} points" if zoom is None else f"last {count} points",
            f"z: {'all' if zoom is None else f'last {zoom}'}",
            f"s: EMA {weight:g}" if weight else "s: raw",
            "l: log" + (f", {chart.hidden} points ≤ 0 left out" if chart.hidden else "")
            if self.log_y
            else "l: linear",
        ]
        chart.show_series(chart.raw, title=f"{view.key}  ({' · '.join(parts)})")

    def _show_progress(self, view: RunView) -> None:
        info = view.info
        total = progress_total(info.params, info.run.trainer)
        logged = info.metrics.get("total")
        if logged is not None and logged == logged and logged >= 1:
            total = int(logged)
        best: tuple[str, list[dict[str, Any]]] | None = None
        for key, found in view.grid.items():
            points = found["points"]
            if key == "total" or key.startswith(CV_FOLD_PREFIX) or not points:
                continue
            if best is None or points[-1]["x"] > best[1][-1]["x"]:
                best = (key, points)
        if total is None or best is None:
            self.progress = None
        else:
            points = best[1]
            start = (0.0, info.run.started_at) if info.run.started_at else None
            first = (points[0]["x"], points[0]["ts"]) if len(points) > 1 else start
            self.progress = estimate(
                int(points[-1]["x"]),
                total,
                first,
                (points[-1]["x"], points[-1]["ts"]),
                time.time(),
                info.run.status == "running",
            )
        self.query_one("#run-progress", RunProgress).show_progress(self.progress)

    def _show_mode(self) -> None:
        """The grid, or the focused chart (also when there is nothing to chart:
        it says why)."""
        large = self.focus_mode or not self.groups
        self.query_one("#metric-grid", MetricGrid).display = not large
        self.query_one("#metric-chart", SeriesChart).display = large

    # The charts: select, focus, zoom, smooth, log scale --------------------------

    def action_focus_chart(self) -> None:
        self.focus_mode = True
        self._show_mode()
        self.refresh_bindings()

    def action_show_grid(self) -> None:
        self.focus_mode = False
        self._show_mode()
        self.refresh_bindings()

    def _select(self, index: int) -> None:
        if not self.keys:
            return
        self.key = self.keys[index % len(self.keys)]
        self.query_one("#metric-grid", MetricGrid).select(self.keys.index(self.key))
        self.query_one("#metric-chart", SeriesChart).plot({}, title=f"{self.key}  (loading…)")
        self.poll()

    def action_next_key(self, step: int = 1) -> None:
        if not self.keys:
            return
        index = self.keys.index(self.key) if self.key in self.keys else -1
        self._select(index + step)

    def action_previous_key(self) -> None:
        self.action_next_key(-1)

    def action_move(self, dx: int, dy: int) -> None:
        """Arrows: across the grid's rows and columns (in the focused chart,
        to the next or previous one)."""
        if not self.keys:
            return
        index = self.keys.index(self.key) if self.key in self.keys else 0
        columns = self.query_one("#metric-grid", MetricGrid).columns
        if self.focus_mode:
            self._select(index + dx + dy)
            return
        target = index + dx + dy * columns
        if 0 <= target < len(self.keys):
            self._select(target)

    def action_zoom(self) -> None:
        self.zoom = (self.zoom + 1) % len(ZOOMS)
        self.query_one("#metric-chart", SeriesChart).plot({}, title=f"{self.key}  (loading…)")
        self.poll()

    def action_smooth(self) -> None:
        self.smoothing = (self.smoothing + 1) % len(SMOOTHING)
        self._redraw_focus()

    def action_log_scale(self) -> None:
        self.log_y = not self.log_y
        self._redraw_focus()

    def _redraw_focus(self) -> None:
        """The focused chart again, from the series last read, in the new view."""
        if self._focus_view is not None and self._focus_view.key == self.key:
            self._show_focus(self._focus_view)

    # The log: follow, search ---------------------------------------------------

    def _append_log(self, text: str) -> None:
        log = self.query_one("#run-log", RichLog)
        # Follow new lines only while following and at the bottom: someone who
        # scrolled up to read keeps their place.
        at_bottom = log.max_scroll_y == 0 or log.scroll_y >= log.max_scroll_y or self._at_tail
        lines = text.split("\n")  # as the log splits them: one row per line
        first = len(self.log_lines)
        self.log_lines.extend(lines)
        dropped = max(0, len(self.log_lines) - LOG_LINES)
        if dropped:
            del self.log_lines[:dropped]
            if self.error_line is not None:
                self.error_line = self.error_line - dropped if self.error_line >= dropped else None
        if self.search_text:
            found = [first + i - dropped for i, line in enumerate(lines) if self._hit(line)]
            self.matches = [m - dropped for m in self.matches if m >= dropped] + [
                m for m in found if m >= 0
            ]
            if dropped:
                self.match = min(self.match, len(self.matches) - 1)
        follow = self.follow and at_bottom
        if self.search_text:
            log.write(self._styled("\n".join(lines)), scroll_end=follow)
        else:
            log.write(text, scroll_end=follow)
        self._show_log_state(at_bottom)

    def _hit(self, line: str) -> bool:
        return self.search_text in line.lower()

    def _styled(self, text: str) -> Text:
        styled = Text(text)
        if self.search_text:
            styled.highlight_words([self.search_text], MATCH_STYLE, case_sensitive=False)
        return styled

    def _show_log_state(self, at_bottom: bool | None = None) -> None:
        if at_bottom is None:
            log = self.query_one("#run-log", RichLog)
            at_bottom = log.max_scroll_y == 0 or log.scroll_y >= log.max_scroll_y
        if not self.follow:
            state = "Log held here (f: follow the tail)"
        elif at_bottom:
            state = "Log following the tail (f: hold it here)"
        else:
            state = "Log scrolled up: new lines wait below (f: jump to the end and follow)"
        if self.search_text:
            found = len(self.matches)
            where = f"match {self.match + 1} of {found}" if found and self.match >= 0 else ""
            state += (
                f"   search {self.search_text!r}: "
                + (where or f"{found} matches")
                + ("  (n/N)" if found else "")
            )
        else:
            state += "   /: search"
        if self.error_line is not None and not self.follow:
            state += f"   first error: line {self.error_line + 1}"
        if self.wrap:
            state += "   wrapped (w)"
        self.query_one("#log-state", Label).update(Text(state))

    def action_toggle_follow(self) -> None:
        log = self.query_one("#run-log", RichLog)
        at_bottom = log.max_scroll_y == 0 or log.scroll_y >= log.max_scroll_y
        if self.follow and at_bottom:
            self.follow = False
        else:
            self.follow = True
            self.error_line = None
            log.scroll_end(animate=False)
            at_bottom = True
        self._show_log_state(at_bottom)

    def action_search(self) -> None:
        box = self.query_one("#log-search", Input)
        box.add_class("-visible")
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "log-search":
            return
        self.search_text = event.value.strip().lower()
        self.matches = (
            [i for i, line in enumerate(self.log_lines) if self._hit(line)]
            if self.search_text
            else []
        )
        self.match = -1
        log = self.query_one("#run-log", RichLog)
        # Written again with the matches marked; the view stays where it was.
        y = log.scroll_y
        log.clear()
        log.write(self._styled("\n".join(self.log_lines)), scroll_end=False)
        log.scroll_to(y=y, animate=False, immediate=True)
        log.focus()
        if not self.search_text:
            event.input.remove_class("-visible")
            self._show_log_state()
            return
        if not self.matches:
            self.notify(f"no line of the log has {event.value.strip()!r}", timeout=3)
            self._show_log_state()
            return
        # The first match at or below the view's top line, else the first.
        top = self._line_at_row(int(y))
        self.match = next((i for i, m in enumerate(self.matches) if m >= top), 0) - 1
        self.action_next_match()

    def action_next_match(self, step: int = 1) -> None:
        if not self.matches:
            if self.search_text:
                self.notify(f"no line of the log has {self.search_text!r}", timeout=3)
            else:
                self.notify("Press / to search the log first.", timeout=3)
            return
        self.match = (self.match + step) % len(self.matches)
        line = self.matches[self.match]
        log = self.query_one("#run-log", RichLog)
        self.follow = False  # the match stays in view as new lines come
        self._hold_view_at(log, self._row_of(line))
        self._show_log_state()

    def _hold_view_at(self, log: RichLog, row: int) -> None:
        """Put `row` a third of the way down the view, now and once more after the
        next refresh: a write made while following scrolls to the end only after a
        refresh, and would otherwise land after this jump."""
        y = max(0, row - log.size.height // 3)
        log.scroll_to(y=y, animate=False, immediate=True)
        log.call_after_refresh(log.scroll_to, y=y, animate=False, immediate=True)

    def action_previous_match(self) -> None:
        self.action_next_match(-1)

    def action_back(self) -> None:
        box = self.query_one("#log-search", Input)
        if box.has_class("-visible") or self.search_text:
            box.value = ""
            box.remove_class("-visible")
            if self.search_text:
                self.search_text = ""
                self.matches, self.match = [], -1
                log = self.query_one("#run-log", RichLog)
                y = log.scroll_y
                log.clear()
                log.write("\n".join(self.log_lines), scroll_end=False)
                log.scroll_to(y=y, animate=False, immediate=True)
            self.query_one("#run-log", RichLog).focus()
            self._show_log_state()
            return
        if self.focus_mode:
            self.action_show_grid()
            return
        self.app.pop_screen()

    # The log: the first error, wrapping ------------------------------------------

    def action_first_error(self) -> None:
        """Scroll to the first line that reports an error (of those kept) and
        hold the view there."""
        found = next((i for i, line in enumerate(self.log_lines) if ERROR_LINE.search(line)), None)
        if found is None:
            self.notify("No error in the log shown (Traceback, Error, Exception).", timeout=3)
            return
        self.error_line = found
        self.follow = False
        self._hold_view_at(self.query_one("#run-log", RichLog), self._row_of(found))
        self._show_log_state()

    def action_toggle_wrap(self) -> None:
        self.wrap = not self.wrap
        log = self.query_one("#run-log", RichLog)
        # A line's rows change with wrapping: keep the line at the top in view.
        top = self._line_at_row(int(log.scroll_y))
        log.wrap = self.wrap
        log.min_width = 1 if self.wrap else 78
        self._rewrite_log()
        if self.follow and top >= len(self.log_lines) - log.size.height:
            log.scroll_end(animate=False, immediate=True)
        else:
            log.scroll_to(y=self._row_of(top), animate=False, immediate=True)
        self._show_log_state()

    def _rewrite_log(self) -> None:
        log = self.query_one("#run-log", RichLog)
        log.clear()
        log.write(self._styled("\n".join(self.log_lines)), scroll_end=False)

    def _heights(self) -> list[int]:
        """Rows each kept line takes in the view (1 each unless wrapped)."""
        log = self.query_one("#run-log", RichLog)
        if not self.wrap:
            return [1] * len(self.log_lines)
        width = max(1, log.scrollable_content_region.width)
        console = self.app.console
        return [max(1, len(Text(line).wrap(console, width))) for line in self.log_lines]

    def _row_of(self, line: int) -> int:
        return line if not self.wrap else sum(self._heights()[:line])

    def _line_at_row(self, row: int) -> int:
        if not self.wrap:
            return row
        total = 0
        for i, height in enumerate(self._heights()):
            total += height
            if total > row:
                return i
        return len(self.log_lines)

    def _plot_resources(self) -> None:
        samples = self.info.samples if self.info else []
        start = samples[0].ts if samples else 0
        xs = [round(s.ts - start, 1) for s in samples]
        gpu = [_gpu(s.gpu) for s in samples]
        environment = (self.info.environment if self.info else None) or {}
        chart = self.query_one("#resource-chart", MetricChart)
        lines: dict[str, tuple[list, list]]
        if self.memory_view:
            lines = {"RSS MiB": (xs, [(s.rss_bytes or 0) / 2**20 for s in samples])}
            if any(gpu):
                used = [sum(d["memory_used"] or 0 for d in g) / 2**20 if g else None for g in gpu]
                lines["GPU MiB"] = (xs, used)
            recorded = environment.get("memory_total")
            total = recorded / 2**20 if recorded else _total_memory_mib()
            chart.plot(
                lines,
                title="memory (MiB)   r: CPU/GPU %",
                ylim=(0, total) if total else None,
            )
        else:
            lines = {"cpu %": (xs, [s.cpu_percent for s in samples])}
            if any(gpu):
                lines["gpu %"] = (
                    xs,
                    [max(d["utilization"] or 0 for d in g) if g else None for g in gpu],
                )
            # A process may use every core: 100 % per core, GPU 0-100 %.
            cores = (environment.get("cpu") or {}).get("cores")
            top = 100.0 * max(1, cores or os.cpu_count() or 1)
            chart.plot(lines, title=f"CPU % (of {top:.0f}) / GPU %   r: memory", ylim=(0, top))

    def action_toggle_resources(self) -> None:
        self.memory_view = not self.memory_view
        self._plot_resources()

    def action_stop_run(self) -> None:
        status = self.info.run.status if self.info else None
        what = "sweep" if self.info and self.info.run.trainer == "sweep" else "run"
        self.app.stop_run(self.run_id, status, what)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "open_sweep":
            return self.info is not None and self.info.run.trainer == "sweep"
        if action in ("focus_chart", "show_grid"):
            # Enter: the selected chart large, or back to the grid.
            return bool(self.groups) and self.focus_mode == (action == "show_grid")
        if action in ("zoom", "smooth", "log_scale"):
            return self.focus_mode and bool(self.groups)
        return True

    def action_open_sweep(self) -> None:
        from workbench.tui.screens.sweep import SweepScreen

        self.app.push_screen(SweepScreen(self.run_id))


def _xy(found: dict[str, Any]) -> Series:
    """A plotted series (downsampled points) as the xs and ys of a chart."""
    points = found["points"]
    return [p["x"] for p in points], [p["mean"] for p in points]


def _total_memory_mib() -> float | None:
    try:
        import psutil

        return psutil.virtual_memory().total / 2**20
    except Exception:  # no psutil reading: let the chart scale itself
        return None


def _gpu(text: str | None) -> list[dict[str, Any]] | None:
    """A sample's per-device readings (JSON written by the supervisor)."""
    if not text:
        return None
    try:
        found = json.loads(text)
    except ValueError:
        return None
    return [d for d in found if isinstance(d, dict)] if isinstance(found, list) else None


def _side_panel(info: reads.RunDetail) -> str:
    lines = _job_lines(info.job) + ["[b]Params[/b]"]
    lines += [f"  {k} = {cell(v)}" for k, v in user_params(info.params).items()]
    lines += ["", "[b]Metrics[/b]"]
    lines += [f"  {k} = {fmt.metric(v)}" for k, v in info.metrics.items()]
    res = info.resources
    lines += [
        "",
        "[b]Resources[/b]",
        f"  CPU max {res.cpu_percent_max or 0:.0f}%  mean {res.cpu_percent_mean or 0:.0f}%",
        f"  RSS max {fmt.size(res.rss_bytes_max)}",
        f"  samples {res.samples}",
    ]
    for device in res.gpus:
        lines.append(
            f"  GPU{device.index} util max {device.utilization_max}%"
            f" mem max {fmt.size(device.memory_used_max)}"
        )
    env = info.environment or {}
    if env:
        git = env.get("git") or {}
        lines += [
            "",
            "[b]Environment[/b]",
            f"  python {env.get('python')} on {env.get('hostname')}",
            f"  {env.get('cpu', {}).get('model')} × {env.get('cpu', {}).get('cores')}",
        ]
        lines += [f"  {g['name']}" for g in env.get("gpus", [])]
        if git:
            lines.append(f"  git {git['commit'][:10]}{' (dirty)' if git['dirty'] else ''}")
        lines += [f"  {name} {version}" for name, version in env.get("libraries", {}).items()]
    if info.artifacts:
        lines += ["", "[b]Artifacts[/b]"]
        lines += [f"  {a.name} ({fmt.size(a.size)})" for a in info.artifacts]
    return "\n".join(lines)


def _import_optuna() -> None:
    import optuna  # noqa: F401


def _job_summary(job: Any) -> str:
    """The status line's part for a run of another executor: "slurm job 12_3 on
    node07 PENDING (Resources)" (Slurm's words escaped, shown as text)."""
    if job is None:
        return ""
    from rich.markup import escape

    text = f"  {job.executor} job {job.job_id or '-'}" + (f" on {job.node}" if job.node else "")
    if job.slurm_state:
        text += f" {job.slurm_state}" + (f" ({job.slurm_reason})" if job.slurm_reason else "")
    return escape(text)


def _job_lines(job: Any) -> list[str]:
    """Where a run of another executor (a Slurm job) is: its job id, node, and
    the scheduler's state and reason (text from Slurm, shown as text)."""
    if job is None:
        return []
    from rich.markup import escape

    state = (job.slurm_state or "-") + (f" ({job.slurm_reason})" if job.slurm_reason else "")
    return [
        "[b]Job[/b]",
        escape(f"  {job.executor} job {job.job_id or '-'}"),
        escape(f"  node {job.node or '-'}"),
        escape(f"  state {state}"),
        "",
    ]
