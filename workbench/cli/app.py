"""The root command group and how errors reach the user."""

from __future__ import annotations

import importlib
import sqlite3
import sys

import click

from workbench.core.version import __version__
from workbench.core.errors import WorkbenchError


class WorkbenchGroup(click.Group):
    """Turns domain errors into a one-line message and an exit code, never a
    traceback; loads each subcommand's module only when it is used, so every
    command starts fast."""

    LAZY = {
        "archive": "workbench.cli.archive:archive",
        "backup": "workbench.cli.backup:backup",
        "data": "workbench.cli.data:data",
        "demo": "workbench.cli.demo:demo",
        "doctor": "workbench.cli.doctor:doctor",
        "fsck": "workbench.cli.fsck:fsck",
        "keys": "workbench.cli.keys:keys",
        "model": "workbench.cli.model:model",
        "monitor": "workbench.cli.monitor:monitor",
        "offline-kit": "workbench.cli.backup:offline_kit",
        "pipeline": "workbench.cli.pipeline:pipeline",
        "plugins": "workbench.cli.plugins:plugins",
        "predict": "workbench.cli.predict:predict",
        "project": "workbench.cli.project:project",
        "restore": "workbench.cli.backup:restore",
        "run": "workbench.cli.run:run",
        "serve": "workbench.cli.serve:serve",
        "sweep": "workbench.cli.sweep:sweep",
        "watch": "workbench.cli.watch:watch",
    }

    # Each command's one-line help for `workbench --help`, so listing the commands
    # imports none of them (tests/test_lazy_cli.py checks it against the real help).
    SUMMARIES = {
        "archive": (
            "Project archives: export a project's history to one signed file, check it,"
            " and import it into another store (idempotently)."
        ),
        "backup": (
            "Back up the whole store into one file: a consistent copy of the database"
            " (taken while runs keep writing), the identity file, and the artifacts, run"
            " folders, data versions and keys it refers to, with a manifest of SHA-256s."
        ),
        "data": "Dataset versions of a project, and which runs used them.",
        "demo": "The whole loop on the sample projects.",
        "doctor": "Check versions, optional extras, the store's health, GPUs and inotify limits.",
        "fsck": (
            "Check the store: identity, integrity, schema version, stuck runs, missing logs"
            " and model files, orphan artifacts. Exits 0 when all is well, 1 when problems"
            " are left."
        ),
        "keys": "The key this store signs its exports with, and the keys it trusts.",
        "model": "Model versions, aliases (champion, challenger, your own), promotion and export.",
        "monitor": (
            "Monitor PROJECT's served model from its prediction log (written by `workbench"
            " serve` and `workbench predict --log`)."
        ),
        "offline-kit": (
            "Make a folder to install this workbench on a machine with no network: the"
            " wheels of workbench and every dependency for this platform and Python, an"
            " install.sh and a README.txt."
        ),
        "pipeline": (
            "Run the automation pipeline once (for CI/CD jobs and cron), and list the"
            " pipelines a project has had."
        ),
        "plugins": (
            "Plugins: installed ones (the `workbench` entry point group), a project's"
            " plugins/*.py files and the built-ins. They add trainers, validators, drift"
            " tests, exporters and notifiers."
        ),
        "predict": "Predict every row of INPUT with the bundle at PATH (a folder or .zip).",
        "project": "Create, register and inspect projects (folders with a workbench.toml).",
        "restore": (
            "Restore the backup FILE into an empty store folder ($WORKBENCH_HOME): every"
            " member is checked against the manifest and the database must pass SQLite's"
            " integrity check before anything is put in place."
        ),
        "run": "Start, watch, inspect and stop training runs.",
        "serve": "Serve the bundle at PATH (a folder or .zip) over HTTP until Ctrl-C.",
        "sweep": "Hyperparameter sweeps of a project: Optuna over its [sweep.space].",
        "watch": "Watch projects' data folders and run the pipeline on each new batch.",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.LAZY})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.LAZY and name not in self.commands:
            module, attr = self.LAZY[name].split(":")
            self.add_command(getattr(importlib.import_module(module), attr), name)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands section of `--help`, from SUMMARIES for commands not loaded
        yet: the same text click derives from each command's help, no imports."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.commands.get(name)
            if command is None and name in self.SUMMARIES:
                command = click.Command(name, help=self.SUMMARIES[name])
            if command is None:
                command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in rows])

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        from workbench.models.plugin_names import install

        install()  # project configs are checked against the plugins' names too
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
            from workbench.core.errors import StoreDamagedError
            from workbench.core.paths import db_path

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
