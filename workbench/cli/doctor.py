"""`workbench doctor`"""

from __future__ import annotations

import click

from workbench import formatting as fmt
from workbench.cli.common import json_option, store_for
from workbench.cli.output import note, print_json, print_table
from workbench.doctor import diagnose


@click.command()
@json_option
@click.pass_context
def doctor(ctx: click.Context, as_json: bool) -> None:
    """Check versions, the store's health, GPUs and inotify limits."""
    info = diagnose(store_for(ctx))
    if as_json:
        print_json(info)
        return
    store, gpu = info["store"], info["gpu"]
    rows = [
        ("workbench", info["workbench"]),
        ("python", f"{info['python']} ({info['platform']})"),
        *(
            (name, version or "[red]not installed[/]")
            for name, version in info["libraries"].items()
        ),
        (
            "store",
            f"{store['database']} ({fmt.size(store['size_bytes'])}, "
            f"{store['projects']} projects, {store['runs']} runs)",
        ),
        (
            "sqlite",
            f"{store['sqlite']}, journal {store['journal_mode']}, integrity {store['integrity']}",
        ),
        (
            "gpu",
            ", ".join(
                f"#{d['index']} {d['name']} ({fmt.size(d['memory_total'])})" for d in gpu["devices"]
            )
            if gpu["available"]
            else f"none: {gpu['reason']}",
        ),
        ("inotify", ", ".join(f"{k}={v}" for k, v in info["inotify"].items())),
    ]
    print_table(None, ["", ""], rows, wrap=True)
    for problem in info["problems"]:
        note(f"[yellow]warning:[/] {problem}")
    if not info["problems"]:
        note("[green]all checks passed[/]")
