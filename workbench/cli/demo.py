"""`workbench demo`"""

from __future__ import annotations

import sys

import click

from workbench.core import formatting as fmt
from workbench.cli.common import store_for
from workbench.cli.output import (
    note,
    print_json,
    print_table,
)
from workbench.demo import run_demo

_MARK = {"ok": "✓", "alert": "!", "rejected": "✗", "failed": "✗", "kept": "=", "skipped": "–"}


@click.command()
@click.option("--headless", is_flag=True, help="Print a summary instead of opening the TUI.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def demo(ctx: click.Context, headless: bool, as_json: bool) -> None:
    """The whole loop on the sample projects.

    Copies them into the store's workspace, registers them and trains a quick
    baseline of each; then starts the watcher and drops each project's new
    batches into its watched folder one by one, following what the pipeline
    makes of each: accepted, rejected, drifted, retrained, promoted, exported.
    """
    from rich.console import Console

    if not headless and not as_json:
        from workbench.cli.app import open_tui

        if sys.stdin.isatty() and sys.stdout.isatty():
            open_tui(demo=True)
            return
        note("no terminal: running headless")
    err = Console(stderr=True)
    with err.status("training baselines of the sample projects…") as status:
        results = run_demo(store_for(ctx), progress=lambda msg: status.update(msg))
    if as_json:
        print_json(results)
    else:
        print_table(
            "Sample projects, a baseline run each",
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
        loop = [(r["project"], b) for r in results for b in r.get("batches", [])]
        if loop:
            print_table(
                "New data dropped into the watched folders",
                ["PROJECT", "BATCH", "PIPELINE", "STEPS", "OUTCOME"],
                [
                    (
                        project,
                        b["file"],
                        b["pipeline"],
                        " ".join(f"{s['step']}{_MARK.get(s['status'], '')}" for s in b["steps"]),
                        b["outcome"],
                    )
                    for project, b in loop
                ],
                wrap=True,
            )
        note(f"workspace: {results[0]['workspace'] if results else ''}")
        note(
            "next: `workbench model list penguins`, `workbench pipeline list penguins`,"
            " `workbench run show RUN`, or `workbench` for the terminal UI"
        )
    sys.exit(0 if all(r["status"] == "succeeded" for r in results) else 1)
