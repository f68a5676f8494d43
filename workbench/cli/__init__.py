"""The `workbench` / `wb` command line: thin commands over the core."""

from __future__ import annotations

import sys

import click

from workbench.cli.app import cli
from workbench.core.errors import shorten


def main() -> None:
    """Console-script entry point."""
    from workbench.core.paths import make_private

    make_private()  # the store's files, logs and models (and its children's) are 0600
    try:
        code = cli.main(prog_name="workbench", standalone_mode=False)
    except click.UsageError as exc:
        # One line, naming the argument and what was expected; no usage block.
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        click.echo(f"error: {shorten(exc.format_message())}{hint}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, click.Abort):
        click.echo("interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.stderr.close()  # the reader of a pipe went away; nothing to say
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


__all__ = ["cli", "main"]
