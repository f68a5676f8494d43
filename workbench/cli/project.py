"""`workbench project ...`"""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from workbench.core import formatting as fmt
from workbench.cli.common import json_option, store_for
from workbench.cli.output import note, print_json, print_table
from workbench.config.project import metrics_for, with_override_hint
from workbench.projects import add_project, create_project, list_projects, show_project
from workbench.templates import TEMPLATES


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
    help="What the new project trains with.",
)
@click.option("--name", help="Project name (default: the folder's name).")
@click.option(
    "--data",
    type=click.Path(path_type=Path, dir_okay=True),
    help="Your own CSV / gzip CSV / Parquet file to train on (default: a bundled dataset).",
)
@click.option("--target", help="The column of --data to predict.")
@click.option(
    "--copy/--link",
    "copy",
    default=True,
    show_default=True,
    help="Copy --data into the project, or link to it where it is.",
)
@json_option
@click.pass_context
def init(
    ctx: click.Context,
    path: Path,
    template: str,
    name: str | None,
    data: Path | None,
    target: str | None,
    copy: bool,
    as_json: bool,
) -> None:
    """Create a working project in PATH and register it.

    With --data FILE --target COLUMN the project trains on your file: the task
    (classification or regression) is inferred from the target column and a
    primary metric chosen to fit it; both are written, with the reason, into
    the project's workbench.toml, where you can change them. Without --data
    the project gets a small bundled dataset. Everything is checked before
    anything is created.
    """
    row, plan = create_project(
        store_for(ctx), path, template, name, data=data, target=target, link=not copy
    )
    inferred = plan.inferred
    if as_json:
        print_json({**row, "inferred": inferred.describe() if inferred else None})
        return
    config = plan.folder / "workbench.toml"
    note(
        f"created project [bold]{escape(row['name'])}[/] in {escape(str(plan.folder))}"
        f" ({template} template)"
    )
    if inferred is not None:
        how = "linked to" if plan.link else "copied from"
        lines = [
            f"data: {plan.data_name} {how} {plan.source} ({inferred.rows} rows,"
            f" {inferred.columns} columns)",
            f"task: {inferred.task} ({with_override_hint(inferred.task_reason)} in {config})",
            f"metric: {inferred.metric} ({inferred.metric_reason}; set [train] metric to"
            f" override: {', '.join(metrics_for(inferred.task))})",
        ]
        for line in lines:
            note(escape(line))
    note(f"train it: workbench run start {escape(row['name'])} --wait")


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
            ("task", escape(f"{info['task']} ({info['task_reason']})") if info["task"] else ""),
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
