"""The app's poll cycle: runs are reconciled (lost marked, queued dispatched)
once per poll, before the screen's reads, and the reads themselves only read."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from tui_support import notifications, use_fixed_system_sampler, wait_for

from workbench.config.settings import Settings
from workbench.store import open_store
from workbench.tui import reads
from workbench.tui.app import WorkbenchApp
from workbench.tui.screens.home import HomeScreen


@pytest.fixture(autouse=True)
def migrated_store(wb_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    open_store().close()
    use_fixed_system_sampler(monkeypatch)


async def test_each_poll_reconciles_once_then_reads(monkeypatch: pytest.MonkeyPatch):
    calls: list[str] = []
    lock = threading.Lock()
    real_reconcile, real_home = reads.reconcile, reads.home_snapshot

    def reconcile() -> None:
        with lock:
            calls.append("reconcile")
        real_reconcile()

    def home_snapshot() -> reads.HomeSnapshot:
        with lock:
            calls.append("read")
        return real_home()

    monkeypatch.setattr(reads, "reconcile", reconcile)
    monkeypatch.setattr(reads, "home_snapshot", home_snapshot)
    app = WorkbenchApp(Settings())
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))
        await wait_for(pilot, lambda: calls.count("reconcile") >= 3, what="three polls")
        app.screen.action_refresh()  # a poll asked for by a key: the same cycle
        await wait_for(pilot, lambda: calls.count("read") >= 2, what="the refresh")
    with lock:
        seen = list(calls)
    # Every read is preceded by exactly one reconciliation of its own (a poll
    # that finds the store unchanged reconciles and skips its read).
    assert seen[0] == "reconcile", seen
    assert all(
        before == "reconcile" for before, call in zip(seen, seen[1:]) if call == "read"
    ), seen


async def test_a_failing_reconciliation_is_said_and_the_screen_still_shows(
    monkeypatch: pytest.MonkeyPatch,
):
    def broken() -> None:
        raise RuntimeError("queue lock unavailable")

    monkeypatch.setattr(reads, "reconcile", broken)
    app = WorkbenchApp(Settings())
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(
            pilot,
            lambda: any("queue lock unavailable" in n for n in notifications(app)),
            what="the toast",
        )
        screen = app.screen
        assert isinstance(screen, HomeScreen)
        hint = await wait_for(pilot, lambda: str(screen.query_one("#home-empty").render()))
        assert "No projects yet" in hint
