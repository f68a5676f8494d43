"""`run compare` and the Compare screen given what someone else wrote: params
and metric names that look like Rich markup, an evaluation file that claims to
be Parquet and is not, metrics that diverged to inf and NaN. Shown as text,
counted as unknown, left out of charts: never a traceback."""

from __future__ import annotations

import json
import math

import pytest
from textual.markup import to_content
from tui_support import row, row_keys, use_fixed_system_sampler, wait_for
from wbtest import wb_inprocess

import workbench as wb
from workbench.templates import init_project
from workbench.tui.app import make_app
from workbench.tui.screens.compare import CompareScreen
from workbench.tui.screens.home import HomeScreen
from workbench.tui.widgets.compare_chart import CompareChart


# Logging inf and NaN is the point here: the tracking API's warning about it is expected.
pytestmark = pytest.mark.filterwarnings("ignore::workbench.tracking.MetricWarning")


@pytest.fixture
def crafted(tmp_path) -> list[int]:
    folder = init_project(tmp_path / "p", "script")
    fake = tmp_path / "holdout.parquet"
    fake.write_bytes(b"PAR1" + b"\xff" * 64 + b"PAR1")  # the magic at both ends, no footer
    ids = []
    for value in (float("inf"), float("nan"), 0.5):
        params = {"[bold red]lr": "[link=file:///etc]x[/link]", "seed": 0}
        with wb.start_run(project=folder, params=params) as run:
            wb.log_metrics({"[red]loss": value, "accuracy": value})
            for step in range(1, 4):
                wb.log_metric("val_accuracy", value * step, step=step)
            wb.log_artifact(fake, kind="evaluation")
            ids.append(run.id)
    return ids


def test_cli_shows_markup_as_text_and_a_broken_evaluation_file_without_rows(crafted):
    ids = [str(i) for i in crafted]
    shown = wb_inprocess("run", "compare", *ids, "--baseline", ids[2])
    assert shown.returncode == 0, shown.stderr
    assert "Traceback" not in shown.stderr
    assert "[bold red]lr" in shown.stdout and "[link=file:///etc]x[/link]" in shown.stdout
    assert "[red]loss" in shown.stdout
    evaluation = next(line for line in shown.stdout.splitlines() if "eval set" in line)
    assert "artifact" in evaluation and "rows" not in evaluation
    doc = json.loads(wb_inprocess("run", "compare", *ids, "--json", check=True).stdout)
    assert [r["evaluation"]["rows"] for r in doc["runs"]] == [None, None, None]
    # inf and NaN are no value (JSON has none) and no delta.
    assert doc["deltas"] == {}
    judged = json.loads(
        wb_inprocess("run", "compare", *ids, "--baseline", ids[2], "--json", check=True).stdout
    )
    assert judged["versus_baseline"]["accuracy"] == [None, None, "same"]
    assert judged["best"]["accuracy"] in (crafted[0], crafted[2])  # never the NaN run


async def test_screen_draws_only_finite_values_and_shows_markup_as_text(crafted, monkeypatch):
    use_fixed_system_sampler(monkeypatch)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen), what="home")
        app.open_compare(crafted)
        screen = await wait_for(
            pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen
        )
        await wait_for(
            pilot,
            lambda: "metric:[red]loss" in row_keys(screen.query_one("#compare-table")),
            what="the rows",
        )
        grid = screen.query_one("#compare-table")
        assert row(grid, "param:[bold red]lr")[1] == "[link=file:///etc]x[/link]"
        chart = screen.query_one(CompareChart)
        await wait_for(pilot, lambda: len(chart.curves) == 3, what="the curves")
        await pilot.press("M")  # accuracy: one value per run, two of them not finite
        await wait_for(pilot, lambda: chart.mode == "values", what="the point chart")
        text = str(chart.render())
        assert "0.5" in text and "inf" not in text.lower()
        first = chart.values[0].value
        assert first is None or not math.isfinite(first)
        await pilot.press("m", "m")  # val_accuracy, then the key that looks like markup
        await wait_for(pilot, lambda: "loss" in chart._title, what="the [red]loss chart")
        assert to_content(chart._title).plain.startswith("[red]loss ↓")
