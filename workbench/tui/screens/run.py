"""One run, live: status, params, metric and resource charts, the log, environment."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from rich.text import Text
from textual.widgets import Header, Input, Label, RichLog, Static

from workbench.core import formatting as fmt
from workbench.core import paths
from workbench.core.metric_rules import user_params
from workbench.tui import reads
from workbench.tui.screens.base import LiveScreen
from workbench.tui.widgets.footer import KeyFooter
from workbench.tui.widgets.metric_chart import MetricChart
from workbench.tui.widgets.synced_table import cell

LOG_TAIL = 256 * 1024  # bytes of an existing log shown on opening
LOG_LINES = 5000  # lines the log view keeps (the oldest go first)
MATCH_STYLE = "black on yellow"


class RunScreen(LiveScreen):
    FOOTER_NARROW = {
        "run.next_key",
        "run.resources",
        "run.stop",
        "run.sweep",
        "run.search",
        "run.follow",
        "run.back",
        "app.quit",
    }
    BINDINGS = [
        Binding("k", "next_key", "Next metric", id="run.next_key"),
        Binding("K", "previous_key", "Prev metric", id="run.previous_key"),
        Binding("r", "toggle_resources", "CPU/memory", id="run.resources"),
        Binding("x", "stop_run", "Stop", id="run.stop"),
        Binding("S", "open_sweep", "Sweep", id="run.sweep"),
        Binding("slash", "search", "Search log", id="run.search"),
        Binding("n", "next_match", "Next match", id="run.next_match"),
        Binding("N", "previous_match", "Prev match", id="run.previous_match"),
        Binding("f", "toggle_follow", "Follow log", id="run.follow"),
        Binding("escape", "back", "Back", id="run.back"),
    ]

    def __init__(self, run_id: int) -> None:
        super().__init__()
        self.run_id = run_id
        self.title = f"Run {run_id}"
        self.key: str | None = None
        self.keys: list[str] = []
        self.log_offset: int | None = None
        self.memory_view = False  # the resource chart: utilization or memory
        self.info: reads.RunDetail | None = None
        # The log as plain lines (what the view shows, line for line), for search.
        self.log_lines: list[str] = []
        # Follow the tail (while the view is at the bottom), or hold the view still.
        self.follow = True
        self.search_text = ""
        self.matches: list[int] = []  # indexes into log_lines
        self.match = -1  # the match shown, an index into matches

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label(f"run {self.run_id}", id="run-status")
        with Horizontal(id="run-body"):
            with VerticalScroll(id="run-side"):
                yield Static("", id="run-info")
            with Vertical(id="run-charts"):
                yield MetricChart(id="metric-chart")
                yield MetricChart(id="resource-chart")
        yield Label("", id="log-state")
        yield Input(placeholder="search the log; Enter: find, n/N: next/previous, Esc: clear", id="log-search")
        yield RichLog(id="run-log", max_lines=LOG_LINES, wrap=False, markup=False, highlight=False)
        yield KeyFooter()

    def on_mount(self) -> None:
        super().on_mount()
        self._show_log_state()
        # Scrolling the log by hand changes what "following" means: say it now.
        self.watch(self.query_one("#run-log", RichLog), "scroll_y", self._scrolled, init=False)

    def _scrolled(self, _old: float, _new: float) -> None:
        self._show_log_state()

    def load(self) -> reads.RunDetail:
        if self.log_offset is None:
            size = (
                paths.run_log(self.run_id).stat().st_size
                if paths.run_log(self.run_id).exists()
                else 0
            )
            self.log_offset = max(0, size - LOG_TAIL)
        info = reads.run_detail(self.run_id, [self.key] if self.key else [])
        if self.key is None and info.series_keys:
            self.key = _default_key(info)
            info.series[self.key] = reads.plotted(self.run_id, self.key)
        info.log_chunk, self.log_offset = reads.read_log(self.run_id, self.log_offset)
        return info

    def show(self, info: reads.RunDetail) -> None:
        run = info.run
        self.keys = [k.key for k in info.series_keys]
        self.query_one("#run-status", Label).update(
            f"[b]run {run.id}[/b]  {run.project}  {fmt.status(run.status)}"
            f"  {fmt.seconds(run.duration(time.time()))}"
            + (f"  exit {run.exit_code}" if run.exit_code is not None else "")
            + (f"  {run.message}" if run.message else "")
        )
        self.query_one("#run-info", Static).update(_side_panel(info))
        if not info.series_keys:
            self.query_one("#metric-chart", MetricChart).plot(
                {},
                title="No metrics logged"
                + (
                    " yet: they show here as the run logs them"
                    if run.status in ("queued", "running")
                    else ": log some with workbench.log_metric (see the README)"
                ),
            )
        if self.key and self.key in info.series:
            points = info.series[self.key]["points"]
            count = info.series[self.key]["count"]
            self.query_one("#metric-chart", MetricChart).plot(
                {self.key: ([p["x"] for p in points], [p["mean"] for p in points])},
                title=f"{self.key}  ({count} points; k: next metric)",
            )
        first = self.info is None
        self.info = info
        if first:
            self.refresh_bindings()  # "Sweep" shows on a sweep's run only
        self._plot_resources()
        if info.log_chunk:
            self._append_log(info.log_chunk.decode("utf-8", errors="replace").rstrip("\n"))

    # The log: follow, search ---------------------------------------------------

    def _append_log(self, text: str) -> None:
        log = self.query_one("#run-log", RichLog)
        # Follow new lines only while following and at the bottom: someone who
        # scrolled up to read keeps their place.
        at_bottom = log.max_scroll_y == 0 or log.scroll_y >= log.max_scroll_y
        lines = text.split("\n")  # as the log splits them: one row per line
        first = len(self.log_lines)
        self.log_lines.extend(lines)
        dropped = max(0, len(self.log_lines) - LOG_LINES)
        if dropped:
            del self.log_lines[:dropped]
        if self.search_text:
            found = [first + i - dropped for i, line in enumerate(lines) if self._hit(line)]
            self.matches = [m - dropped for m in self.matches if m >= dropped] + [
                m for m in found if m >= 0
            ]
            if dropped:
                self.match = min(self.match, len(self.matches) - 1)
            log.write(self._styled("\n".join(lines)), scroll_end=self.follow and at_bottom)
        else:
            log.write(text, scroll_end=self.follow and at_bottom)
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
        self.query_one("#log-state", Label).update(Text(state))

    def action_toggle_follow(self) -> None:
        log = self.query_one("#run-log", RichLog)
        at_bottom = log.max_scroll_y == 0 or log.scroll_y >= log.max_scroll_y
        if self.follow and at_bottom:
            self.follow = False
        else:
            self.follow = True
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
        top = int(y)
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
        log.scroll_to(y=max(0, line - log.size.height // 3), animate=False, immediate=True)
        self._show_log_state()

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
        self.app.pop_screen()

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

    def action_next_key(self, step: int = 1) -> None:
        if not self.keys:
            return
        index = self.keys.index(self.key) if self.key in self.keys else -1
        self.key = self.keys[(index + step) % len(self.keys)]
        self.query_one("#metric-chart", MetricChart).plot({}, title=f"{self.key}  (loading…)")
        self.poll()

    def action_previous_key(self) -> None:
        self.action_next_key(-1)

    def action_stop_run(self) -> None:
        status = self.info.run.status if self.info else None
        what = "sweep" if self.info and self.info.run.trainer == "sweep" else "run"
        self.app.stop_run(self.run_id, status, what)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "open_sweep":
            return self.info is not None and self.info.run.trainer == "sweep"
        return True

    def action_open_sweep(self) -> None:
        from workbench.tui.screens.sweep import SweepScreen

        self.app.push_screen(SweepScreen(self.run_id))


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


def _default_key(info: reads.RunDetail) -> str:
    """The longest curve (most points) is the most interesting to plot first."""
    return max(info.series_keys, key=lambda k: (k.count, k.key)).key


def _side_panel(info: reads.RunDetail) -> str:
    lines = ["[b]Params[/b]"]
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
