"""`workbench project ...`"""

from __future__ import annotations

from pathlib import Path

import click

from workbench import formatting as fmt
from workbench.cli.common import json_option, store_for
from workbench.cli.output import note, print_json, print_table
from workbench.projects import add_project, list_projects, show_project
from workbench.templates import TEMPLATES, init_project


@click.group()
def project() -> None:
    """Create, register and inspect projects (folders with a workbench.toml)."""


@project.command("init")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--template",
    type=click.Choice(sorted(TEMPLATES)),
    default="lightgbm",
    show_default=True,
    help="What the new project trains.",
)
@click.option("--name", help="Project name (default: the folder's name).")
@json_option
@click.pass_context
def init(ctx: click.Context, path: Path, template: str, name: str | None, as_json: bool) -> None:
    """Create a working project in PATH from a template and register it."""
    folder = init_project(path, template, name)
    row = add_project(store_for(ctx), folder)
    if as_json:
        print_json(row)
        return
    note(f"created project [bold]{row['name']}[/] in {folder} ({template} template)")
    note(f"train it: workbench run start {row['name']} --wait")


@project.command("add")
@click.argument("path", type=click.Path(path_type=Path))
@json_option
@click.pass_context
def add(ctx: click.Context, path: Path, as_json: bool) -> None:
    """Register an existing project folder (validates its workbench.toml)."""
    row = add_project(store_for(ctx), path)
    if as_json:
        print_json(row)
    else:
        note(f"registered project [bold]{row['name']}[/] ({row['path']})")


@project.command("list")
@json_option
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List registered projects."""
    projects = list_projects(store_for(ctx))
    if as_json:
        print_json(projects)
        return
    if not projects:
        note("no projects yet: `workbench project init PATH` or `workbench demo`")
        return
    print_table(
        None,
        ["NAME", "RUNS", "LAST RUN", "PATH"],
        [
            (
                p["name"],
                p["runs"],
                f"{p['last_run']} {fmt.status(p['last_status'])}" if p["last_run"] else "",
                p["path"] + ("  [red](missing)[/]" if p["missing"] else ""),
            )
            for p in projects
        ],
    )


@project.command("show")
@click.argument("name")
@json_option
@click.pass_context
def show(ctx: click.Context, name: str, as_json: bool) -> None:
    """Show a project's configuration and best run."""
    info = show_project(store_for(ctx), name)
    if as_json:
        print_json(info)
        return
    rows = [("name", info["name"]), ("path", info["path"]), ("runs", info["runs"])]
    if "config_error" in info:
        rows.append(("config", f"[red]{info['config_error']}[/]"))
    else:
        best = info["best"]
        rows += [
            ("task", info["task"] or "(inferred from the target)"),
            ("trainer", info["trainer"]),
            ("data", info["train"]),
            ("target", info["target"]),
            ("metric", info["metric"] or ""),
            ("params", ", ".join(f"{k}={v}" for k, v in info["params"].items())),
            (
                "best run",
                f"{best['run']} ({best['metric']} {fmt.metric(best['value'])})" if best else "",
            ),
        ]
    print_table(None, ["", ""], rows, wrap=True)
