"""The `workbench` / `wb` command line: thin commands over the core."""

from __future__ import annotations

import sys

import click

from workbench.cli.app import cli


def main() -> None:
    """Console-script entry point."""
    try:
        cli.main(prog_name="workbench", standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


__all__ = ["cli", "main"]
