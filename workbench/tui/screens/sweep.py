"""One sweep, live: its trials, the best value so far, and which parameters matter."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Header, Label, Static

from workbench.core import formatting as fmt
from workbench.core.errors import NotFoundError
from workbench.runs.queries import get_run
from workbench.sweeps import engine
from workbench.sweeps.journal import study_file
from workbench.tui import reads
from workbench.tui.screens.base import LiveScreen, describe
from workbench.tui.widgets.footer import KeyFooter
from workbench.tui.widgets.metric_chart import MetricChart
from workbench.tui.widgets.synced_table import SyncedTable

STATE_COLOURS = {"complete": "green", "pruned": "yellow", "fail": "red", "running": "cyan"}
BAR_WIDTH = 24
NOISE = 0.1  # a share less than this above 1/n is no finding


@dataclass(frozen=True, slots=True)
class NoStudy:
    """A sweep whose Optuna study is not there (yet): its process has not
    created it, or a Slurm sweep's shared filesystem is not mounted here."""

    project: str
    status: str
    reason: str


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
        # Parameter importances are recomputed only when more trials completed,
        # in a worker of their own: fANOVA takes seconds on a long sweep, and the
        # trials must not wait for it.
        self._importances: dict[str, float] = {}
        self._importances_for = -1
        self._importances_busy = False
        self._importances_error: str | None = None
        self._texts: dict[str, str] = {}  # selector -> the text it shows

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label(f"sweep {self.run_id}", id="sweep-status")
        yield Label("", id="sweep-empty", classes="empty-hint")
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

    def load(self) -> dict[str, Any] | NoStudy:
        store = reads.store()
        try:
            return engine.summary(store, self.run_id)
        except NotFoundError as exc:
            # A sweep without its study is a state to show on this screen (and
            # to keep polling for: it appears when the sweep's process opens
            # it), not an error that closes the screen. A run that is gone or
            # is no sweep stays an error.
            if os.path.lexists(study_file(self.run_id)):
                raise
            row = get_run(store, self.run_id)
            if row["trainer"] != engine.SWEEP_TRAINER:
                raise
            return NoStudy(str(row["project"]), str(row["status"]), exc.message)

    status: str | None = None

    def show(self, document: dict[str, Any] | NoStudy) -> None:
        if isinstance(document, NoStudy):
            self._show_no_study(document)
            return
        self._set_text("#sweep-empty", "")
        self.query_one("#sweep-empty", Label).set_class(False, "-visible")
        self.status = document["status"]
        trials = document["trials"]
        finished = sum(t["state"] in ("complete", "pruned", "fail") for t in trials)
        best = document["best"]
        version = document["registered_version"]
        objective = document["objective"]
        self._set_text(
            "#sweep-status",
            f"[b]sweep {self.run_id}[/b]  {document['project']}  {fmt.status(document['status'])}"
            f"  {finished}/{document['trials_requested']} trials"
            f"  {document['direction']} {objective}"
            + (f"  best {fmt.metric(best['value'])} (trial {best['number']})" if best else "")
            + (f"  → {version['ref']}" if version else ""),
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
        complete = sum(t["state"] == "complete" for t in trials)
        if complete != self._importances_for and not self._importances_busy:
            self._importances_busy = True
            self.run_worker(
                lambda: self._compute_importances(complete),
                thread=True,
                group="importances",
                exit_on_error=False,
            )
        self._show_importances()

    def _show_no_study(self, missing: NoStudy) -> None:
        """Said once, on this screen: the line changes only when the state
        does, so a poll that finds the same thing redraws nothing."""
        self.status = missing.status
        self._set_text(
            "#sweep-status",
            f"[b]sweep {self.run_id}[/b]  {missing.project}  {fmt.status(missing.status)}"
            "  no study",
        )
        self._set_text(
            "#sweep-empty",
            f"No trials to show: {escape(missing.reason)}. They show here once the"
            " sweep's process creates its study.",
        )
        self.query_one("#sweep-empty", Label).set_class(True, "-visible")

    def _set_text(self, selector: str, text: str) -> None:
        """Update a label or static only when its text changes: each update
        is a layout pass, and polls mostly find nothing new."""
        if self._texts.get(selector) != text:
            self._texts[selector] = text
            self.query_one(selector, Static).update(text)

    def _compute_importances(self, complete: int) -> None:  # a worker thread
        try:
            found, error = engine.importances(self.run_id), None
        except Exception as exc:  # shown in the pane; the trials go on updating
            found, error = {}, describe(exc)
        self.app.call_from_thread(self._importances_done, complete, found, error)

    def _importances_done(self, complete: int, found: dict[str, float], error: str | None) -> None:
        self._importances, self._importances_for = found, complete
        self._importances_error, self._importances_busy = error, False
        self._show_importances()

    def _show_importances(self) -> None:
        if self._importances_error:
            text = f"[b]Parameter importance[/b]\n  cannot compute: {escape(self._importances_error)}"
        elif self._importances_for < 0:
            text = "[b]Parameter importance[/b]\n  computing…"
        else:
            text = _importance_bars(self._importances)
        self._set_text("#importances", text)

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
