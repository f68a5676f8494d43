"""Two or more runs side by side: params (differences highlighted), metrics
(best per metric), and one metric overlaid."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Header, Label

from workbench.core import formatting as fmt
from workbench.runs.compare import compare_runs
from workbench.store import dashboard
from workbench.tui import reads
from workbench.tui.screens.base import LiveScreen
from workbench.tui.widgets.footer import KeyFooter
from workbench.tui.widgets.metric_chart import MetricChart
from workbench.tui.widgets.synced_table import SyncedTable, cell


class CompareScreen(LiveScreen):
    AUTO_FOCUS = "#compare-table"
    POLL_SECONDS = 2.0
    BINDINGS = [
        Binding("m", "next_key", "Next metric", id="compare.next_key"),
        Binding("escape", "app.pop_screen", "Back", id="compare.back"),
    ]

    def __init__(self, run_ids: list[int]) -> None:
        super().__init__()
        self.run_ids = run_ids
        self.title = "Compare " + ", ".join(map(str, run_ids))
        self.key: str | None = None
        self.keys: list[str] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label(
            "[b]*[/b] params that differ   [green]green[/]: best run per metric",
            id="compare-legend",
        )
        yield SyncedTable(
            [("name", "")] + [(str(i), f"run {i}") for i in self.run_ids], id="compare-table"
        )
        yield MetricChart(id="compare-chart")
        yield KeyFooter()

    def load(self) -> dict[str, Any]:
        db = reads.store()
        result = compare_runs(db, [str(i) for i in self.run_ids])
        keys = sorted({s.key for s in dashboard.series_of(db, self.run_ids)})
        key = self.key if self.key in keys else (keys[0] if keys else None)
        result["keys"], result["key"] = keys, key
        result["series"] = (
            {rid: reads.series(db.conn, rid, key, 300) for rid in self.run_ids} if key else {}
        )
        return result

    def show(self, result: dict[str, Any]) -> None:
        self.keys, self.key = result["keys"], result["key"]
        ids = [r["id"] for r in result["runs"]]
        differing = set(result["differing_params"])
        rows = [("status", ("status", *(fmt.status(r["status"]) for r in result["runs"])))]
        for key, values in result["params"].items():
            label = f"[b yellow]* {key}[/]" if key in differing else f"  {key}"
            shown = [str(cell(v)) for v in values]
            cells = [f"[b yellow]{v}[/]" for v in shown] if key in differing else shown
            rows.append((f"param:{key}", (label, *cells)))
        for key, values in result["metrics"].items():
            best = result["best"].get(key)
            cells = [
                f"[b green]{fmt.metric(v)}[/]" if rid == best else fmt.metric(v)
                for v, rid in zip(values, ids, strict=True)
            ]
            rows.append((f"metric:{key}", (f"  {key}", *cells)))
        self.query_one("#compare-table", SyncedTable).show(rows)
        if self.key:
            lines = {
                f"run {rid}": ([p["x"] for p in s["points"]], [p["mean"] for p in s["points"]])
                for rid, s in result["series"].items()
            }
            self.query_one("#compare-chart", MetricChart).plot(lines, title=f"{self.key} (m: next)")

    def action_next_key(self) -> None:
        if self.keys:
            index = self.keys.index(self.key) if self.key in self.keys else -1
            self.key = self.keys[(index + 1) % len(self.keys)]
            self.poll()
