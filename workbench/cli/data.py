"""`workbench data ...`"""

from __future__ import annotations

from pathlib import Path

import click

from workbench import formatting as fmt
from workbench.cli.common import json_option, store_for
from workbench.cli.output import note, print_json, print_table
from workbench.data.versions import list_versions, register
from workbench.projects import get_project


@click.group()
def data() -> None:
    """Dataset versions of a project, and which runs used them."""


@data.command("add")
@click.argument("project")
@click.argument("file", type=click.Path(path_type=Path))
@json_option
@click.pass_context
def add(ctx: click.Context, project: str, file: Path, as_json: bool) -> None:
    """Register FILE (CSV, gzip CSV or Parquet) as a version of PROJECT's data.

    Versions are identified by the SHA-256 of their content: the same content
    twice is one version. The file is only read, never moved or changed.
    """
    store = store_for(ctx)
    version = register(store, get_project(store, project)["id"], file)
    if as_json:
        print_json(version)
    else:
        note(
            f"version {version['id']} [bold]{version['sha256'][:12]}[/]: {version['rows']} rows,"
            f" {len(version['columns'])} columns, {fmt.size(version['size_bytes'])}"
        )


@data.command("list")
@click.argument("project")
@json_option
@click.pass_context
def list_(ctx: click.Context, project: str, as_json: bool) -> None:
    """List PROJECT's dataset versions, newest first, with how many runs used each."""
    store = store_for(ctx)
    versions = list_versions(store, get_project(store, project)["id"])
    if as_json:
        print_json(versions)
        return
    if not versions:
        note(
            f"no data versions yet: `workbench data add {project} FILE` (training registers its data too)"
        )
        return
    print_table(
        None,
        ["ID", "SHA-256", "ROWS", "COLS", "SIZE", "RUNS", "PATH"],
        [
            (
                v["id"],
                v["sha256"][:12],
                v["rows"],
                len(v["columns"]),
                fmt.size(v["size_bytes"]),
                v["runs"],
                v["path"],
            )
            for v in versions
        ],
    )
