"""`workbench demo`"""

from __future__ import annotations

import sys

import click

from workbench import formatting as fmt
from workbench.cli.common import store_for
from workbench.cli.output import (
    note,
    print_json,
    print_table,
)
from workbench.demo import run_demo


@click.command()
@click.option("--headless", is_flag=True, help="Print a summary instead of opening the TUI.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def demo(ctx: click.Context, headless: bool, as_json: bool) -> None:
    """Copy the sample projects into the store's workspace, register and train each once."""
    from rich.console import Console

    if not headless and not as_json:
        from workbench.cli.app import open_tui

        if sys.stdin.isatty() and sys.stdout.isatty():
            open_tui(demo=True)
            return
        note("no terminal: running headless")
    err = Console(stderr=True)
    with err.status("training the sample projects…") as status:
        results = run_demo(store_for(ctx), progress=lambda msg: status.update(msg))
    if as_json:
        print_json(results)
    else:
        print_table(
            "Sample projects, one run each",
            ["PROJECT", "RUN", "STATUS", "METRIC", "DURATION", "PEAK CPU", "PEAK RSS"],
            [
                (
                    r["project"],
                    r["run"],
                    fmt.status(r["status"]),
                    f"{r['metric']}={fmt.metric(r['value'])}" if r["metric"] else "",
                    fmt.seconds(r["duration_s"]),
                    f"{r['cpu_percent_max'] or 0:.0f}%",
                    fmt.size(r["rss_bytes_max"]),
                )
                for r in results
            ],
        )
        note(f"workspace: {results[0]['workspace'] if results else ''}")
        note("next: `workbench run show RUN`, `workbench run logs RUN`, `workbench project list`")
    sys.exit(0 if all(r["status"] == "succeeded" for r in results) else 1)
