"""One run, live: status, params, metric and resource charts, the log, environment."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Header, Label, RichLog, Static

from workbench.core import formatting as fmt
from workbench.core import paths
from workbench.core.metric_rules import user_params
from workbench.tui import reads
from workbench.tui.screens.base import LiveScreen
from workbench.tui.widgets.footer import KeyFooter
from workbench.tui.widgets.metric_chart import MetricChart
from workbench.tui.widgets.synced_table import cell

LOG_TAIL = 256 * 1024  # bytes of an existing log shown on opening


class RunScreen(LiveScreen):
    FOOTER_NARROW = {
        "run.next_key",
        "run.resources",
        "run.stop",
        "run.sweep",
        "run.back",
        "app.quit",
    }
    BINDINGS = [
        Binding("k", "next_key", "Next metric", id="run.next_key"),
        Binding("K", "previous_key", "Prev metric", id="run.previous_key"),
        Binding("r", "toggle_resources", "CPU/memory", id="run.resources"),
        Binding("x", "stop_run", "Stop", id="run.stop"),
        Binding("S", "open_sweep", "Sweep", id="run.sweep"),
        Binding("escape", "app.pop_screen", "Back", id="run.back"),
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

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label(f"run {self.run_id}", id="run-status")
        with Horizontal(id="run-body"):
            with VerticalScroll(id="run-side"):
                yield Static("", id="run-info")
            with Vertical(id="run-charts"):
                yield MetricChart(id="metric-chart")
                yield MetricChart(id="resource-chart")
        yield RichLog(id="run-log", max_lines=5000, wrap=False, markup=False, highlight=False)
        yield KeyFooter()

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
            log = self.query_one("#run-log", RichLog)
            # Follow new lines only while the view is at the bottom: someone who
            # scrolled up to read keeps their place.
            at_bottom = log.max_scroll_y == 0 or log.scroll_y >= log.max_scroll_y
            log.write(
                info.log_chunk.decode("utf-8", errors="replace").rstrip("\n"),
                scroll_end=at_bottom,
            )

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
