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
        table.add_column(column, overflow="fold" if wrap else "ellipsis", no_wrap=not wrap)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console().print(table)


def note(message: str) -> None:
    """A human-facing remark on stderr, so stdout stays parseable."""
    console(stderr=True).print(message, soft_wrap=True)


def fmt_bytes(value: float | None) -> str:
    if value is None:
        return ""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(value)


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return ""
    if value < 60:
        return f"{value:.1f}s"
    minutes, seconds = divmod(int(value), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def fmt_metric(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def status_style(status: str) -> str:
    colour = {
        "succeeded": "green",
        "failed": "red",
        "lost": "red",
        "running": "cyan",
        "stopped": "yellow",
        "queued": "blue",
    }.get(status, "white")
    return f"[{colour}]{status}[/]"


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()
