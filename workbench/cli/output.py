"""Printing: JSON documents for machines, Rich tables for people."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import click


def console(stderr: bool = False) -> Any:
    """A Rich console; Rich honours NO_COLOR and drops colour when not a terminal."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def print_json(document: Any) -> None:
    """Indented for a person at a terminal, compact (and faster) into a pipe."""
    indent = 2 if sys.stdout.isatty() else None
    click.echo(json.dumps(document, indent=indent, default=str))


def print_table(
    title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]], wrap: bool = False
) -> None:
    """A borderless table; rows are cut at the terminal's width unless `wrap`."""
    from rich.table import Table

    table = Table(
        title=title,
        title_justify="left",
        header_style="bold",
        box=None,
        pad_edge=False,
        show_header=any(columns),
    )
    for column in columns:
        table.add_column(
            column, overflow="fold" if wrap else "ellipsis", no_wrap=not wrap, min_width=len(column)
        )
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console().print(table)


def note(message: str) -> None:
    """A human-facing remark on stderr, so stdout stays parseable."""
    console(stderr=True).print(message, soft_wrap=True)


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()
