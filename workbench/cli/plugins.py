"""`workbench plugins ...`: what the installed and project plugins contribute."""

from __future__ import annotations

from pathlib import Path

import click

from workbench.cli.aliases import deprecated
from workbench.cli.common import json_option, store_for
from workbench.cli.output import note, print_json, print_table
from workbench.core.errors import UsageError


@click.group()
def plugins() -> None:
    """Plugins: installed ones (the `workbench` entry point group), a project's
    plugins/*.py files and the built-ins. They add trainers, validators, drift
    tests, exporters and notifiers.
    """


@plugins.command("list")
@click.argument("project", required=False)
@click.option("--project", "old_project", hidden=True, help="The old spelling of PROJECT.")
@json_option
@click.pass_context
def list_(ctx: click.Context, project: str | None, old_project: str | None, as_json: bool) -> None:
    """Every plugin, where it comes from, whether it loaded, and what it adds
    (with PROJECT, that project's plugins/*.py files too)."""
    from workbench.plugins import plugin_report

    if old_project is not None:
        if project is not None and project != old_project:
            raise UsageError(f"name the project once: {project!r} or --project {old_project!r}")
        deprecated(f"plugins list --project {old_project}", f"plugins list {old_project}")
        project = old_project

    folder = None
    if project is not None:
        from workbench.projects import get_project

        folder = Path(get_project(store_for(ctx), project)["path"])
    report = plugin_report(folder)
    if as_json:
        print_json(report)
        return
    rows = []
    for plugin in report:
        adds = "; ".join(
            f"{kind.replace('_', ' ')}: {', '.join(names)}"
            for kind, names in plugin["contributes"].items()
            if names
        )
        status = "ok" if plugin["status"] == "ok" else f"[red]failed[/]: {plugin['error']}"
        rows.append((plugin["name"], f"{plugin['source']} ({plugin['origin']})", status, adds))
    print_table(None, ["plugin", "from", "status", "adds"], rows, wrap=True)
    for plugin in report:
        for warning in plugin["warnings"]:
            note(f"[yellow]{plugin['name']}[/]: {warning}")
