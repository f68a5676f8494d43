"""`workbench plugins ...`: what the installed and project plugins contribute."""

from __future__ import annotations

from pathlib import Path

import click

from workbench.cli.common import json_option, store_for
from workbench.cli.output import note, print_json, print_table


@click.group()
def plugins() -> None:
    """Plugins: installed ones (the `workbench` entry point group), a project's
    plugins/*.py files and the built-ins. They add trainers, validators, drift
    tests, exporters and notifiers.
    """


@plugins.command("list")
@click.option("--project", "project", help="Also list this project's plugins/ files.")
@json_option
@click.pass_context
def list_(ctx: click.Context, project: str | None, as_json: bool) -> None:
    """Every plugin, where it comes from, whether it loaded, and what it adds."""
    from workbench.plugins import plugin_report

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
