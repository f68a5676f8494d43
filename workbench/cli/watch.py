"""`workbench watch start|status|stop`: the watcher daemon."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from workbench.core import formatting as fmt
from workbench.automation.watcher import (
    DEBOUNCE_RANGE,
    DEFAULT_DEBOUNCE,
    DEFAULT_QUIET,
    DEFAULT_RESCAN,
    QUIET_RANGE,
    RESCAN_RANGE,
)
from workbench.cli.aliases import NounGroup, deprecated, legacy_command
from workbench.cli.common import json_option
from workbench.cli.output import note, print_json, print_table
from workbench.cli.params import Seconds
from workbench.core.errors import UsageError


_QUIET = click.option(
    "--quiet",
    type=Seconds(QUIET_RANGE),
    default=DEFAULT_QUIET,
    show_default=True,
    help="Seconds a file must stay unchanged (after its last change or close) to count as"
    " complete; never while a process holds it open for writing. A moved-in file needs no"
    " wait.",
)
_DEBOUNCE = click.option(
    "--debounce",
    type=Seconds(DEBOUNCE_RANGE),
    default=DEFAULT_DEBOUNCE,
    show_default=True,
    help="Seconds to gather complete files after the last one, so a burst is one pipeline.",
)
_RESCAN = click.option(
    "--rescan",
    type=Seconds(RESCAN_RANGE),
    default=DEFAULT_RESCAN,
    show_default=True,
    help="Seconds between rescans of the folders for files the events missed.",
)
_POLL = click.option("--poll", is_flag=True, help="Poll every folder instead of using inotify.")


@click.group(cls=NounGroup, legacy_when_empty=True)
def watch() -> None:
    """Watch projects' data folders and run the pipeline on each new batch.

    One watcher runs per store: `watch start` starts it (in the foreground, or
    in the background with --detach), `watch status` says what it watches,
    `watch stop` stops it.
    """


@watch.command("start")
@click.argument("projects", nargs=-1)
@click.option(
    "--detach",
    is_flag=True,
    help="Run in the background, detached from this terminal (log in"
    " $WORKBENCH_HOME/watcher/watcher.log).",
)
@_QUIET
@_DEBOUNCE
@_RESCAN
@_POLL
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="With --detach: print the started watcher as one JSON document.",
)
def start(
    projects: tuple[str, ...],
    detach: bool,
    quiet: float,
    debounce: float,
    rescan: float,
    poll: bool,
    as_json: bool,
) -> None:
    """Watch the data folders of PROJECTS (all projects when none is named).

    Watches the `[data] watch` folders of PROJECTS whose `[automation]
    on_new_data` is not "off". A new data file counts once it is complete: no
    process holds it open for writing (seen through /proc on Linux) and it was
    moved in or has been unchanged for --quiet seconds. Files completed within
    --debounce seconds of each other make one pipeline (validate, then retrain
    as configured). A file that changes after it was taken is taken again, and
    its new content supersedes the old. Pipelines a stopped watcher left
    unfinished resume when it starts again. One watcher runs per store.
    """
    from workbench.automation import daemon

    options = daemon.Options(list(projects), quiet, debounce, rescan, poll)
    if as_json and not detach:
        raise UsageError("--json goes with --detach (a foreground watcher prints lines)")
    if detach:
        doc = daemon.detach(options)
        if as_json:
            print_json(doc)
        else:
            click.echo(doc["pid"])
            note(f"watcher started in the background; log: {doc['log']}")
            _print_folders(doc["folders"])
        return
    daemon.serve(options, echo=click.echo)


@watch.command("status")
@json_option
def status(as_json: bool) -> None:
    """Say whether a watcher runs, since when, what it watches and its last event."""
    from workbench.automation import daemon

    _print_status(daemon.status(), as_json)


@watch.command("stop")
@json_option
def stop(as_json: bool) -> None:
    """Stop the running watcher (SIGTERM, then SIGKILL)."""
    from workbench.automation import daemon

    _print_stop(daemon.stop(), as_json)


@legacy_command(watch)
@click.argument("projects", nargs=-1)
@click.option("--detach", is_flag=True, help="See `watch start`.")
@click.option("--status", "show_status", is_flag=True, help="See `watch status`.")
@click.option("--stop", "stop_it", is_flag=True, help="See `watch stop`.")
@_QUIET
@_DEBOUNCE
@_RESCAN
@_POLL
@json_option
@click.pass_context
def legacy(
    ctx: click.Context,
    projects: tuple[str, ...],
    detach: bool,
    show_status: bool,
    stop_it: bool,
    quiet: float,
    debounce: float,
    rescan: float,
    poll: bool,
    as_json: bool,
) -> None:
    """The old spelling: `watch [PROJECTS] [--detach | --status | --stop]`."""
    if sum((detach, show_status, stop_it)) > 1:
        raise UsageError("use only one of --detach, --status and --stop")
    if (show_status or stop_it) and projects:
        raise UsageError("--status and --stop take no project names")
    if show_status:
        deprecated("watch --status", "watch status")
        ctx.invoke(status, as_json=as_json)
        return
    if stop_it:
        deprecated("watch --stop", "watch stop")
        ctx.invoke(stop, as_json=as_json)
        return
    if as_json and not detach:
        raise UsageError("--json goes with --status, --stop or --detach")
    named = "".join(f" {p}" for p in projects) + (" --detach" if detach else "")
    deprecated(f"watch{named}", f"watch start{named}")
    timing = {"quiet": quiet, "debounce": debounce, "rescan": rescan, "poll": poll}
    ctx.invoke(start, projects=projects, detach=detach, as_json=as_json, **timing)


def _print_status(doc: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(doc)
        return
    if not doc["running"]:
        click.echo("no watcher is running for this store")
        return
    since = (
        f" since {datetime.fromtimestamp(doc['since']):%Y-%m-%d %H:%M:%S}" if doc["since"] else ""
    )
    starting = " (starting)" if doc.get("starting") else ""
    click.echo(f"watcher running{starting} (pid {doc['pid']}){since}")
    _print_folders(doc["folders"])
    if doc.get("complete_when"):
        click.echo(f"a file is complete when: {doc['complete_when']}")
    event = doc["last_event"]
    if event:
        click.echo(f"last event {fmt.ago(_age(event['ts']))}: {event['message']}")
    click.echo(f"log: {doc['log']}")


def _age(ts: float) -> float:
    return max(0.0, datetime.now().timestamp() - ts)


def _print_folders(folders: list[dict[str, Any]]) -> None:
    print_table(
        None,
        ["project", "folder", "mode", "why"],
        [(f["project"], f["path"], f["mode"], f["reason"] or "") for f in folders],
    )


def _print_stop(doc: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(doc)
    elif not doc["was_running"]:
        click.echo("no watcher was running")
    elif doc["killed"]:
        click.echo(f"watcher {doc['pid']} did not stop in time; killed it")
    else:
        click.echo(f"watcher {doc['pid']} stopped")
