"""Applies the schema steps through sqlite-utils' `Migrations` (parent processes only)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from workbench.store.metrics import pack_rows
from workbench.store.schema import STEPS

# Steps that end with work SQL cannot do, in the same transaction.
FINISH: dict[str, Callable[[sqlite3.Connection], None]] = {"m010_metric_chunks": pack_rows}


def build() -> Migrations:
    migrations = Migrations("workbench")
    for name, script in STEPS.items():
        migrations(name=name)(_step(script, FINISH.get(name)))
    return migrations


def _step(
    script: str, finish: Callable[[sqlite3.Connection], None] | None = None
) -> Callable[[Database], None]:
    def run_script(db: Database) -> None:
        for statement in statements(script):
            db.execute(statement)
        if finish is not None:
            finish(db.conn)

    return run_script


def statements(script: str) -> list[str]:
    """Split a script into complete statements; SQLite's own tokenizer decides, so
    ';' inside comments, strings and trigger bodies does not split."""
    out, buffer = [], ""
    for char in script:
        buffer += char
        if char == ";" and sqlite3.complete_statement(buffer):
            out.append(buffer.strip())
            buffer = ""
    buffer = "\n".join(line for line in buffer.splitlines() if not line.strip().startswith("--"))
    if buffer.strip():
        raise ValueError(f"incomplete SQL statement: {buffer.strip()[:80]}")
    return out


def apply(db: Database) -> None:
    build().apply(db)
