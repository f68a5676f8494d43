"""`workbench pipeline run PROJECT [FILE...]`: the watcher's pipeline once, in the
foreground, for CI/CD jobs and cron; `pipeline list PROJECT`: the ones it has had."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from workbench.automation import pipeline as pipelines
from workbench.cli.aliases import NounGroup, deprecated, legacy_command
from workbench.cli.common import json_option, store_for
from workbench.cli.output import note, print_json, print_table

_MARKS = {
    "ok": "[green]✓[/]",
    "alert": "[yellow]![/]",
    "rejected": "[red]✗[/]",
    "failed": "[red]✗[/]",
    "skipped": "[dim]–[/]",
    "kept": "[yellow]=[/]",
}


@click.group(cls=NounGroup)
def pipeline() -> None:
    """Run the automation pipeline once (for CI/CD jobs and cron), and list the
    pipelines a project has had."""


@pipeline.command("run")
@click.argument("project")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--again", is_flag=True, help="Take FILES even if a pipeline already had them.")
@json_option
@click.pass_context
def run(
    ctx: click.Context,
    project: str,
    files: tuple[Path, ...],
    again: bool,
    as_json: bool,
) -> None:
    """Run the automation pipeline once over FILES (default: the files in
    PROJECT's watch folders that no pipeline has had yet and that no process
    holds open for writing).

    Each file is registered, validated and checked for drift; then, per the
    project's [automation] policy, the model is retrained on the reference
    plus the accepted data, judged against the champion, promoted and
    exported. Files are never moved or changed.

    Exit status: 0 promoted or nothing to do, 1 data rejected, 3 challenger
    not better than the champion, 4 a step failed (training or export),
    2 bad usage.
    """
    store = store_for(ctx)
    listener = None if as_json else _print_step
    if not files:
        # Pipelines a killed watcher or run of this command left half done.
        for resumed in pipelines.run_pending(store, on_step=listener, project=project):
            note(f"resumed pipeline {resumed}")
    chosen = list(files) or _complete(pipelines.unprocessed_files(store, project))
    pipeline_id = (
        pipelines.submit(store, project, chosen, "cli", again=again or bool(files))
        if chosen
        else None
    )
    if pipeline_id is None:
        if as_json:
            print_json({"project": project, "outcome": "nothing to do", "exit_code": 0})
        else:
            note("nothing to do: no new files in the watch folders")
        return
    result = pipelines.run_pipeline(store, pipeline_id, on_step=listener)
    if as_json:
        print_json(result)
    else:
        colour = "green" if result["exit_code"] == 0 else "yellow"
        note(f"[{colour}]pipeline {pipeline_id}: {result['outcome']}[/]")
    sys.exit(result["exit_code"] or 0)


@pipeline.command("list")
@click.argument("project")
@json_option
@click.pass_context
def list_(ctx: click.Context, project: str, as_json: bool) -> None:
    """List PROJECT's latest pipelines, newest first: trigger, files, state, outcome."""
    found = pipelines.list_pipelines(store_for(ctx), project)
    if as_json:
        print_json(found)
        return
    if not found:
        note(f"no pipelines yet: `workbench pipeline run {project}` or `workbench watch start`")
        return
    print_table(
        None,
        ["ID", "TRIGGER", "FILES", "STATE", "OUTCOME", "EXIT", "CREATED"],
        [
            (
                p["id"],
                p["trigger"],
                len(p["files"]),
                p["state"],
                p["outcome"],
                p["exit_code"],
                p["created_at"],
            )
            for p in found
        ],
    )


@legacy_command(pipeline)
@click.argument("project")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--again", is_flag=True, help="See `pipeline run`.")
@click.option("--history", is_flag=True, help="See `pipeline list`.")
@json_option
@click.pass_context
def legacy(
    ctx: click.Context,
    project: str,
    files: tuple[Path, ...],
    again: bool,
    history: bool,
    as_json: bool,
) -> None:
    """The old spelling: `pipeline PROJECT [FILES...] [--history]`."""
    if history:
        deprecated(f"pipeline {project} --history", f"pipeline list {project}")
        ctx.invoke(list_, project=project, as_json=as_json)
        return
    rest = (" FILE..." if files else "") + (" --again" if again else "")
    deprecated(f"pipeline {project}{rest}", f"pipeline run {project}{rest}")
    ctx.invoke(run, project=project, files=files, again=again, as_json=as_json)


def _complete(found: list[Path]) -> list[Path]:
    """The files no process holds open for writing; the others are left for a
    later run, as the watcher would (a file still being written is not data yet)."""
    from workbench.automation.writers import open_for_writing

    busy = open_for_writing(str(p) for p in found)
    for path, pids in busy.items():
        note(f"skipped {Path(path).name}: still open for writing (pid {', '.join(map(str, pids))})")
    return [p for p in found if str(p) not in busy]


def _print_step(_pipeline_id: int, step: dict[str, Any]) -> None:
    where = f" {Path(step['file']).name}" if step.get("file") else ""
    if step["status"] == "running":
        extra = f" (run {step['run']})" if step.get("run") else ""
        note(f"[dim]… {step['step']}{where}{extra}[/]")
        return
    mark = _MARKS.get(step["status"], "·")
    note(f"{mark} {step['step']}{where}: {step.get('summary') or step['status']}")
