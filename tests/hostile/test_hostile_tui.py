"""Hostile input the terminal UI reads or is typed into it.

Param values typed into the start form (checked against the param's type before
anything is started), stored data reports another process wrote (the Data
screen's rejection reason), and `[keys]` ids in config.toml: each is refused or
summed up in one line, never raised from, never executed.
"""

from __future__ import annotations

import json

import pytest

from workbench.tui.app import unknown_key_ids
from workbench.tui.reads import _reason
from workbench.tui.screens.forms import type_problem

# (the param's value in workbench.toml, what was typed, why it is refused)
TYPED = [
    (200, "abc", "letters for an integer"),
    (200, "1.5", "a float for an integer"),
    (200, "true", "a boolean for an integer"),
    (200, "9" * 5000, "an integer of 5000 digits (Python refuses to parse it)"),
    (200, "[1, 2]", "an array for an integer"),
    (200, "{ a = 1 }", "a table for an integer"),
    (200, '"200"', "a quoted string for an integer"),
    (200, "1e400", "an overflowing float for an integer"),
    (200, "__import__('os').system('true')", "code for an integer"),
    (0.1, "nan-ish", "text for a number"),
    (0.1, "0x", "a broken hex literal for a number"),
    (0.1, "2026-12-02", "a date for a number"),
    (True, "1", "a number for a boolean"),
    (True, "yes", "a word for a boolean"),
    (True, "\x00", "a NUL byte for a boolean"),
    (200, '"unterminated', "an unterminated string for an integer"),
]


@pytest.mark.parametrize("default, text, why", TYPED, ids=[c[2] for c in TYPED])
def test_start_form_refuses_a_value_of_the_wrong_type(default, text, why):
    problem = type_problem(default, text)
    assert problem and "\n" not in problem and "expected" in problem, why
    assert len(problem) < 20_000


# (what another process stored as a report, what the reason must contain)
REPORTS = [
    ("not json {", "unreadable report"),
    ("[]", "failed validation"),
    ("null", "failed validation"),
    (json.dumps({"checks": "not a list"}), "failed validation"),
    (json.dumps({"checks": [None, 3, "x"]}), "failed validation"),
    (json.dumps({"checks": [{"passed": False, "message": "a\nb\tc"}]}), "a b c"),
    (json.dumps({"checks": [{"passed": False, "message": ["x"] * 3}]}), "x"),
    (json.dumps({"checks": [{"passed": False, "message": "[red]x[/]"}]}), "[red]x[/]"),
]


@pytest.mark.parametrize("stored, expected", REPORTS, ids=[f"report-{i}" for i in range(8)])
def test_stored_rejection_reports_give_one_line(stored, expected):
    reason = _reason(stored)
    assert expected in reason and "\n" not in reason


KEYS = [
    {"project.strat": "s"},
    {"": "s"},
    {"x" * 10_000: "s"},
    {"app.quit; rm -rf /": "q"},
    {"../../etc/passwd": "p"},
]


@pytest.mark.parametrize("keys", KEYS, ids=[f"keys-{i}" for i in range(5)])
def test_unknown_key_ids_are_named_not_applied(keys):
    assert unknown_key_ids({**keys, "project.start": "ctrl+n"}) == sorted(keys)


# A run's log is whatever the user's script printed, and the search text is
# typed: (log bytes, what is searched, how many lines must match, why).
LOGS = [
    (b"[red]x[/]\n[bold]y\n", "[red]", 1, "markup in the log is shown, and searched, literally"),
    (b"a [link=file:///etc/passwd]b[/link]\n", "[link=", 1, "a markup link is text"),
    (b"aaa\n(b\n.*\n", ".*", 1, "regex characters are searched literally"),
    (b"x\n(\n", "(", 1, "an unbalanced parenthesis is plain text"),
    (b"\xff\xfe bad bytes\nok\n", "bad bytes", 1, "invalid UTF-8 is replaced, not raised"),
    (b"one\r\ntwo\r\n", "two", 1, "carriage returns do not shift the lines"),
    (b"long " + b"z" * 100_000 + b"\nshort\n", "short", 1, "a 100k-character line"),
    (b"a\tb\n", "x" * 5000, 0, "a 5000-character search finds nothing"),
]


@pytest.mark.parametrize("content, text, count, why", LOGS, ids=[c[3] for c in LOGS])
async def test_hostile_logs_and_searches_are_shown_literally(
    content, text, count, why, wb_home, tmp_path, monkeypatch
):
    from textual.widgets import Input, RichLog
    from tui_support import use_fixed_system_sampler, wait_for

    from workbench.config.settings import Settings
    from workbench.core import paths
    from workbench.store import open_store
    from workbench.tui.app import WorkbenchApp
    from workbench.tui.screens.home import HomeScreen
    from workbench.tui.screens.run import RunScreen

    use_fixed_system_sampler(monkeypatch)
    store = open_store()
    with store.write() as conn:
        project = conn.execute(
            "INSERT INTO projects (name, path, created_at) VALUES ('h', ?, 0)", (str(tmp_path),)
        ).lastrowid
        run_id = conn.execute(
            "INSERT INTO runs (project_id, status, trainer, created_at) VALUES (?, 'failed',"
            " 'script', 0)",
            (project,),
        ).lastrowid
    store.close()
    log_file = paths.run_log(run_id)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.write_bytes(content)
    lines = content.decode("utf-8", errors="replace").rstrip("\n").split("\n")
    app = WorkbenchApp(Settings())
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))
        app.open_run(run_id)
        screen = await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen)
        log = await wait_for(pilot, lambda: screen.query_one("#run-log", RichLog))
        await wait_for(pilot, lambda: len(log.lines) == len(lines), what="the log")
        screen.query_one("#log-search", Input).value = text
        await pilot.press("slash", "enter")
        await wait_for(pilot, lambda: screen.search_text == text.lower(), what="the search")
        assert len(screen.matches) == count, why
        assert len(log.lines) == len(lines) == len(screen.log_lines), why
        shown = "\n".join(line.text for line in log.lines)
        expected = [line.replace("\r", "").expandtabs(8)[:50] for line in lines]
        assert all(line in shown for line in expected), why  # literally
        assert isinstance(app.screen, RunScreen)  # nothing raised
    assert log_file.read_bytes() == content  # the log is only read
