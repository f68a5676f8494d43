"""The root command group and how errors reach the user."""

from __future__ import annotations

import importlib
import sqlite3
import sys

import click

from workbench import __version__
from workbench.errors import WorkbenchError


class WorkbenchGroup(click.Group):
    """Turns domain errors into a one-line message and an exit code, never a
    traceback; loads each subcommand's module only when it is used, so every
    command starts fast."""

    LAZY = {
        "data": "workbench.cli.data:data",
        "demo": "workbench.cli.demo:demo",
        "doctor": "workbench.cli.doctor:doctor",
        "fsck": "workbench.cli.fsck:fsck",
        "keys": "workbench.cli.keys:keys",
        "model": "workbench.cli.model:model",
        "pipeline": "workbench.cli.pipeline:pipeline",
        "plugins": "workbench.cli.plugins:plugins",
        "predict": "workbench.cli.predict:predict",
        "project": "workbench.cli.project:project",
        "run": "workbench.cli.run:run",
        "serve": "workbench.cli.serve:serve",
        "sweep": "workbench.cli.sweep:sweep",
        "watch": "workbench.cli.watch:watch",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.LAZY})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.LAZY and name not in self.commands:
            module, attr = self.LAZY[name].split(":")
            self.add_command(getattr(importlib.import_module(module), attr), name)
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except WorkbenchError as exc:
            click.secho(f"error: {exc.message}", fg="red", err=True)
            sys.exit(exc.exit_code)
        except sqlite3.OperationalError as exc:
            click.secho(
                f"error: the store is unavailable ({exc}); try again, or run `workbench doctor`",
                fg="red",
                err=True,
            )
            sys.exit(1)
        except sqlite3.DatabaseError as exc:  # a damaged page: never a traceback
            from workbench.errors import StoreDamagedError
            from workbench.paths import db_path

            click.secho(f"error: {StoreDamagedError(db_path(), exc).message}", fg="red", err=True)
            sys.exit(1)


@click.group(
    cls=WorkbenchGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="workbench")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Workbench: an offline terminal MLOps workbench.

    Projects, supervised training runs with live CPU/RAM/GPU use, and tracked
    params, metrics and artifacts, all in a local SQLite store
    ($WORKBENCH_HOME). Nothing touches the network.
    """
    if ctx.invoked_subcommand is None:
        open_tui()


def open_tui(demo: bool = False) -> None:
    """Run the terminal UI; it needs a terminal on both ends."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        click.echo(click.get_current_context().get_help())
        click.echo("\n(the terminal UI needs a terminal; see the commands above)", err=True)
        return
    from workbench.store import open_store
    from workbench.tui.app import make_app

    open_store().close()  # migrate before any worker opens the store
    make_app(demo=demo).run()
