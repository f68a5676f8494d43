"""Snapshots of the four main screens, built from real trained runs of the
sample projects. What varies from one machine or one day to the next (times,
durations, resource samples, the environment, folder paths, the machine's
CPU/RAM) is pinned first, so the pictures are the same everywhere.

Regenerate after an intended UI change with
`pytest tests/test_tui_snapshots.py --snapshot-update` and review the SVGs."""

from __future__ import annotations

import dataclasses

import json
import time
from pathlib import Path

import pytest
from textual.widgets import Label
from tui_support import (
    CANCER_RUNS,
    copy_trained,
    plain,
    sql,
    trained_template,
    use_fixed_system_sampler,
    wait_for,
)

from workbench.tui import reads
from workbench.tui.app import make_app

pytestmark = pytest.mark.slow  # trains the sample projects

T0 = 1_750_000_000.0  # 2025-06-15 15:06:40 UTC: runs start here
NOW = T0 + 7_200  # what the screens take for "now"
ENVIRONMENT = {
    "python": "3.12.3",
    "platform": "Linux-6.8.0-x86_64-with-glibc2.39",
    "hostname": "workstation",
    "cpu": {"model": "AMD Ryzen 9 7950X 16-Core Processor", "cores": 32},
    "memory_total": 68_719_476_736,
    "gpus": [],
    "libraries": {"workbench-mlops": "0.1.0", "numpy": "2.1.3", "scikit-learn": "1.6.1"},
    "git": None,
    "seeds": {"seed": 0, "split_seed": 42},
}
CPU = (85.0, 132.5, 148.0, 121.0, 96.5, 40.0)  # percent, one sample every 0.5 s
RSS_MIB = (120, 185, 210, 224, 226, 150)


def pin_store(home: Path) -> None:
    """Fixed times, durations, resource samples and environment for every run."""
    sql(home, "UPDATE projects SET created_at = ?", (T0 - 3600,))
    sql(home, "UPDATE events SET ts = ? + id * 45", (T0,))
    sql(
        home,
        "UPDATE runs SET created_at = ? + id * 600, started_at = ? + id * 600 + 1,"
        " ended_at = ? + id * 600 + 1 + 3.5 + id * 1.25, cpu_time_s = 4.2 + id,"
        " max_rss_bytes = 226 * 1048576, environment = ?",
        (T0, T0, T0, json.dumps(ENVIRONMENT)),
    )
    sql(home, "UPDATE runs SET heartbeat_at = ended_at")
    sql(home, "DELETE FROM resource_samples")
    for run_id in range(1, 5):
        for i, (cpu, rss) in enumerate(zip(CPU, RSS_MIB, strict=True)):
            sql(
                home,
                "INSERT INTO resource_samples (run_id, ts, cpu_percent, rss_bytes, num_threads,"
                " num_procs) VALUES (?, ? + ? * 600 + 1 + ? * 0.5, ?, ?, 4, 1)",
                (run_id, T0, run_id, i, cpu, rss * 1048576),
            )


@pytest.fixture
def pinned(tmp_path_factory, wb_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A copy of the trained store with everything that varies pinned."""
    copy_trained(trained_template(tmp_path_factory), wb_home, tmp_path)
    pin_store(wb_home)
    monkeypatch.setattr(time, "time", lambda: NOW)
    use_fixed_system_sampler(monkeypatch)
    real_snapshot = reads.home_snapshot

    def home_snapshot():
        snapshot = real_snapshot()
        return dataclasses.replace(  # the test's tmp folder, shown stable
            snapshot,
            projects=[
                dataclasses.replace(p, path="~/projects/" + Path(p.path).name, missing=False)
                for p in snapshot.projects
            ],
        )

    monkeypatch.setattr(reads, "home_snapshot", home_snapshot)


async def settle(pilot, ready, what: str, timeout: float = 20) -> None:
    """Wait for the screen's data, then make every table draw itself afresh.

    Textual's DataTable (8.2) caches rendered cells by an update counter that
    the idle-time column-width pass does not bump, so a table painted between
    `add_row` and that pass keeps its cells clipped to the header widths (see
    Textualize/textual#3533). Whether that paint happens depends on timing;
    a resize bumps the counter, so the picture no longer does."""
    await wait_for(pilot, ready, timeout, what)
    width, height = pilot.app.size
    await pilot.resize_terminal(width + 10, height)
    await pilot.pause(0.1)
    await pilot.resize_terminal(width, height)
    await pilot.pause(0.2)


def test_home(pinned, snap_compare):
    async def loaded(pilot):
        screen = pilot.app.screen
        await settle(
            pilot,
            lambda: (
                screen.query_one("#projects").row_count == 3
                and screen.query_one("#activity").row_count >= 10
                and plain(screen.query_one("#cpu-label", Label)) == "CPU 37%"
            ),
            "the projects, activity and one system sample",
        )

    assert snap_compare(make_app(), terminal_size=(100, 30), run_before=loaded)


def test_project(pinned, snap_compare):
    async def loaded(pilot):
        await settle(
            pilot,
            lambda: (
                pilot.app.screen.query_one("#runs").row_count == 2
                and "best: run" in plain(pilot.app.screen.query_one("#project-summary", Label))
            ),
            "the cancer runs",
        )

    assert snap_compare(make_app(open_project="cancer"), terminal_size=(100, 30), run_before=loaded)


def test_run(pinned, snap_compare):
    async def loaded(pilot):
        pilot.app.open_run(CANCER_RUNS[0])
        await pilot.pause()
        screen = pilot.app.screen
        await settle(
            pilot,
            lambda: (
                len(screen.query_one("#run-log").lines) == 31
                and "succeeded" in plain(screen.query_one("#run-status", Label))
                and screen.query_one("#metric-chart")._title.startswith(screen.key)
            ),
            "the run's log, status and chart",
        )

    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=loaded)


def test_compare(pinned, snap_compare):
    async def loaded(pilot):
        pilot.app.open_compare(list(CANCER_RUNS))
        await pilot.pause()
        screen = pilot.app.screen
        await settle(
            pilot,
            lambda: screen.query_one("#compare-table").row_count > 10 and screen.key,
            "the comparison",
        )
        await pilot.press("m", "m", "m", "m")  # accuracy, f1, log_loss, roc_auc -> train_loss
        await settle(
            pilot,
            lambda: screen.query_one("#compare-chart")._title.startswith("train_loss"),
            "the train_loss chart",
        )

    assert snap_compare(make_app(), terminal_size=(100, 30), run_before=loaded)
