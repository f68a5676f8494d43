"""The Compare screen: it opens on the project's primary metric (its learning
curve when the runs have one), overlays runs of very different lengths on a
shared x axis (steps or fraction of training) with a zoom, draws one-value
metrics as a point per run on a real axis, hides identical params, pins a
baseline run and shows deltas against it, shows each run's data versions and
evaluation set, and takes any number of runs.

Runs are made in this process through the tracking API (no training)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from textual.command import CommandPalette
from textual.widgets import Static
from textual.widgets._footer import FooterKey
from tui_support import cell_text, plain, row, row_keys, sql, use_fixed_system_sampler, wait_for

import workbench as wb
from workbench.data.versions import link_run, register
from workbench.store import open_store
from workbench.templates import init_project
from workbench.tui.app import make_app
from workbench.tui.screens.compare import CompareScreen
from workbench.tui.screens.help import HelpScreen
from workbench.tui.screens.home import HomeScreen
from workbench.tui.widgets.compare_chart import PALETTE, CompareChart, colour, swatch
from workbench.tui.widgets.synced_table import SyncedTable

T0 = 1_750_000_000.0


def _holdout(path: Path, rows: int) -> Path:
    pd.DataFrame({"x": range(rows), "y": [i % 2 for i in range(rows)]}).to_parquet(path)
    return path


def make_runs(tmp_path: Path, count: int = 2) -> list[int]:
    """`count` runs of project `p` (primary metric accuracy). The first logs
    6,000 steps of val_accuracy, the second 150, the others 40; every run logs
    a final accuracy (0.90, 0.95, then down by 0.01) and rmse, lr (the second
    run differs) and seed (the same); the first two share a data version and
    hold-out, the others have their own data version."""
    folder = init_project(tmp_path / "p", "script")
    train = folder / "data" / "train.csv"
    other = tmp_path / "more.csv"
    other.write_text(train.read_text() + train.read_text().split("\n", 1)[1])
    shared = _holdout(tmp_path / "holdout.parquet", 30)
    ids = []
    for i in range(count):
        steps = (6000, 150)[i] if i < 2 else 40
        accuracy = (0.90, 0.95)[i] if i < 2 else 0.89 - i / 100
        params = {"lr": 0.01 if i == 1 else 0.1, "seed": 0}
        with wb.start_run(project=folder, params=params) as run:
            for step in range(1, steps + 1):
                wb.log_metric("val_accuracy", accuracy * (1 - 0.5 / step), step=step)
            wb.log_metrics({"accuracy": accuracy, "rmse": 1 - accuracy})
            holdout = shared if i < 2 else _holdout(tmp_path / f"holdout{i}.parquet", 20 + i)
            wb.log_artifact(holdout, kind="evaluation")
            ids.append(run.id)
    store = open_store()
    try:
        project = store.scalar("SELECT id FROM projects WHERE name = 'p'")
        versions = [register(store, project, train)["id"], register(store, project, other)["id"]]
        for i, run_id in enumerate(ids):
            link_run(store, run_id, versions[0 if i < 2 else 1])
    finally:
        store.close()
    return ids


@pytest.fixture
def two_runs(tmp_path, wb_home, monkeypatch) -> list[int]:
    use_fixed_system_sampler(monkeypatch)
    return make_runs(tmp_path, 2)


async def open_compare(pilot, run_ids: list[int]) -> CompareScreen:
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen), what="home")
    app.open_compare(run_ids)
    screen = await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen)
    await wait_for(
        pilot,
        lambda: screen.comparison is not None and screen.query_one(CompareChart).curves
        or screen.query_one(CompareChart).values,
        what="the comparison and its chart",
    )
    return screen


def chart(screen: CompareScreen) -> CompareChart:
    return screen.query_one("#compare-chart", CompareChart)


def table(screen: CompareScreen) -> SyncedTable:
    return screen.query_one("#compare-table", SyncedTable)


async def test_opens_on_the_primary_metrics_curve_with_uneven_runs_side_by_side(two_runs):
    long, short = two_runs
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_compare(pilot, two_runs)
        shown = chart(screen)
        # accuracy is the project's primary metric; val_accuracy its learning curve.
        assert screen.key == "val_accuracy"
        assert shown._title.startswith("val_accuracy ↑  x: fraction of training  z: all")
        # 6,000 steps beside 150: on the fraction axis both span the width.
        curves = {c.label: c for c in shown.curves}
        assert curves[f"run {long}"].xs[-1] == curves[f"run {short}"].xs[-1] == 1.0
        assert curves[f"run {short}"].xs[0] == pytest.approx(1 / 150)
        assert len(curves[f"run {long}"].xs) <= 300  # downsampled in the store
        assert len(curves[f"run {short}"].xs) == 150
        assert shown.xlim == (0.0, 1.0)
        legend = plain(screen.query_one("#compare-runs", Static))
        assert f"{long} (6000)" in legend and f"{short} (150)" in legend

        await pilot.press("x")  # steps: the real step numbers
        await wait_for(pilot, lambda: "x: steps" in shown._title, what="the steps axis")
        curves = {c.label: c for c in shown.curves}
        assert curves[f"run {long}"].xs[-1] == 6000 and curves[f"run {short}"].xs[-1] == 150

        await pilot.press("z")  # each run's last 1,000 steps: the short run whole
        await wait_for(pilot, lambda: "z: last 1000 steps" in shown._title, what="the zoom")
        curves = {c.label: c for c in shown.curves}
        assert curves[f"run {long}"].xs[0] > 5000 and len(curves[f"run {short}"].xs) == 150
        await pilot.press("z")
        await wait_for(pilot, lambda: "z: last 100 steps" in shown._title)
        assert {c.label: c for c in shown.curves}[f"run {short}"].xs[0] == 51

        await pilot.press("x", "z")  # back to the fraction axis, zoomed to its last 50 %
        await wait_for(pilot, lambda: "x: fraction of training  z: last 50%" in shown._title)
        assert shown.xlim == (0.5, 1.0)
        assert all(min(c.xs) >= 0.5 for c in shown.curves)


async def test_a_one_value_metric_is_a_point_per_run_and_the_keys_are_documented(two_runs):
    first, second = two_runs
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_compare(pilot, two_runs)
        shown = chart(screen)
        assert screen.keys[:2] == ["accuracy", "val_accuracy"]  # the primary metric first
        await pilot.press("M")  # the previous metric: accuracy, one value per run
        await wait_for(pilot, lambda: shown.mode == "values", what="the point chart")
        assert shown._title == "accuracy ↑  one value per run"
        assert [(v.label, v.value) for v in shown.values] == [
            (f"run {first}", 0.90),
            (f"run {second}", 0.95),
        ]
        # Steps and zoom mean nothing here: their keys are off.
        assert screen.check_action("x_axis", ()) is False
        assert screen.check_action("zoom", ()) is False
        # The axis is the values' own (padded), not -1..1.
        text = str(shown.render())
        assert "0.9" in text and "-1" not in text

        # Enter on a metric's row charts it.
        grid = table(screen)
        grid.move_cursor(row=row_keys(grid).index("metric:rmse"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: shown._title.startswith("rmse ↓"), what="rmse")
        assert [v.value for v in shown.values] == pytest.approx([0.10, 0.05])

        # Every key has an id and a description; help lists them; at 80
        # columns the footer keeps the main keys and help, within the width.
        ids = {b.id for b in CompareScreen.BINDINGS}
        assert all(b.id and b.description for b in CompareScreen.BINDINGS)
        main = {"m", "d", "b", "escape", "question_mark"}
        await wait_for(
            pilot, lambda: main <= {k.key for k in app.screen.query(FooterKey)}, what="keys"
        )
        assert max(k.region.right for k in app.screen.query(FooterKey)) <= 80
        await pilot.press("question_mark")
        help_screen = await wait_for(
            pilot, lambda: isinstance(app.screen, HelpScreen) and app.screen
        )
        text = plain(help_screen.query_one(Static))
        assert all(i in text for i in ids)
        await pilot.press("escape", "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))


async def test_diff_only_and_a_pinned_baseline_with_deltas_coloured_by_direction(two_runs):
    first, second = two_runs
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_compare(pilot, two_runs)
        grid = table(screen)
        await wait_for(pilot, lambda: "metric:rmse" in row_keys(grid), what="the metrics")
        # d: only the params that differ.
        assert row(grid, "param:lr") == ["* lr", "0.1", "0.01"]
        assert row(grid, "param:seed") == ["  seed", "0", "0"]
        await pilot.press("d")
        assert "param:seed" not in row_keys(grid) and "param:lr" in row_keys(grid)
        assert "1 same params hidden (d)" in plain(screen.query_one("#compare-legend"))
        await pilot.press("d")
        assert "param:seed" in row_keys(grid)
        # The same from the command palette.
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), what="the palette")
        await pilot.press(*"params that differ")
        await wait_for(
            pilot, lambda: app.screen.query_one("CommandList").option_count > 0, what="hits"
        )
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is screen and screen.diff_only)
        assert "param:seed" not in row_keys(grid)

        # Without a baseline, the best value of each metric is green.
        assert "green" in grid.get_row("metric:accuracy")[2]
        await pilot.press("b")  # on the names column: nothing to pin
        assert screen.baseline is None
        await pilot.press("right", "right")  # the second run's column
        await pilot.press("b")
        assert screen.baseline == second
        assert [str(c.label) for c in grid.ordered_columns][1:] == [
            f"run {first}",
            f"run {second} ◆ base",
        ]
        await wait_for(pilot, lambda: "(" in row(grid, "metric:accuracy")[1], what="deltas")
        # The first run's accuracy is 0.05 lower (worse: red), its rmse 0.05
        # higher (worse too, lower is better), against the baseline's plain values.
        accuracy = grid.get_row("metric:accuracy")
        assert cell_text(accuracy[1]) == "0.9 (-0.05)" and "red" in accuracy[1]
        assert cell_text(accuracy[2]) == "0.95" and "red" not in accuracy[2]
        rmse = grid.get_row("metric:rmse")
        assert cell_text(rmse[1]) == "0.1 (+0.05)" and "red" in rmse[1]
        assert "vs run" in plain(screen.query_one("#compare-legend"))
        assert f"{second}◆" in plain(screen.query_one("#compare-runs", Static))
        # The cursor stays on the baseline's column, where b unpins it.
        assert grid.cursor_coordinate.column == 2
        await pilot.press("b")
        assert screen.baseline is None
        await wait_for(pilot, lambda: "(" not in row(grid, "metric:accuracy")[1])
        assert "green" in grid.get_row("metric:accuracy")[2]

        # The cursor keeps its run's column while rows come and go.
        await pilot.press("d", "d")
        assert grid.cursor_coordinate.column == 2
        # Pinning the first run instead: the second is better on both.
        await pilot.press("left", "b")
        assert screen.baseline == first
        accuracy = grid.get_row("metric:accuracy")
        assert cell_text(accuracy[2]) == "0.95 (+0.05)" and "green" in accuracy[2]


async def test_any_number_of_runs_with_their_data_versions_and_evaluation_sets(
    tmp_path, wb_home, monkeypatch
):
    use_fixed_system_sampler(monkeypatch)
    ids = make_runs(tmp_path, 9)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_compare(pilot, ids)
        grid = table(screen)
        await wait_for(pilot, lambda: "data:train" in row_keys(grid), what="the data rows")
        # Each run's data version and evaluation set are rows of the table.
        keys = row_keys(grid)
        assert keys.index("data:train") < keys.index("evaluation") < keys.index("param:lr")
        data = row(grid, "data:train")
        assert data[0] == "* data train"  # from the third run on, other data
        assert data[1] == data[2] != data[3]
        assert data[1].endswith(" 178 rows") and data[3].endswith(" 356 rows")
        evaluation = row(grid, "evaluation")
        assert evaluation[0] == "* eval set"
        assert evaluation[1].startswith("artifact ") and evaluation[1].endswith(" 30 rows")
        assert evaluation[3].endswith(" 22 rows")
        assert "different eval sets" in plain(screen.query_one("#compare-legend"))

        # Nine runs: the table scrolls sideways, its names column kept.
        assert len(grid.columns) == 10 and grid.fixed_columns == 1
        assert grid.virtual_size.width > grid.size.width  # wider than the screen
        for _ in range(9):
            await pilot.press("right")
        await wait_for(pilot, lambda: grid.scroll_x > 0, what="the table to scroll")
        assert grid.cursor_coordinate.column == 9
        await pilot.press("b")
        assert screen.baseline == ids[-1]
        # Every run in the legend, colours cycling past the palette's end.
        legend = screen.query_one("#compare-runs", Static)
        text = plain(legend)
        assert all(f" {run_id}" in text for run_id in ids)
        assert legend.size.height <= 3
        assert swatch(8) == swatch(0) and colour(len(PALETTE)) == colour(0)
        assert len(chart(screen).curves) == 9


# Snapshots --------------------------------------------------------------------


def _pin(home: Path, ids: list[int]) -> None:
    for i, run_id in enumerate(ids):
        sql(
            home,
            "UPDATE runs SET created_at = ?, started_at = ?, ended_at = ? WHERE id = ?",
            (T0, T0 + i, T0 + i + 12.5 * (i + 1), run_id),
        )


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_snapshot(tmp_path, wb_home, monkeypatch, snap_compare, size):
    use_fixed_system_sampler(monkeypatch)
    ids = make_runs(tmp_path, 3)
    _pin(wb_home, ids)
    # A Parquet file's bytes (so its hash) depend on pyarrow's version.
    monkeypatch.setattr(
        "workbench.runs.compare.Evaluation.describe", lambda self: f"{self.kind} {self.rows} rows"
    )

    async def loaded(pilot):
        from test_tui_snapshots import settle

        screen = await open_compare(pilot, ids)
        await settle(
            pilot,
            lambda: table(screen).row_count >= 9 and len(chart(screen).curves) == 3,
            "the comparison",
        )
        if size == (120, 40):  # the first run pinned: the others' deltas against it
            await pilot.press("right", "b")
            # The header changed: the table was filled again, and measured at idle.
            await wait_for(pilot, lambda: "(" in row(table(screen), "metric:accuracy")[2])
            await pilot.pause(0.2)

    assert snap_compare(make_app(), terminal_size=size, run_before=loaded)
