"""One sweep, live: its trials, the best value so far, and which parameters matter."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Header, Label, Static

from workbench.core import formatting as fmt
from workbench.sweeps import engine
from workbench.tui import reads
from workbench.tui.screens.base import LiveScreen
from workbench.tui.widgets.footer import KeyFooter
from workbench.tui.widgets.metric_chart import MetricChart
from workbench.tui.widgets.synced_table import SyncedTable

STATE_COLOURS = {"complete": "green", "pruned": "yellow", "fail": "red", "running": "cyan"}
BAR_WIDTH = 24
NOISE = 0.1  # a share less than this above 1/n is no finding


class SweepScreen(LiveScreen):
    CSS_PATH = "sweep.tcss"
    AUTO_FOCUS = "#trials"
    POLL_SECONDS = 1.0
    BINDINGS = [
        Binding("enter", "open_run", "Open trial's run", id="sweep.open"),
        Binding("x", "stop_sweep", "Stop sweep", id="sweep.stop"),
        Binding("R", "requeue", "Requeue failed", id="sweep.requeue"),
        Binding("escape", "app.pop_screen", "Back", id="sweep.back"),
    ]

    def __init__(self, run_id: int) -> None:
        super().__init__()
        self.run_id = run_id
        self.title = f"Sweep {run_id}"
        # Parameter importances are recomputed only when more trials completed.
        self._importances: dict[str, float] = {}
        self._importances_for = -1

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label(f"sweep {self.run_id}", id="sweep-status")
        with Horizontal(id="sweep-body"):
            yield SyncedTable(
                [
                    ("number", "TRIAL"),
                    ("state", "STATE"),
                    ("value", "VALUE"),
                    ("run", "RUN"),
                    ("params", "PARAMS"),
                ],
                id="trials",
            )
            with Vertical(id="sweep-side"):
                yield MetricChart(id="best-chart")
                yield Static("", id="importances")
        yield KeyFooter()

    def load(self) -> dict[str, Any]:
        document = engine.summary(reads.store(), self.run_id)
        complete = sum(t["state"] == "complete" for t in document["trials"])
        if complete != self._importances_for:
            self._importances = engine.importances(self.run_id)
            self._importances_for = complete
        document["importances"] = self._importances
        return document

    status: str | None = None

    def show(self, document: dict[str, Any]) -> None:
        self.status = document["status"]
        trials = document["trials"]
        finished = sum(t["state"] in ("complete", "pruned", "fail") for t in trials)
        best = document["best"]
        version = document["registered_version"]
        objective = document["objective"]
        self.query_one("#sweep-status", Label).update(
            f"[b]sweep {self.run_id}[/b]  {document['project']}  {fmt.status(document['status'])}"
            f"  {finished}/{document['trials_requested']} trials"
            f"  {document['direction']} {objective}"
            + (f"  best {fmt.metric(best['value'])} (trial {best['number']})" if best else "")
            + (f"  → {version['ref']}" if version else "")
        )
        self.query_one("#trials", SyncedTable).show(
            [
                (
                    str(t["number"]),
                    (
                        t["number"],
                        f"[{STATE_COLOURS.get(t['state'], 'white')}]{t['state']}[/]",
                        "pruned" if t["state"] == "pruned" else fmt.metric(t["value"]),
                        t["run_id"] or "",
                        ", ".join(f"{k}={_short(v)}" for k, v in t["params"].items()),
                    ),
                )
                for t in trials
            ]
        )
        self._plot_best(trials, document["direction"], objective)
        self.query_one("#importances", Static).update(_importance_bars(document["importances"]))

    def _plot_best(self, trials: list[dict[str, Any]], direction: str, objective: str) -> None:
        xs: list[Any] = []
        values: list[Any] = []
        best: list[Any] = []
        pick = max if direction == "maximize" else min
        for trial in trials:
            if trial["state"] != "complete":
                continue
            xs.append(trial["number"])
            values.append(trial["value"])
            best.append(pick(best[-1], trial["value"]) if best else trial["value"])
        self.query_one("#best-chart", MetricChart).plot(
            {"best so far": (xs, best), "trial": (xs, values)},
            title=f"{objective} by trial",
        )

    @property
    def selected_trial_run(self) -> int | None:
        key = self.query_one("#trials", SyncedTable).selected_key
        if key is None:
            return None
        table = self.query_one("#trials", SyncedTable)
        run = table.get_cell(key, "run")
        return int(run) if run != "" else None

    def on_data_table_row_selected(self, event: SyncedTable.RowSelected) -> None:
        self.action_open_run()

    def action_open_run(self) -> None:
        if self.selected_trial_run is not None:
            self.app.open_run(self.selected_trial_run)

    def action_requeue(self) -> None:
        # A Slurm array sweep's failed or preempted tasks go out again as a new
        # array, by `sweep resume` in a process of its own (it follows them).
        from workbench.sweeps.arrays import requeue_detached

        def requeued(count: int) -> None:
            self.notify(f"requeueing {count} failed task(s) of sweep {self.run_id}")
            self.poll()

        self.in_background(
            "Cannot requeue", lambda: requeue_detached(reads.store(), self.run_id), requeued
        )

    def action_stop_sweep(self) -> None:
        # The sweep's process stops queued trials and marks the sweep stopped.
        self.app.stop_run(self.run_id, self.status, "sweep")


def _short(value: Any) -> str:
    return fmt.metric(value) if isinstance(value, float) else str(value)


def _importance_bars(importances: dict[str, float]) -> str:
    if not importances:
        return "[b]Parameter importance[/b]\n  (after two complete trials)"
    width = max(len(name) for name in importances)
    lines = ["[b]Parameter importance[/b] (fANOVA)"]
    if len(importances) > 1 and max(importances.values()) - 1 / len(importances) < NOISE:
        # Shares all close to 1/n say nothing about which parameter matters.
        lines.append("  no parameter stands out: all about equal so far")
    for name, share in importances.items():
        bar = "█" * max(1, round(share * BAR_WIDTH))
        lines.append(f"  {name:<{width}} {bar} {share:.0%}")
    return "\n".join(lines)
