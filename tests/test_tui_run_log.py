"""The run screen's log: `/` searches it (matches marked, n/N between them),
`f` follows the tail or holds the view still; the state shows above the log."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, Label, RichLog
from tui_support import plain, use_fixed_system_sampler, wait_for

from workbench.config.settings import Settings
from workbench.core import paths
from workbench.store import open_store
from workbench.tui.app import WorkbenchApp
from workbench.tui.screens.help import HelpScreen
from workbench.tui.screens.home import HomeScreen
from workbench.tui.screens.run import MATCH_STYLE, RunScreen

SIZE = (100, 30)
NEEDLES = (40, 120, 170)  # the lines that mention the needle


@pytest.fixture
def run_id(wb_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """A finished run with a 200-line log (the store and the log file written
    directly: what a supervised run leaves behind)."""
    use_fixed_system_sampler(monkeypatch)
    store = open_store()
    with store.write() as conn:
        project = conn.execute(
            "INSERT INTO projects (name, path, created_at) VALUES ('logs', ?, 0)",
            (str(tmp_path),),
        ).lastrowid
        found = conn.execute(
            "INSERT INTO runs (project_id, status, trainer, created_at, started_at, ended_at,"
            " exit_code) VALUES (?, 'succeeded', 'script', 0, 1, 2, 0)",
            (project,),
        ).lastrowid
    store.close()
    log = paths.run_log(found)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(
        "".join(
            f"step {i} {'the Needle moved' if i in NEEDLES else 'nothing'}\n" for i in range(200)
        )
    )
    return int(found)


def append(run_id: int, lines: int, start: int) -> None:
    with paths.run_log(run_id).open("a") as fh:
        fh.writelines(f"more {i}\n" for i in range(start, start + lines))


async def open_run(pilot, app: WorkbenchApp, run_id: int) -> tuple[RunScreen, RichLog]:
    await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))
    app.open_run(run_id)
    screen = await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen)
    log = await wait_for(pilot, lambda: screen.query_one("#run-log", RichLog))
    await wait_for(pilot, lambda: len(log.lines) == 200, what="the log")
    return screen, log


def state(screen: RunScreen) -> str:
    return plain(screen.query_one("#log-state", Label))


def marked(log: RichLog, line: int) -> bool:
    """Whether a line of the view carries the match style."""
    return any(
        segment.style is not None and str(segment.style) == MATCH_STYLE
        for segment in log.lines[line]
    )


async def test_search_marks_matches_and_n_and_shift_n_move_between_them(run_id):
    app = WorkbenchApp(Settings())
    async with app.run_test(size=SIZE) as pilot:
        screen, log = await open_run(pilot, app, run_id)
        assert "/: search" in state(screen)
        await pilot.press("slash")
        box = screen.query_one("#log-search", Input)
        assert box.has_focus
        await pilot.press(*"needle", "enter")  # any case finds it
        await wait_for(pilot, lambda: "match 1 of 3" in state(screen), what="the first match")
        assert screen.matches == list(NEEDLES)
        assert [i for i in range(len(log.lines)) if marked(log, i)] == list(NEEDLES)
        top = log.scroll_y
        assert top <= NEEDLES[0] < top + log.size.height  # the match is in view

        await pilot.press("n")
        await wait_for(pilot, lambda: "match 2 of 3" in state(screen))
        assert log.scroll_y <= NEEDLES[1] < log.scroll_y + log.size.height
        await pilot.press("N", "N")  # back past the first: wraps to the last
        await wait_for(pilot, lambda: "match 3 of 3" in state(screen))
        assert log.scroll_y <= NEEDLES[2] < log.scroll_y + log.size.height
        assert "held here" in state(screen)  # a match stays put as lines come

        await pilot.press("escape")  # clears the search, stays on the run
        await wait_for(pilot, lambda: "search" not in state(screen).split("/:")[0])
        assert isinstance(app.screen, RunScreen)
        assert not any(marked(log, i) for i in range(len(log.lines)))
        assert len(log.lines) == 200
        await pilot.press("escape")  # and then goes back
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))


async def test_a_search_without_matches_says_so(run_id):
    app = WorkbenchApp(Settings())
    async with app.run_test(size=SIZE) as pilot:
        screen, log = await open_run(pilot, app, run_id)
        await pilot.press("slash", *"haystack", "enter")
        await wait_for(pilot, lambda: "0 matches" in state(screen), what="no match")
        await pilot.press("n")
        notes = [str(n.message) for n in app._notifications]
        assert any("'haystack'" in n for n in notes), notes


async def test_f_holds_the_view_then_follows_the_tail_again(run_id):
    app = WorkbenchApp(Settings())
    async with app.run_test(size=SIZE) as pilot:
        screen, log = await open_run(pilot, app, run_id)
        await wait_for(pilot, lambda: log.scroll_y >= log.max_scroll_y > 0, what="at the end")
        assert "following the tail" in state(screen)

        await pilot.press("f")
        assert "held here" in state(screen)
        held = log.scroll_y
        append(run_id, 40, 0)
        await wait_for(pilot, lambda: len(log.lines) == 240, what="new lines")
        await pilot.pause(0.1)
        assert log.scroll_y == held < log.max_scroll_y  # the view did not move

        await pilot.press("f")
        assert "following the tail" in state(screen)
        await wait_for(pilot, lambda: log.scroll_y >= log.max_scroll_y, what="at the end")
        append(run_id, 40, 40)
        await wait_for(pilot, lambda: len(log.lines) == 280, what="more lines")
        await wait_for(pilot, lambda: log.scroll_y >= log.max_scroll_y, what="following")

        log.scroll_to(y=5, animate=False, immediate=True)
        await wait_for(pilot, lambda: "scrolled up" in state(screen), what="the scroll noticed")


async def test_help_lists_the_log_keys(run_id):
    app = WorkbenchApp(Settings())
    async with app.run_test(size=SIZE) as pilot:
        await open_run(pilot, app, run_id)
        await pilot.press("question_mark")
        help_screen = await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen) and app.screen)
        text = "\n".join(plain(s) for s in help_screen.query("Static"))
        for words in ("Search log", "Next match", "Prev match", "Follow log"):
            assert words in text
        assert "run.follow" in text


def rows_with(log: RichLog, text: str) -> list[int]:
    return [i for i, strip in enumerate(log.lines) if text in strip.text]


async def test_e_jumps_to_the_first_error_and_w_wraps_long_lines(run_id):
    lines = [f"step {i} nothing" for i in range(200)]
    lines[30] = "x" * 450  # four rows or more once wrapped
    lines[90] = "Traceback (most recent call last):"
    lines[91] = "ValueError: the first error"
    lines[150] = "ERROR again"
    lines[10] = "valid_0 multi_error: 0.12"  # a metric's name, not an error
    paths.run_log(run_id).write_text("\n".join(lines) + "\n")
    app = WorkbenchApp(Settings())
    async with app.run_test(size=SIZE) as pilot:
        screen, log = await open_run(pilot, app, run_id)
        await pilot.press("e")
        assert "first error: line 91" in state(screen) and not screen.follow
        assert log.scroll_y <= 90 < log.scroll_y + log.size.height

        await pilot.press("w")
        assert log.wrap and "wrapped" in state(screen)
        await wait_for(pilot, lambda: len(log.lines) >= 203, what="the long line wrapped")
        assert "x" * 20 in log.lines[31].text  # the long line goes on in the next row
        await pilot.press("e")
        (row,) = rows_with(log, "Traceback")
        assert row > 90  # the long line's rows come before it
        assert log.scroll_y <= row < log.scroll_y + log.size.height

        await pilot.press("w")
        await wait_for(pilot, lambda: len(log.lines) == 200, what="one row a line again")
        assert not log.wrap and "wrapped" not in state(screen)
        assert rows_with(log, "Traceback") == [90]
        await pilot.press("f")  # following again: the error mark goes
        assert "first error" not in state(screen)


async def test_e_without_an_error_says_so(run_id):
    app = WorkbenchApp(Settings())
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen, log = await open_run(pilot, app, run_id)
        await pilot.press("e")
        notes = [str(n.message) for n in app._notifications]
        assert any("No error" in n for n in notes), notes
        assert screen.follow
