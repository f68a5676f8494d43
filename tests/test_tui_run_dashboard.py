"""The run screen as a dashboard: a grid of one chart per metric (train and
validation curves of a metric in one chart), a focused chart with zoom,
smoothing and a log scale, and progress with an ETA when the total is known.

Runs are written at store level (what a supervised run leaves behind); the
polls' reconciliation is switched off so that a "running" run without a
supervisor stays running."""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path

import pytest
from textual.widgets._footer import FooterKey
from tui_support import plain, use_fixed_system_sampler, wait_for

from workbench.config.settings import Settings
from workbench.core.metric_rules import curve_groups, progress_total
from workbench.store import open_store
from workbench.store.metrics import append_points
from workbench.tui import reads
from workbench.tui.app import WorkbenchApp
from workbench.tui.screens.help import HelpScreen
from workbench.tui.screens.home import HomeScreen
from workbench.tui.screens.run import RunScreen
from workbench.tui.widgets.metric_grid import MetricGrid, columns_for
from workbench.tui.widgets.run_progress import RunProgress, estimate
from workbench.tui.widgets.series_chart import SeriesChart, ema

# Pure rules ---------------------------------------------------------------------


def test_validation_curves_pair_with_their_training_curve():
    keys = ["accuracy", "lr", "train_loss", "val_accuracy", "val_loss", "valid_loss", "val_auc"]
    assert curve_groups(keys) == [
        ("accuracy", "val_accuracy"),  # Keras: `accuracy` beside `val_accuracy`
        ("lr",),
        ("train_loss", "val_loss", "valid_loss"),
        ("val_auc",),
    ]
    # Without a training curve, the validation curves of one metric share a chart.
    assert curve_groups(["valid_l2", "val_l2", "valid_auc"]) == [
        ("valid_l2", "val_l2"),
        ("valid_auc",),
    ]
    assert curve_groups(["cv_fold_auc", "auc"]) == [("cv_fold_auc",), ("auc",)]


@pytest.mark.parametrize(
    ("params", "trainer", "total"),
    [
        ({"epochs": 30}, "script", 30),
        ({"n_estimators": 150, "learning_rate": 0.05}, "lightgbm", 150),
        ({}, "lightgbm", 100),  # LightGBM's default rounds
        ({"num_boost_round": "40"}, "xgboost", 40),
        ({"max_iter": 200}, "sklearn:sklearn.linear_model.LogisticRegression", 200),
        ({"_trials": 12}, "sweep", 12),
        ({"total": 5, "epochs": 9}, "script", 5),  # the script's own word first
        ({"epochs": True}, "script", None),
        ({"alpha": 0.1}, "script", None),
    ],
)
def test_progress_total_from_params(params, trainer, total):
    assert progress_total(params, trainer) == total


def test_estimate_uses_the_step_rate_and_only_while_running():
    running = estimate(120, 300, (0, 1000.0), (120, 1060.0), now=1060.0, running=True)
    assert running.eta == pytest.approx(90.0)  # 2 steps a second, 180 to go
    assert running.text == "step 120/300 · 40% · ETA 1m30s"
    later = estimate(120, 300, (0, 1000.0), (120, 1060.0), now=1070.0, running=True)
    assert later.eta == pytest.approx(80.0)
    done = estimate(300, 300, (0, 0.0), (300, 9.0), 9.0, running=False)
    assert done.text == "step 300/300 · 100%"
    assert estimate(5, 300, None, (5, 9.0), 9.0, running=True).eta is None  # no rate yet


def test_ema_smooths_and_keeps_gaps():
    assert ema([1.0, 1.0, 1.0], 0.9) == pytest.approx([1.0, 1.0, 1.0])  # debiased start
    smoothed = ema([0.0, 10.0, None, 0.0], 0.5)
    assert smoothed[2] is None and 0 < smoothed[3] < smoothed[1] < 10
    assert ema([3.0, None], 0.0) == [3.0, None]


def test_grid_columns_follow_the_terminal_width():
    assert [columns_for(w) for w in (60, 80, 119, 120, 200)] == [1, 2, 2, 3, 4]


# The screen ---------------------------------------------------------------------

STEPS = 120


@pytest.fixture
def runs(wb_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """running: epochs=300, 120 steps of train_loss/val_loss/val_acc/lr at two
    steps a second up to now, and a final-only f1; counted: finished, logs a
    `total` of 50 and 20 steps; plain: finished, no total anywhere."""
    use_fixed_system_sampler(monkeypatch)
    monkeypatch.setattr(reads, "reconcile", lambda: None)  # no supervisor to find
    now = time.time()
    store = open_store()
    found = {}
    with store.write() as conn:
        project = conn.execute(
            "INSERT INTO projects (name, path, created_at) VALUES ('dash', ?, 0)",
            (str(tmp_path),),
        ).lastrowid

        def run(status: str, params: dict, points: dict) -> int:
            run_id = conn.execute(
                "INSERT INTO runs (project_id, status, trainer, created_at, started_at)"
                " VALUES (?, ?, 'script', ?, ?)",
                (project, status, now - 100, now - 70),
            ).lastrowid
            conn.executemany(
                "INSERT INTO params (run_id, key, value) VALUES (?, ?, ?)",
                [(run_id, k, json.dumps(v)) for k, v in params.items()],
            )
            append_points(conn, run_id, points)
            return int(run_id)

        def curve(fn, steps=STEPS, end=now):
            return [(i, end - (steps - i) * 0.5, fn(i)) for i in range(1, steps + 1)]

        found["running"] = run(
            "running",
            {"epochs": 300, "alpha": 0.1},
            {
                "train_loss": curve(lambda i: math.exp(-i / 30)),
                "val_loss": curve(lambda i: math.exp(-i / 40) + 0.05),
                "val_acc": curve(lambda i: 1 - math.exp(-i / 25)),
                "lr": curve(lambda i: 0.1 * 0.97**i),
                "f1": [(None, now, 0.9)],
            },
        )
        found["counted"] = run(
            "succeeded",
            {},
            {"loss": curve(lambda i: 1 / i, 20), "total": [(None, now, 50.0)]},
        )
        found["plain"] = run("succeeded", {}, {"loss": curve(lambda i: 1 / i, 20)})
        conn.execute(
            "UPDATE runs SET ended_at = ?, exit_code = 0 WHERE status = 'succeeded'", (now,)
        )
    store.close()
    return found


async def open_run(pilot, app: WorkbenchApp, run_id: int) -> RunScreen:
    await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))
    app.open_run(run_id)
    screen = await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen)
    await wait_for(pilot, lambda: screen.info is not None, what="the run")
    return screen


def titles(grid: MetricGrid) -> list[str]:
    return [cell._title for cell in grid.cells]


async def test_grid_has_a_chart_per_metric_with_pairs_overlaid_and_progress(runs):
    app = WorkbenchApp(Settings())
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_run(pilot, app, runs["running"])
        grid = screen.query_one("#metric-grid", MetricGrid)
        await wait_for(pilot, lambda: len(grid.cells) == 3, what="three charts")
        # f1 has one final value: it is in the side panel, not a chart.
        assert grid.groups == [("lr",), ("train_loss", "val_loss"), ("val_acc",)]
        assert [cell.keys for cell in grid.cells] == grid.groups
        assert [t.split(" ")[0] for t in titles(grid)] == ["lr", "train_loss", "val_acc"]
        assert "· val_loss " in titles(grid)[1]
        assert all(cell.border_title == cell._title for cell in grid.cells)
        xs, ys = grid.cells[1]._lines["val_loss"]
        assert xs[-1] == STEPS and len(xs) <= 150  # downsampled for a small chart
        assert grid._grid.styles.grid_size_columns == 3
        assert grid.display and not screen.query_one("#metric-chart").display

        progress = screen.query_one("#run-progress", RunProgress)
        await wait_for(pilot, lambda: progress.progress is not None, what="the progress")
        text = plain(progress)
        assert "step 120/300 · 40% · ETA " in text, text
        assert 45 <= progress.progress.eta <= 90  # 2 steps/s, 180 to go, less the time since

        # Arrows and k move the selection; the grid shows which.
        assert screen.key == "lr" and grid.cells[0].has_class("-selected")
        await pilot.press("right")
        assert screen.key == "train_loss" and grid.cells[1].has_class("-selected")
        await pilot.press("k")
        assert screen.key == "val_acc"
        await pilot.press("K")
        assert screen.key == "train_loss"


async def test_focused_chart_zooms_smooths_and_takes_a_log_scale(runs):
    app = WorkbenchApp(Settings())
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_run(pilot, app, runs["running"])
        grid = screen.query_one("#metric-grid", MetricGrid)
        await wait_for(pilot, lambda: len(grid.cells) == 3, what="the charts")
        await pilot.press("right", "enter")
        chart = screen.query_one("#metric-chart", SeriesChart)
        assert screen.focus_mode and chart.display and not grid.display
        await wait_for(pilot, lambda: chart.keys == ("train_loss", "val_loss"), what="the pair")
        assert chart._title.startswith("train_loss  (with val_loss · 120 points · z: all")
        raw = chart._lines["train_loss"]
        assert len(raw[0]) == STEPS

        await pilot.press("s")
        assert chart.smoothing == 0.6 and "EMA 0.6" in chart._title
        smoothed = chart._lines["train_loss"][1]
        assert smoothed != raw[1] and smoothed[0] == pytest.approx(raw[1][0])
        await pilot.press("l")
        assert chart.log_y and "l: log" in chart._title
        await pilot.press("s", "s", "s")  # 0.9, 0.99, then raw again
        assert chart.smoothing == 0 and chart._lines["train_loss"] == raw

        await pilot.press("z", "z")  # the last 100 steps
        await wait_for(pilot, lambda: "z: last 100 " in chart._title, what="the zoom")
        xs, _ = chart._lines["train_loss"]
        assert xs[0] == STEPS - 99 and xs[-1] == STEPS and "last 100 points" in chart._title
        await pilot.press("z")
        await wait_for(pilot, lambda: len(chart._lines["train_loss"][0]) == STEPS, what="all")

        await pilot.press("escape")  # back to the grid, still on the run
        assert not screen.focus_mode and grid.display and app.screen is screen
        await pilot.press("z")  # the focused chart's keys do nothing in the grid
        assert screen.zoom == 0
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))


async def test_progress_from_a_logged_total_and_none_without_a_total(runs):
    app = WorkbenchApp(Settings())
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_run(pilot, app, runs["counted"])
        progress = screen.query_one("#run-progress", RunProgress)
        await wait_for(pilot, lambda: progress.progress is not None, what="the progress")
        assert plain(progress).endswith("step 20/50 · 40%")  # finished: no ETA
        assert progress.display
        # 80 columns: the footer keeps the main keys and help.
        main = {"enter", "x", "slash", "f", "escape", "question_mark"}
        await wait_for(
            pilot, lambda: main <= {k.key for k in app.screen.query(FooterKey)}, what="the keys"
        )
        await pilot.press("escape")

        screen = await open_run(pilot, app, runs["plain"])
        progress = screen.query_one("#run-progress", RunProgress)
        grid = screen.query_one("#metric-grid", MetricGrid)
        await wait_for(pilot, lambda: len(grid.cells) == 1, what="the chart")
        assert progress.progress is None and not progress.display
        assert not re.search(r"step \d", plain(progress))

        await pilot.press("question_mark")
        help_screen = await wait_for(
            pilot, lambda: isinstance(app.screen, HelpScreen) and app.screen
        )
        text = "\n".join(plain(s) for s in help_screen.query("Static"))
        for binding in ("run.focus", "run.zoom", "run.smooth", "run.log_scale", "run.chart_down"):
            assert binding in text
