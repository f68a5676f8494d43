"""`workbench sweep start|resume|list|show`: hyperparameter sweeps."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from workbench.core import formatting as fmt
from workbench.cli.aliases import NounGroup, deprecated, legacy_command
from workbench.cli.common import json_option, store_for
from workbench.cli.output import console, note, print_json, print_table
from workbench.cli.params import Seconds


_TRIALS = click.option(
    "--trials",
    type=click.IntRange(min=1),
    help="Trials to finish (default: [sweep] trials, else 20).",
)
_PARALLEL = click.option(
    "--parallel",
    type=click.IntRange(min=1),
    help="Trials in flight at once (default: [sweep] parallel, else 1); "
    "[runs] max_parallel still caps the runs that actually run.",
)
_TIMEOUT = click.option(
    "--timeout",
    type=Seconds((0, None), min_open=True),
    metavar="SECONDS",
    help="Start no trial after this long; those in flight are finished.",
)


@click.group(cls=NounGroup)
def sweep() -> None:
    """Hyperparameter sweeps of a project: Optuna over its [sweep.space].

    Every trial is a child run of the sweep's own run, queued like any run;
    the best trial's model is registered as a version. A sweep is named by
    its run id.
    """


@sweep.command("start")
@click.argument("project")
@_TRIALS
@_PARALLEL
@_TIMEOUT
@click.option(
    "--executor",
    metavar="NAME",
    default=None,
    help='Where trials run: "local" or "slurm" (default: the project\'s [runs] executor).',
)
@json_option
@click.pass_context
def start(
    ctx: click.Context,
    project: str,
    trials: int | None,
    parallel: int | None,
    timeout: float | None,
    executor: str | None,
    as_json: bool,
) -> None:
    """Search PROJECT's hyperparameters over its [sweep.space].

    With --executor slurm the trials are ONE job array (`--array=0-(N-1)%K`
    for --trials N --parallel K); each task asks the sweep's study, on the
    shared filesystem, for its trial.

    Ctrl-C stops the sweep (queued trials are stopped, running ones finish);
    `workbench sweep resume PROJECT` continues it, as after a crash. Exit
    status: 0 succeeded, 130 stopped, 1 otherwise.
    """
    from workbench.sweeps.engine import start_sweep

    runner = start_sweep(store_for(ctx), project, trials, parallel, timeout, executor)
    _finish(runner, project, as_json)


@sweep.command("resume")
@click.argument("project")
@click.argument("sweep_id", metavar="[SWEEP]", required=False)
@click.option(
    "--trials",
    type=click.IntRange(min=1),
    help="The new total of trials (default: the sweep's own).",
)
@click.option(
    "--parallel",
    type=click.IntRange(min=1),
    help="Trials in flight at once (default: the sweep's own).",
)
@click.option(
    "--timeout",
    type=Seconds((0, None), min_open=True),
    metavar="SECONDS",
    help="Start no trial after this long (default: the sweep's own).",
)
@json_option
@click.pass_context
def resume(
    ctx: click.Context,
    project: str,
    sweep_id: str | None,
    trials: int | None,
    parallel: int | None,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Continue an interrupted sweep of PROJECT (SWEEP: its run id; default: the
    latest unfinished one), repeating no finished trial.

    It waits for the trials still running and goes on until the total of
    trials is done; --trials, --parallel and --timeout replace the sweep's
    recorded ones. A sweep that ran on Slurm as a job array (even a finished
    one) requeues its failed, preempted or cancelled tasks: their trials'
    params go out again as a new array with the same task indices.
    """
    from workbench.sweeps.engine import resume_sweep

    store = store_for(ctx)
    chosen = None if sweep_id is None else _sweep_id(sweep_id)
    runner = resume_sweep(store, project, chosen, trials, parallel, timeout)
    _finish(runner, project, as_json)


@sweep.command("list")
@click.argument("project")
@json_option
@click.pass_context
def list_(ctx: click.Context, project: str, as_json: bool) -> None:
    """List PROJECT's sweeps, newest first, with their trials and best run."""
    _list(store_for(ctx), project, as_json)


@sweep.command("show")
@click.argument("sweep_id", metavar="SWEEP")
@json_option
@click.pass_context
def show(ctx: click.Context, sweep_id: str, as_json: bool) -> None:
    """Show one sweep (SWEEP: its run id): its best trial and every trial."""
    from workbench.sweeps.engine import summary

    document = summary(store_for(ctx), _sweep_id(sweep_id))
    print_json(document) if as_json else _print_summary(document)


@legacy_command(sweep)
@click.argument("project")
@click.option("--trials", type=click.IntRange(min=1), help="See `sweep start`.")
@click.option("--parallel", type=click.IntRange(min=1), help="See `sweep start`.")
@click.option("--timeout", type=Seconds((0, None), min_open=True), help="See `sweep start`.")
@click.option(
    "--resume",
    "resume_from",
    is_flag=False,
    flag_value="latest",
    default=None,
    metavar="[SWEEP]",
    help="See `sweep resume`.",
)
@click.option("--list", "listing", is_flag=True, help="See `sweep list`.")
@click.option("--show", "shown", metavar="SWEEP", help="See `sweep show`.")
@json_option
@click.pass_context
def legacy(
    ctx: click.Context,
    project: str,
    trials: int | None,
    parallel: int | None,
    timeout: float | None,
    resume_from: str | None,
    listing: bool,
    shown: str | None,
    as_json: bool,
) -> None:
    """The old spelling: `sweep PROJECT [--list | --show SWEEP | --resume [SWEEP]]`."""
    if listing:
        deprecated(f"sweep {project} --list", f"sweep list {project}")
        ctx.invoke(list_, project=project, as_json=as_json)
    elif shown is not None:
        deprecated(f"sweep {project} --show {shown}", f"sweep show {shown}")
        ctx.invoke(show, sweep_id=shown, as_json=as_json)
    elif resume_from is not None:
        which = "" if resume_from == "latest" else f" {resume_from}"
        deprecated(f"sweep {project} --resume{which}", f"sweep resume {project}{which}")
        sweep_id = None if resume_from == "latest" else resume_from
        tuning = {"trials": trials, "parallel": parallel, "timeout": timeout}
        ctx.invoke(resume, project=project, sweep_id=sweep_id, as_json=as_json, **tuning)
    else:
        deprecated(f"sweep {project}", f"sweep start {project}")
        tuning = {"trials": trials, "parallel": parallel, "timeout": timeout}
        ctx.invoke(start, project=project, as_json=as_json, **tuning)


def _finish(runner: Any, project: str, as_json: bool) -> None:
    """Drive the sweep to its end, print its summary and exit with its status."""
    note(
        f"sweep {runner.run_id}: {runner.n_trials} trials of {project}, "
        f"{runner.objective.direction} {runner.objective.key}, {runner.parallel} at a time"
    )
    document = _drive(runner)
    if as_json:
        print_json(document)
    else:
        _print_summary(document)
    sys.exit({"succeeded": 0, "stopped": 130}.get(document["status"], 1))


def _sweep_id(text: str) -> int:
    from workbench.core.errors import UsageError

    try:
        return int(text)
    except ValueError:
        raise UsageError(f"sweep ids are run ids (numbers); got {text!r}") from None


def _drive(runner: Any) -> dict[str, Any]:
    """Run the sweep with a live display on stderr at a terminal, else one line
    per trial event."""
    err = console(stderr=True)
    shown = 0

    def echo_events(target: Any) -> None:
        nonlocal shown
        for text in runner.events[shown:]:
            target.print(text, soft_wrap=True, markup=False, highlight=False)
        shown = len(runner.events)

    if not err.is_terminal:
        document = runner.run(lambda r: echo_events(err))
        echo_events(err)
        return document

    from rich.live import Live

    started = time.monotonic()
    with Live(console=err, refresh_per_second=4, transient=True) as live:

        def update(r: Any) -> None:
            echo_events(live.console)
            live.update(_progress(r, time.monotonic() - started))

        document = runner.run(update)
    echo_events(err)
    return document


def _progress(runner: Any, elapsed: float) -> Any:
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    done = runner.finished
    best = runner.best_trial()
    grid = Table.grid(padding=(0, 1))
    grid.add_row(
        "trials",
        ProgressBar(total=runner.n_trials, completed=done, width=30),
        f"{done}/{runner.n_trials}",
        f"elapsed {fmt.seconds(elapsed)}",
    )
    key = runner.objective.key
    grid.add_row(
        "best",
        f"{key} = {best.value:.6g} (trial {best.number})" if best else "none yet",
        "",
        "",
    )
    flights = ", ".join(f"trial {n} (run {f.run_id})" for n, f in sorted(runner.pending.items()))
    grid.add_row("running", flights or "-", "", "")
    return Group(grid)


def _list(store: Any, project: str, as_json: bool) -> None:
    from workbench.sweeps.engine import list_sweeps

    sweeps = list_sweeps(store, project)
    if as_json:
        print_json(sweeps)
        return
    if not sweeps:
        note(f"no sweeps yet: `workbench sweep start {project} --trials 20`")
        return
    print_table(
        None,
        ["SWEEP", "STATUS", "TRIALS", "RUNS", "BEST", "BEST RUN"],
        [
            (
                s["id"],
                fmt.status(s["status"]),
                s["trials"],
                " ".join(f"{k} {v}" for k, v in sorted(s["runs"].items())),
                f"{s['objective']}={fmt.metric(s['best_value'])}" if s["best_value"] else "",
                s["best_run"],
            )
            for s in sweeps
        ],
    )


def _print_summary(document: dict[str, Any]) -> None:
    best = document["best"]
    version = document["registered_version"]
    rows = [
        ("sweep", f"{document['sweep_run_id']}  ({document['project']})"),
        (
            "status",
            fmt.status(document["status"])
            + (f"  {document['message']}" if document["message"] else ""),
        ),
        ("objective", f"{document['direction']} {document['objective']}"),
        (
            "best",
            f"trial {best['number']} (run {best['run_id']})  {best['value']:.6g}" if best else "",
        ),
        ("params", _params(best["params"]) if best else ""),
        ("version", f"{version['ref']} ({', '.join(version['aliases'])})" if version else ""),
    ]
    print_table(None, ["", ""], rows, wrap=True)
    print_table(
        None,
        ["TRIAL", "STATE", "VALUE", "RUN", "PARAMS"],
        [
            (
                t["number"],
                t["state"],
                fmt.metric(t["value"]),
                t["run_id"],
                _params(t["params"]),
            )
            for t in document["trials"]
        ],
        wrap=True,
    )


def _params(params: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={fmt.metric(v) if isinstance(v, float) else v}" for k, v in params.items()
    )
