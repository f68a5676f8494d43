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
    """Indented for a person at a terminal, compact (and faster) into a pipe.
    Always valid JSON: NaN and infinities (a diverged loss, say) become null."""
    indent = 2 if sys.stdout.isatty() else None
    click.echo(to_json(document, indent=indent))


def to_json(document: Any, indent: int | None = None) -> str:
    """`json.dumps` that never writes NaN or Infinity (not JSON): they become null."""
    try:
        return json.dumps(document, indent=indent, default=str, allow_nan=False)
    except ValueError:  # a non-finite float somewhere: the rare, slower path
        return json.dumps(finite(document), indent=indent, default=str, allow_nan=False)


def finite(value: Any) -> Any:
    """A copy of `value` with every NaN or infinite float replaced by None."""
    if isinstance(value, float):
        return value if value - value == 0.0 else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    if hasattr(value, "dtype") and hasattr(value, "item"):  # numpy scalars
        return finite(value.item())
    return value


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
