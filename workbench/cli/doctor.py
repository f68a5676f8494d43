"""`workbench doctor`"""

from __future__ import annotations

import sys

import click
from rich.markup import escape

from workbench.core import formatting as fmt
from workbench.cli.common import json_option
from workbench.cli.output import note, print_json, print_table
from workbench.doctor import diagnose
from workbench.core.errors import StoreError


@click.command()
@json_option
def doctor(as_json: bool) -> None:
    """Check versions, optional extras, the store's health, GPUs and inotify limits.

    Exits 1 when the store cannot be used (missing, damaged, from a newer
    version); `workbench fsck` says more.
    """
    from workbench.store import open_store

    store, error = None, None
    try:
        store = open_store()
    except StoreError as exc:
        error = exc.message
    try:
        info = diagnose(store, store_error=error)
    finally:
        if store is not None:
            store.close()
    if as_json:
        print_json(info)
    else:
        _print(info)
    if not info["store_ok"]:
        sys.exit(1)


def _print(info: dict) -> None:
    store, gpu = info["store"], info["gpu"]
    rows = [
        ("workbench", info["workbench"]),
        ("python", f"{info['python']} ({info['platform']})"),
        *(
            (name, version or "[red]not installed[/]")
            for name, version in info["libraries"].items()
        ),
        *(
            (
                escape(f"[{extra}]"),
                ", ".join(
                    f"{name} {version or 'missing'}" for name, version in e["packages"].items()
                )
                if e["installed"]
                else "not installed ("
                + ", ".join(
                    f"{name} {version or 'missing'}" for name, version in e["packages"].items()
                )
                + escape(f"; `pip install 'workbench[{extra}]'`)"),
            )
            for extra, e in info["extras"].items()
        ),
    ]
    if "error" in store:
        rows.append(("store", f"{store['database']}: [red]unusable[/]"))
    else:
        rows += [
            (
                "store",
                f"{store['database']} ({fmt.size(store['size_bytes'])}, "
                f"{store['projects']} projects, {store['runs']} runs"
                + (", read-only" if store["readonly"] else "")
                + ")",
            ),
            (
                "sqlite",
                f"{store['sqlite']}, journal {store['journal_mode']},"
                f" integrity {store['integrity']}",
            ),
        ]
    rows += [
        (
            "gpu",
            ", ".join(
                f"#{d['index']} {d['name']} ({fmt.size(d['memory_total'])})" for d in gpu["devices"]
            )
            if gpu["available"]
            else f"none: {gpu['reason']}",
        ),
        ("inotify", ", ".join(f"{k}={v}" for k, v in info["inotify"].items())),
        (
            "open writers",
            ("seen: " if info["open_writers"]["visible"] else "not seen: ")
            + info["open_writers"]["scope"],
        ),
    ]
    print_table(None, ["", ""], rows, wrap=True)
    for problem in info["problems"]:
        note(f"[yellow]warning:[/] {problem}")
    if not info["problems"]:
        note("[green]all checks passed[/]")
