"""The served model of a project, from its prediction log: requests per second,
latency, error rate and drift per column over time, and the newest window's
alerts. The same report as `workbench monitor` (`workbench.monitor.report`),
computed in a thread worker (it reads the whole log) and polled slowly; `w`
switches the window between an hour, a day and ten minutes."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Header, Label, Static

from workbench.tui import reads
from workbench.tui.screens.base import LiveScreen
from workbench.tui.widgets.footer import KeyFooter
from workbench.tui.widgets.report_chart import ChartData, ReportChart

WINDOWS = ("1h", "1d", "10m")
WINDOWS_SHOWN = 24
DRIFT_COLUMNS_SHOWN = 8  # windows in the drift table, newest last


def load_report(project: str, window: str) -> dict[str, Any]:
    """`workbench monitor`'s report, in the calling (worker) thread."""
    from workbench.monitor.report import monitor

    return monitor(reads.store(), project, window, WINDOWS_SHOWN)


class MonitorScreen(LiveScreen):
    POLL_SECONDS = 15.0
    CSS_PATH = "monitor.tcss"
    BINDINGS = [
        Binding("w", "next_window", "Window", id="monitor.window"),
        Binding("r", "refresh", "Refresh", id="monitor.refresh"),
        Binding("escape", "app.pop_screen", "Back", id="monitor.back"),
    ]

    def __init__(self, project: str) -> None:
        super().__init__()
        self.project = project
        self.window = WINDOWS[0]
        self.title = f"Monitor of {project}"

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label(f"{self.project}: reading the prediction log…", id="monitor-summary")
        with VerticalScroll(id="monitor-body"):
            yield Static("", id="monitor-alerts")
            yield ReportChart(ChartData("lines", "Requests per second"), id="chart-requests")
            yield ReportChart(ChartData("lines", "Latency (ms)"), id="chart-latency")
            yield ReportChart(ChartData("lines", "Error rate (%)"), id="chart-errors")
            yield Static(
                Text("Drift per column over time", style="bold"), classes="monitor-heading"
            )
            yield Static("", id="monitor-drift")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#monitor-body").loading = True
        super().on_mount()

    def load(self) -> dict[str, Any]:
        return load_report(self.project, self.window)

    def action_refresh(self) -> None:
        self.poll()

    def action_next_window(self) -> None:
        self.window = WINDOWS[(WINDOWS.index(self.window) + 1) % len(WINDOWS)]
        self.query_one("#monitor-summary", Label).update(
            f"{self.project}: {self.window} windows, reading the prediction log…"
        )
        self.poll()

    def show(self, data: dict[str, Any]) -> None:
        # The widgets stay; their content changes, so a poll never flickers.
        self.query_one("#monitor-body", VerticalScroll).loading = False
        self.query_one("#monitor-summary", Label).update(_summary(data, self.window))
        self.query_one("#monitor-alerts", Static).update(_alerts(data))
        for chart_id, chart in _charts(data["windows"], data["window"]["seconds"]).items():
            widget = self.query_one(f"#{chart_id}", ReportChart)
            widget.data = chart
            widget.border_title = chart.title
            widget.replot()
        self.query_one("#monitor-drift", Static).update(
            _drift_table(data["windows"][-DRIFT_COLUMNS_SHOWN:])
        )


def _summary(report: dict[str, Any], window: str) -> Text:
    status = report.get("status", "no traffic")
    style = {"ok": "green", "drift": "red", "degraded": "red"}.get(status, "yellow")
    text = Text(f"{report['project']}  ")
    text.append(status, style=f"bold {style}")
    text.append(
        f"  {report['requests_total']:,} requests logged, {report['labels_total']:,} labels"
        f"  ({window} windows, newest {len(report['windows'])} shown)"
    )
    return text


def _alerts(report: dict[str, Any]) -> Group:
    """The newest window's alerts, and the parts of the log that were skipped."""
    if not report["windows"]:
        return Group(Text(f"No requests logged yet in {report['log_folder']}.", style="yellow"))
    lines = [Text(f"• {a}", style="bold red") for a in report.get("alerts") or []] or [
        Text("No alerts in the newest window.", style="green")
    ]
    for damaged in report["damaged_parts"]:
        note = f"• skipped a damaged log part: {damaged['path']}: {damaged['reason']}"
        lines.append(Text(note, style="yellow"))
    return Group(*lines)


def _charts(windows: list[dict[str, Any]], span: int | None) -> dict[str, ChartData]:
    """Requests per second (per window, for windows of rows), latency and errors."""
    xs = tuple(float(i) for i in range(len(windows)))
    where = f"windows, oldest {windows[0]['start']}" if windows else ""
    rates = tuple(w["requests"] / span if span else float(w["requests"]) for w in windows)
    p50 = tuple(w["latency_ms"]["p50"] or 0.0 for w in windows)
    p99 = tuple(w["latency_ms"]["p99"] or 0.0 for w in windows)
    errors = tuple(100.0 * w["error_rate"] for w in windows)
    title = "Requests per second" if span else "Requests per window"
    return {
        "chart-requests": ChartData("lines", title, where, series=(("requests", xs, rates),)),
        "chart-latency": ChartData(
            "lines", "Latency (ms)", where, series=(("p50", xs, p50), ("p99", xs, p99))
        ),
        "chart-errors": ChartData(
            "lines", "Error rate (%)", where, series=(("errors", xs, errors),)
        ),
    }


def _drift_table(windows: list[dict[str, Any]]) -> Table:
    """Columns down, windows across (newest last): `drift`, `strong`, `·` or `-`."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("column")
    for w in windows:
        table.add_column(w["start"][5:16].replace("T", " "))
    names: list[str] = []
    for w in windows:
        for kind in ("input_drift", "prediction_drift"):
            for c in w[kind].get("columns", []):
                name = c["column"] if kind == "input_drift" else f"(output) {c['column']}"
                if name not in names:
                    names.append(name)
    for name in names:
        cells = []
        for w in windows:
            kind = "prediction_drift" if name.startswith("(output) ") else "input_drift"
            column = name.removeprefix("(output) ")
            found = next((c for c in w[kind].get("columns", []) if c["column"] == column), None)
            if found is None or found["skipped"]:
                cells.append(Text("-", style="dim"))
            elif found["strong"]:
                cells.append(Text("strong", style="bold red"))
            elif found["drifted"]:
                cells.append(Text("drift", style="red"))
            else:
                cells.append(Text("·", style="green"))
        table.add_row(name, *cells)
    return table
