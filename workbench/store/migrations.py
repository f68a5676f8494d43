"""Applies the schema steps through sqlite-utils' `Migrations` (parent processes only)."""

from __future__ import annotations

import contextlib
import sqlite3
import sys
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def _hidden(*names: str) -> Iterator[None]:
    """Modules not imported yet look missing inside the block (None in sys.modules
    makes their import fail), and are importable again after it."""
    hidden = [name for name in names if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name in hidden:
            if sys.modules.get(name) is None:
                del sys.modules[name]


# sqlite-utils imports pandas and numpy when it is imported, if they are installed, only
# to map their types for inserting values. The store inserts through sqlite3 and uses
# sqlite-utils for its migrations alone, and a new store's first command would spend
# most of its time importing them (0.6 of 0.8 CPU-s). A process that has imported them
# already keeps them in sqlite-utils' type map.
with _hidden("pandas", "numpy"):
    from sqlite_utils import Database
    from sqlite_utils.migrations import Migrations

from workbench.store.metrics import pack_rows  # noqa: E402
from workbench.store.schema import STEPS  # noqa: E402

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


def apply(conn: sqlite3.Connection) -> None:
    """Every step not applied yet, in order, each recorded as it is applied."""
    build().apply(Database(conn, execute_plugins=False))
