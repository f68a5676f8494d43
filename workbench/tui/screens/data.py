"""A project's data: versions with their validation and drift verdicts, the
latest drift report with a bar per feature, and reference-vs-current histograms."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Header, Label

from workbench.core import formatting as fmt
from workbench.tui import reads
from workbench.tui.screens.base import LiveScreen
from workbench.tui.widgets.footer import KeyFooter
from workbench.tui.widgets.metric_chart import MetricChart
from workbench.tui.widgets.synced_table import SyncedTable

BAR_WIDTH = 12
REASON_WIDTH = 40  # characters of a rejection's reason shown in the table


class DataScreen(LiveScreen):
    POLL_SECONDS = 3.0
    AUTO_FOCUS = "#drift"
    BINDINGS = [Binding("escape", "app.pop_screen", "Back", id="data.back")]

    def __init__(self, project: str) -> None:
        super().__init__()
        self.project = project
        self.title = f"Data of {project}"
        self.snapshot: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label("Versions", classes="pane-title")
        yield SyncedTable(
            [
                ("id", "Id"),
                ("sha", "SHA-256"),
                ("rows", "Rows"),
                ("runs", "Runs"),
                ("valid", "Validation"),
                ("drift", "Drift"),
                ("path", "Path"),
            ],
            id="versions",
        )
        yield Label("Latest drift report", id="drift-title", classes="pane-title")
        yield SyncedTable(
            [
                ("column", "Column"),
                ("method", "Method"),
                ("value", "p / dist"),
                ("threshold", "Threshold"),
                ("bar", "Drift"),
                ("why", "Why"),
            ],
            id="drift",
        )
        # Captioned from the start: an empty box says what it will show.
        yield MetricChart("histogram of the selected column (loading…)", id="histogram")
        yield KeyFooter()

    def load(self) -> dict[str, Any]:
        return reads.data_overview(self.project)

    def show(self, snapshot: dict[str, Any]) -> None:
        self.snapshot = snapshot
        rejected = [
            (
                f"rejected-{r['id']}",
                (
                    "-",
                    "",
                    "",
                    "",
                    _rejected(r["reason"]),
                    "",
                    escape(r["file"]),
                ),
            )
            for r in snapshot.get("rejected", [])
        ]
        self.query_one("#versions", SyncedTable).show(
            rejected
            + [
                (
                    str(v["id"]),
                    (
                        str(v["id"]),
                        v["sha256"][:12],
                        str(v["rows"]),
                        str(v["runs"]),
                        _verdict(v["validation"]),
                        ("[green]none[/]" if v["drift"]["passed"] else "[red]drift[/]")
                        if v["drift"]
                        else "",
                        v["path"],
                    ),
                )
                for v in snapshot["versions"]
            ]
        )
        report = snapshot["drift"]
        if not report:
            self.query_one("#drift-title", Label).update(
                f"No drift report yet: workbench data drift {self.project} FILE"
            )
            self.query_one("#histogram", MetricChart).plot(
                {}, title="(the reference's and a batch's histograms show once drift is checked)"
            )
            return
        self.query_one("#drift-title", Label).update(
            f"Drift of {report['file'].rsplit('/', 1)[-1]}: {report['drifted_columns']} of"
            f" {len(report['columns'])} columns"
            + (" [red](dataset drift)[/]" if report["dataset_drift"] else "")
        )
        rows = []
        for c in report["columns"]:
            value = c.get("p_value") if c.get("p_value") is not None else c.get("statistic")
            rows.append(
                (
                    c["column"],
                    (
                        c["column"],
                        c.get("method") or "skipped",
                        fmt.metric(value),
                        fmt.metric(c.get("threshold")),
                        _bar(c),
                        c.get("reason", "")[:60],
                    ),
                )
            )
        self.query_one("#drift", SyncedTable).show(rows)
        self._plot_selected()

    def on_data_table_row_highlighted(self, event: SyncedTable.RowHighlighted) -> None:
        if event.data_table.id == "drift":
            self._plot_selected()

    def _plot_selected(self) -> None:
        column = self.query_one("#drift", SyncedTable).selected_key
        snapshot = self.snapshot or {}
        profile = (snapshot.get("profile") or {}).get("columns", {}).get(column or "")
        if column is None or not profile or "histogram" not in profile:
            self.query_one("#histogram", MetricChart).plot(
                {}, title="(no histogram for this column)"
            )
            return
        edges = profile["histogram"]["edges"]
        file = snapshot["drift"]["file"]
        self.in_background(
            "Cannot read the batch",
            lambda: reads.current_histogram(file, column, edges),
            lambda counts: self._draw(column, profile, counts),
        )

    def _draw(self, column: str, profile: dict, counts: list[int] | None) -> None:
        edges = profile["histogram"]["edges"]
        mids = [(a + b) / 2 for a, b in zip(edges, edges[1:], strict=False)]
        reference = profile["histogram"]["counts"]
        lines = {"reference": (mids, _density(reference, edges))}
        if counts:
            lines["current"] = (mids, _density(counts, edges))
        self.query_one("#histogram", MetricChart).plot(lines, title=f"{column}: density")


def _rejected(reason: str) -> str:
    return f"[red]rejected[/]: {escape(reason[:REASON_WIDTH])}"


def _verdict(report: dict[str, Any] | None) -> str:
    if not report:
        return ""
    if report.get("rejected"):
        return _rejected(report["rejected"])
    return "[green]passed[/]" if report["passed"] else "[red]failed[/]"


def _density(counts: list[int], edges: list[float]) -> list[float]:
    """Share per unit of the column: the bins are equal-count, not equal-width."""
    total = sum(counts) or 1
    widths = [max(b - a, 1e-12) for a, b in zip(edges, edges[1:], strict=False)]
    return [c / total / w for c, w in zip(counts, widths, strict=False)]


def _bar(column: dict) -> str:
    """How far the statistic is past (or short of) its threshold, as a bar."""
    if column.get("skipped") or column.get("threshold") in (None, 0):
        return ""
    if column.get("p_value") is not None:  # tests: smaller p is stronger evidence
        p = max(column["p_value"], 1e-12)
        strength = min(1.0, column["threshold"] / p / 2)
    else:
        strength = min(1.0, (column.get("statistic") or 0) / column["threshold"] / 2)
    filled = round(strength * BAR_WIDTH)
    colour = "red" if column.get("drifted") else "green"
    return f"[{colour}]{'█' * filled}[/]{'░' * (BAR_WIDTH - filled)}"
