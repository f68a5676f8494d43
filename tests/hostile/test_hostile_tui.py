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
