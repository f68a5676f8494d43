"""Applies the schema steps through sqlite-utils' `Migrations` (parent processes only)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from workbench.store.schema import STEPS


def build() -> Migrations:
    migrations = Migrations("workbench")
    for name, script in STEPS.items():
        migrations(name=name)(_step(script))
    return migrations


def _step(script: str) -> Callable[[Database], None]:
    def run_script(db: Database) -> None:
        for statement in statements(script):
            db.execute(statement)

    return run_script


def statements(script: str) -> list[str]:
    """Split a script into complete statements (comments may hold ';')."""
    out, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            out.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        raise ValueError(f"incomplete SQL statement: {buffer.strip()[:80]}")
    return out


def apply(db: Database) -> None:
    build().apply(db)
