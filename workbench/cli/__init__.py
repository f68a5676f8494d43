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
    except click.exceptions.NoArgsIsHelpError as exc:
        # A noun without its verb: name the verbs, on one line like any usage error.
        group = exc.ctx.command
        verbs = ", ".join(
            name
            for name in group.list_commands(exc.ctx)  # type: ignore[attr-defined]
            if not group.get_command(exc.ctx, name).hidden  # type: ignore[attr-defined]
        )
        click.echo(
            f"error: `{exc.ctx.command_path}` needs a command: {verbs}"
            f" (see `{exc.ctx.command_path} --help`)",
            err=True,
        )
        sys.exit(exc.exit_code)
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
