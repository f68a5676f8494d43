"""`workbench run ...`"""

from __future__ import annotations

import os
import sys

import click

from workbench.core import formatting as fmt
from workbench.core import paths
from workbench.cli.common import json_option, store_for
from workbench.cli.output import (
    note,
    print_json,
    print_table,
    stdout_is_terminal,
)
from workbench.core.metric_rules import is_per_step, user_params
from workbench.runs.queries import show_run

# Starting and stopping runs (psutil, the project config) and Rich markup are
# imported by the commands that use them: `run list` starts without them.


def escape(text: str) -> str:
    """Rich markup escaped (imported on first use)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


@click.group()
def run() -> None:
    """Start, watch, inspect and stop training runs."""


@run.command("start")
@click.argument("project")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a [train].params value (repeatable); values are TOML literals.",
)
@click.option(
    "--wait", is_flag=True, help="Wait for the run to finish; exit 1 unless it succeeded."
)
@click.option(
    "--priority",
    type=click.IntRange(-1_000_000, 1_000_000),
    default=0,
    show_default=True,
    help="Queued runs with a higher priority start first.",
)
@click.option(
    "--executor",
    metavar="NAME",
    default=None,
    help='Where the run executes: "local" or "slurm" (default: the project\'s [runs] executor).',
)
@json_option
@click.pass_context
def start(
    ctx: click.Context,
    project: str,
    overrides: tuple[str, ...],
    wait: bool,
    priority: int,
    executor: str | None,
    as_json: bool,
) -> None:
    """Start a supervised training run of PROJECT and print its id.

    The run keeps going if this terminal closes; follow it with
    `workbench run logs ID --follow`.
    """
    from workbench.config.project import parse_overrides
    from workbench.runs.launch import start_run, wait_for

    store = store_for(ctx)
    params = parse_overrides(overrides)
    run_id, supervisor = start_run(store, project, params, priority, executor)
    job = _job_fields(store, run_id)
    if job is not None:
        state = f"submitted to {job['executor']} as job {job['job_id']}"
    else:
        state = "started" if supervisor else "queued (all run slots are busy)"
    if not wait:
        if as_json:
            print_json(
                {
                    "id": run_id,
                    "project": project,
                    "status": "running" if supervisor else "queued",
                    **(job or {}),
                }
            )
        else:
            click.echo(run_id)
            note(f"run {run_id} {state}; follow it with `workbench run logs {run_id} --follow`")
        return
    if not as_json:
        note(f"run {run_id} {state}; waiting for it to finish (Ctrl-C detaches, the run goes on)")
    try:
        # This process exits next: no need to sit through the supervisor's shutdown.
        status = wait_for(store, run_id, supervisor, leave_supervisor=True)
    except KeyboardInterrupt:
        note(f"detached from run {run_id}; it goes on (`workbench run logs {run_id} --follow`)")
        sys.exit(130)
    info = show_run(store, run_id)
    info.update(_job_fields(store, run_id) or {})
    if as_json:
        print_json(info)
    else:
        click.echo(run_id)
        _print_summary(info)
    sys.exit(0 if status == "succeeded" else 1)


DEFAULT_LIMIT = 50
MAX_LIMIT = 1_000_000
MAX_RUN_ID = 2**63 - 1
# Past this many rows a terminal gets plain aligned text instead of a Rich
# table: the same columns, at a fraction of the cost.
RICH_TABLE_MAX_ROWS = 200


class RunIdType(click.ParamType):
    """A run id as typed: ASCII digits, 1 to 2**63 - 1 (SQLite's integers)."""

    name = "run id"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int:
        if isinstance(value, int):
            return value
        text = str(value)
        if text.isascii() and text.isdigit() and len(text) <= 19 and 1 <= int(text) <= MAX_RUN_ID:
            return int(text)
        shown = repr(text if len(text) <= 40 else text[:40] + "...")
        self.fail(f"expected a run id (a whole number from 1), got {shown}", param, ctx)


@run.command("list")
@click.argument("project", required=False)
@click.option(
    "--limit",
    type=click.IntRange(1, MAX_LIMIT),
    default=None,
    help=f"Only the newest N runs [default: {DEFAULT_LIMIT}].",
)
@click.option("--all", "show_all", is_flag=True, help="Every run, however many.")
@click.option(
    "--after",
    type=RunIdType(),
    default=None,
    metavar="ID",
    help="Only runs older than run ID (id < ID): the page after one that ended at ID.",
)
@click.option(
    "--page",
    "as_page",
    is_flag=True,
    help='With --json: one page object {"runs": [...], "next_after": ID or null, "total": N}'
    " (implied by --after).",
)
@click.option("--tag", metavar="TAG", default=None, help="Only runs tagged TAG.")
@click.option(
    "--archived", is_flag=True, help="Only archived runs (which are otherwise left out)."
)
@json_option
@click.pass_context
def list_(
    ctx: click.Context,
    project: str | None,
    limit: int | None,
    show_all: bool,
    after: int | None,
    as_page: bool,
    tag: str | None,
    archived: bool,
    as_json: bool,
) -> None:
    """List runs, newest first (of one PROJECT, or all); the newest 50 unless
    --limit or --all. Archived runs are left out unless --archived. Page with
    --after ID (the last id shown). Into a pipe: tab-separated rows with a
    header."""
    from workbench.runs.queries import count_runs, list_page

    if show_all and limit is not None:
        raise click.UsageError("--all and --limit cannot be used together")
    if as_page and not as_json:
        raise click.UsageError("--page shapes the --json output; use it with --json")
    store = store_for(ctx, reconcile=False)  # a listing only reads
    if project:
        from workbench.projects import get_project

        get_project(store, project)
    limit = None if show_all else (limit or DEFAULT_LIMIT)
    runs, more = list_page(store, project, limit, after, tag=tag, archived=archived)
    paged = as_page or after is not None
    total = (
        len(runs)
        if not more and after is None
        else count_runs(store, project, tag=tag, archived=archived)
    )
    next_after = runs[-1]["id"] if more else None
    if as_json:
        if paged:
            _print_json_page(runs, next_after, total)
        else:
            _print_json_rows(runs)
    elif not runs:
        if tag is not None or archived:
            what = " ".join(filter(None, ["archived" if archived else "", "runs"]))
            note(f"no {what}" + (f" tagged {escape(tag)}" if tag is not None else ""))
        elif after is None:
            note("no runs yet: `workbench run start PROJECT`")
        else:
            note(f"no runs before run {after}")
    elif stdout_is_terminal():
        if len(runs) <= RICH_TABLE_MAX_ROWS:
            run_table(runs)
        else:
            run_text(runs)
    else:
        run_rows(runs)
    if next_after is not None and not (as_json and paged):
        # Plain text, no markup: written without starting Rich.
        click.echo(
            f"showing {len(runs)} of {total} runs"
            f" (use --all, or --limit N; next page: --after {next_after})",
            err=True,
        )


def _print_json_rows(runs: list[dict]) -> None:
    """The runs as one JSON list (indented at a terminal)."""
    if sys.stdout.isatty():
        print_json(runs)
        return
    sys.stdout.write("[" + _json_items(runs) + "]\n")
    sys.stdout.flush()


def _json_items(runs: list[dict]) -> str:
    """The runs as JSON array items, encoded a chunk at a time (one encoder
    call per row costs more than the rows' encoding)."""
    from workbench.cli.output import to_json

    return ", ".join(
        to_json(runs[i : i + _JSON_CHUNK])[1:-1] for i in range(0, len(runs), _JSON_CHUNK)
    )


_JSON_CHUNK = 1000


def _print_json_page(runs: list[dict], next_after: int | None, total: int) -> None:
    """`{"runs": [...], "next_after": ..., "total": N}`, the runs written a row at a time."""
    from workbench.cli.output import to_json

    if sys.stdout.isatty():
        print_json({"runs": runs, "next_after": next_after, "total": total})
        return
    sys.stdout.write(
        '{"runs": [' + _json_items(runs) + f'], "next_after": {to_json(next_after)},'
        f' "total": {total}}}\n'
    )
    sys.stdout.flush()


def _run_cells(r: dict) -> dict[str, str]:
    return {
        "ID": str(r["id"]),
        "PROJECT": r["project"],
        "STATUS": r["status"],
        "STARTED": (r["started_at"] or "").replace("T", " ").rstrip("Z"),
        "DURATION": fmt.seconds(r["duration_s"]),
        "METRICS": "  ".join(
            f"{k}={fmt.metric(v)}" for k, v in list(_headline(r["metrics"]).items())[:3]
        ),
        "TAGS": " ".join(r.get("tags") or ()),
    }


RUN_COLUMNS = ("ID", "PROJECT", "STATUS", "STARTED", "DURATION", "METRICS")
# Narrow terminals drop columns in this order; ID and STATUS always stay, whole.
_DROP_ORDER = ("TAGS", "METRICS", "DURATION", "STARTED", "PROJECT")
_SHRINKABLE = {"PROJECT": 8, "METRICS": 12, "TAGS": 8}  # column -> narrowest width
_GAP = 2


def run_columns(runs: list[dict]) -> tuple[str, ...]:
    """The listing's columns: TAGS only when a listed run has tags."""
    return RUN_COLUMNS + (("TAGS",) if any(r.get("tags") for r in runs) else ())


def run_rows(runs: list[dict]) -> None:
    """Tab-separated rows under a header, for pipes and scripts (written at once)."""
    columns = run_columns(runs)
    lines = ["\t".join(columns)]
    for r in runs:
        cells = _run_cells(r)
        lines.append("\t".join(" ".join(cells[c].split()) for c in columns))
    lines.append("")
    sys.stdout.write("\n".join(lines))
    sys.stdout.flush()


def run_text(runs: list[dict]) -> None:
    """The table's columns as plain aligned text, for a terminal and many rows."""
    import shutil

    rows = [_run_cells(r) for r in runs]
    widths = run_layout(rows, shutil.get_terminal_size().columns, run_columns(runs))
    gap = " " * _GAP

    def line(cells: dict[str, str]) -> str:
        out = []
        for column, width in widths.items():
            text = " ".join(cells[column].split())
            if len(text) > width:
                text = text[: max(0, width - 1)] + "…"
            out.append(text.ljust(width))
        return gap.join(out).rstrip()

    lines = [line({c: c for c in widths}), *(line(r) for r in rows), ""]
    sys.stdout.write("\n".join(lines))
    sys.stdout.flush()


def run_layout(
    rows: list[dict[str, str]], width: int, columns: tuple[str, ...] = RUN_COLUMNS
) -> dict[str, int]:
    """Column -> width for a terminal `width` wide: the ID column is never cut,
    PROJECT, METRICS and TAGS shrink, and columns are dropped in `_DROP_ORDER`."""
    natural = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    shown = list(columns)

    def narrowest() -> int:
        return sum(min(natural[c], _SHRINKABLE.get(c, natural[c])) for c in shown) + _GAP * (
            len(shown) - 1
        )

    for column in _DROP_ORDER:
        if narrowest() <= width:
            break
        if column in shown:
            shown.remove(column)
    widths = {c: min(natural[c], _SHRINKABLE.get(c, natural[c])) for c in shown}
    spare = width - sum(widths.values()) - _GAP * (len(shown) - 1)
    growing = [c for c in ("PROJECT", "METRICS", "TAGS") if c in widths]
    while spare > 0 and growing:  # the room left is shared out a column at a time
        for column in list(growing):
            if spare > 0 and widths[column] < natural[column]:
                widths[column] += 1
                spare -= 1
            else:
                growing.remove(column)
    return widths


def run_table(runs: list[dict]) -> None:
    from rich.table import Table

    from workbench.cli.output import console

    out = console()
    rows = [_run_cells(r) for r in runs]
    widths = run_layout(rows, out.width, run_columns(runs))
    table = Table(box=None, pad_edge=False, header_style="bold", padding=(0, 1))
    for column, width in widths.items():
        table.add_column(column, width=width, no_wrap=True, overflow="ellipsis")
    for row in rows:
        table.add_row(*(fmt.status(row[c]) if c == "STATUS" else escape(row[c]) for c in widths))
    out.print(table)


@run.command("show")
@click.argument("run_id", metavar="RUN")
@json_option
@click.pass_context
def show(ctx: click.Context, run_id: str, as_json: bool) -> None:
    """Show a run: status, params, metrics, resources and artifacts."""
    store = store_for(ctx, reconcile=False)  # only reads, but for what a job wrote
    if not store.readonly:
        from workbench.runs import executors
        from workbench.runs.queries import find_run

        # A cluster job's journal and state, brought in first (rate-limited);
        # the id is checked first, so a bad one gets find_run's one-line error.
        executors.poll(store, run_id=find_run(store, run_id).id)
    info = show_run(store, run_id)
    job = _job_fields(store, info["id"])
    if job is not None:
        info.update(job)
    if as_json:
        print_json(info)
    else:
        _print_summary(info)


def _job_fields(store: object, run_id: int) -> dict | None:
    """What `run show --json` adds for a run of another executor (a Slurm job):
    executor, job_id, node, slurm_state, slurm_reason, journal; None for a local run."""
    from workbench.store import jobs as job_store

    job = job_store.job_of(store, run_id)  # type: ignore[arg-type]
    if job is None or job.executor == job_store.LOCAL:
        return None
    return job.as_dict()


@run.command("logs")
@click.argument("run_id", metavar="RUN")
@click.option("-f", "--follow", is_flag=True, help="Keep printing output until the run ends.")
@click.option(
    "-n",
    "--tail",
    type=click.IntRange(0, 100_000_000),
    default=None,
    metavar="N",
    help="Only the last N lines (then go on with --follow).",
)
@click.pass_context
def logs(ctx: click.Context, run_id: str, follow: bool, tail: int | None) -> None:
    """Print a run's output (stdout and stderr of the trainer), the rotated
    older part first; streamed, however large the log."""
    from workbench.runs import logs as run_logs
    from workbench.runs.queries import find_run, lost_runs
    from workbench.store.runs import RunStatus, status_of

    store = store_for(ctx)
    rid = find_run(store, run_id).id
    files = run_logs.log_files(rid)
    index, offset = run_logs.tail_start(files, tail) if tail is not None else (0, 0)

    from workbench.store import jobs as job_store

    elsewhere = job_store.is_job(store, rid)

    def running() -> bool:
        if elsewhere:  # a cluster job's output arrives with its journal's ingestion
            from workbench.runs import executors

            executors.poll(store, run_id=rid)
        status = status_of(store, rid)
        if status is None or status.finished:
            return False
        return not (status is RunStatus.RUNNING and lost_runs(store, rid))

    out = sys.stdout.buffer
    current = paths.run_log(rid)
    # Following: the current log is read by `follow`, from where the tail starts.
    older = [f for f in files if f != current] if follow else files
    start = offset if index >= len(older) else 0
    try:
        for chunk in run_logs.read_from(older, index, offset):
            out.write(chunk)
        out.flush()
        if follow:
            for chunk in run_logs.follow(current, start, running):
                out.write(chunk)
                out.flush()
    except KeyboardInterrupt:
        pass  # detaching from the log never touches the run
    except BrokenPipeError:
        # `run logs RUN | head`: the reader has all it wants.
        sys.stderr.close()
        os._exit(0)


@run.command("stop")
@click.argument("run_id", metavar="RUN")
@click.pass_context
def stop(ctx: click.Context, run_id: str) -> None:
    """Stop a run and its whole process tree (SIGTERM, grace period, SIGKILL)."""
    from workbench.runs.control import stop_run

    status = stop_run(store_for(ctx), run_id)
    note(f"run {run_id} {fmt.status(status)}")


@run.command("tag")
@click.argument("run_id", metavar="RUN")
@click.argument("tags", metavar="TAG...", nargs=-1, required=True)
@click.option("--remove", is_flag=True, help="Take these tags off the run instead.")
@json_option
@click.pass_context
def tag(
    ctx: click.Context, run_id: str, tags: tuple[str, ...], remove: bool, as_json: bool
) -> None:
    """Tag a run (or take tags off it with --remove); prints its tags.
    `run list --tag TAG` lists the runs with a tag."""
    from workbench.runs.manage import tag_run

    rid, now = tag_run(store_for(ctx), run_id, tags, remove=remove)
    if as_json:
        print_json({"id": rid, "tags": now})
    else:
        click.echo(" ".join(now))
        if not now:
            note(f"run {run_id} has no tags")


@run.command("note")
@click.argument("run_id", metavar="RUN")
@click.argument("text", required=False)
@click.option("--edit", is_flag=True, help="Write the note in $EDITOR (it starts with the note).")
@click.pass_context
def note_(ctx: click.Context, run_id: str, text: str | None, edit: bool) -> None:
    """Set a run's note to TEXT ("" clears it), or write it in $EDITOR with --edit."""
    from workbench.core.errors import UsageError
    from workbench.runs.manage import note_run, notes_of_run

    store = store_for(ctx)
    if edit == (text is not None):
        raise UsageError("give the note as TEXT or --edit, one of the two")
    if edit:
        current = notes_of_run(store, run_id).note or ""
        edited = click.edit(current, extension=".txt", require_save=True)
        if edited is None:
            note(f"run {run_id}: note unchanged")
            return
        text = edited
    assert text is not None
    kept = note_run(store, run_id, text)
    note(f"run {run_id}: note {'set' if kept else 'cleared'}")


@run.command("archive")
@click.argument("run_ids", metavar="RUN...", nargs=-1, required=True)
@click.pass_context
def archive(ctx: click.Context, run_ids: tuple[str, ...]) -> None:
    """Archive runs: `run list` and the TUI leave them out until unarchived
    (`run list --archived` lists them); nothing is deleted."""
    from workbench.runs.manage import set_archived

    changed = set_archived(store_for(ctx), run_ids, True)
    _said(run_ids, changed, "archived", "already archived")


@run.command("unarchive")
@click.argument("run_ids", metavar="RUN...", nargs=-1, required=True)
@click.pass_context
def unarchive(ctx: click.Context, run_ids: tuple[str, ...]) -> None:
    """Bring archived runs back into `run list` and the TUI."""
    from workbench.runs.manage import set_archived

    changed = set_archived(store_for(ctx), run_ids, False)
    _said(run_ids, changed, "unarchived", "not archived")


def _said(run_ids: tuple[str, ...], changed: list[int], done: str, already: str) -> None:
    named = sorted({int(r) for r in run_ids})
    if changed:
        note(f"{done}: run{'s' if len(changed) > 1 else ''} {', '.join(map(str, changed))}")
    left = [r for r in named if r not in changed]
    if left:
        note(f"{already}: run{'s' if len(left) > 1 else ''} {', '.join(map(str, left))}")


@run.command("delete")
@click.argument("run_ids", metavar="RUN...", nargs=-1, required=True)
@click.option("--yes", is_flag=True, help="Delete without asking.")
@json_option
@click.pass_context
def delete(ctx: click.Context, run_ids: tuple[str, ...], yes: bool, as_json: bool) -> None:
    """Delete finished runs: their records, metrics, logs and the artifact
    files that no other run or model version needs; prints the space freed.
    Asks first unless --yes. A queued or running run, or one a model version
    was registered from, is refused (nothing is deleted then)."""
    from workbench.core.errors import UsageError
    from workbench.runs.manage import delete as delete_runs
    from workbench.runs.manage import plan_delete

    store = store_for(ctx)
    plan = plan_delete(store, run_ids)
    if plan.blockers:
        first = plan.blockers[0]
        more = f" (and {len(plan.blockers) - 1} more)" if len(plan.blockers) > 1 else ""
        raise UsageError(f"cannot delete run {first.run_id}: {first.reason}{more}")
    if not yes:
        note(plan.summary())
        try:
            sure = click.confirm("Delete?", default=False, err=True)
        except click.Abort:  # no answer (stdin closed): no
            sure = False
        if not sure:
            note("nothing deleted (--yes deletes without asking)")
            sys.exit(1)
    done = delete_runs(store, plan)
    if as_json:
        print_json(
            {"deleted": done.run_ids, "freed_bytes": done.freed_bytes, "problems": done.problems}
        )
    else:
        for problem in done.problems:
            note(f"[yellow]could not remove[/] {escape(problem)}")
        note(
            f"deleted run{'s' if len(done.run_ids) != 1 else ''}"
            f" {', '.join(map(str, done.run_ids))}; freed {fmt.size(done.freed_bytes)}"
        )


@run.command("metrics")
@click.argument("run_id", metavar="RUN")
@click.argument("key", required=False)
@click.option(
    "--points",
    type=click.IntRange(2, 100_000),
    default=60,
    show_default=True,
    help="Downsample KEY's series to at most this many points (min/max/mean buckets).",
)
@json_option
@click.pass_context
def metrics(ctx: click.Context, run_id: str, key: str | None, points: int, as_json: bool) -> None:
    """List a run's metric keys, or show KEY's series downsampled for plotting."""
    from workbench.runs.queries import find_run
    from workbench.store.metrics import series, series_list

    store = store_for(ctx, reconcile=False)  # only reads
    rid = find_run(store, run_id).id
    keys = series_list(store.conn, rid)
    if key is None:
        if as_json:
            print_json(keys)
        else:
            print_table(
                None,
                ["KEY", "POINTS", "LAST STEP", "LATEST", "MIN", "MAX"],
                [
                    (
                        k["key"],
                        k["count"],
                        k["step"],
                        fmt.metric(k["value"]),
                        fmt.metric(k["min"]),
                        fmt.metric(k["max"]),
                    )
                    for k in keys
                ],
            )
        return
    if key not in {k["key"] for k in keys}:
        from workbench.core.errors import NotFoundError

        known = ", ".join(k["key"] for k in keys) or "none"
        raise NotFoundError(f"run {rid} has no metric {key!r} (keys: {known})")
    data = series(store.conn, rid, key, points)
    if as_json:
        print_json(data)
        return
    means = [p["mean"] for p in data["points"]]
    note(
        f"{key}: {data['count']} points, {len(means)} shown"
        + (
            f" (buckets of {data['count'] // max(1, len(means))})"
            if data["count"] > len(means)
            else ""
        )
    )
    click.echo(sparkline(means))
    first, last = data["points"][0], data["points"][-1]
    lows = [p["min"] for p in data["points"] if p["min"] is not None]
    highs = [p["max"] for p in data["points"] if p["max"] is not None]
    click.echo(
        f"x {first['x']} .. {last['x']}   min {fmt.metric(min(lows) if lows else None)}"
        f"   max {fmt.metric(max(highs) if highs else None)}   last {fmt.metric(last['last'])}"
    )


@run.command("compare")
@click.argument("run_ids", metavar="RUN RUN...", nargs=-1, required=True)
@click.option(
    "--diff-only", is_flag=True, help="Show only the params that differ between the runs."
)
@click.option(
    "--baseline",
    metavar="RUN",
    help="Show the other runs' metrics as deltas against this run (it joins the comparison).",
)
@click.option(
    "--metric",
    metavar="KEY",
    help="The metric drawn for each run under the table (default: the project's primary"
    " metric, its learning curve when the runs have one).",
)
@json_option
@click.pass_context
def compare(
    ctx: click.Context,
    run_ids: tuple[str, ...],
    diff_only: bool,
    baseline: str | None,
    metric: str | None,
    as_json: bool,
) -> None:
    """Compare runs: params side by side (differing ones marked), the data
    versions and evaluation set of each run, metrics with the best of each or
    deltas against a baseline run."""
    from workbench.runs.compare import compare_runs

    store = store_for(ctx, reconcile=False)  # only reads
    result = compare_runs(store, list(run_ids), baseline=baseline, diff_only=diff_only)
    if metric is not None and metric not in result.metrics:
        from workbench.core.errors import NotFoundError

        known = ", ".join(result.metric_order()) or "none"
        raise NotFoundError(f"none of these runs logged {metric!r} (metrics: {known})")
    if as_json:
        print_json(result.as_dict())
        return
    styles = {"best": "bold green", "baseline": "bold", "better": "green", "worse": "red"}
    rows = []
    for row in result.table():
        label = escape(row.marked_label)
        if row.differs:
            label = f"[bold yellow]{label}[/]"
        cells = [escape(c) for c in row.cells]
        if row.key == "status":
            cells = [fmt.status(c) for c in row.cells]
        elif row.differs:
            cells = [f"[bold yellow]{c}[/]" for c in cells]
        for i, mark in enumerate(row.marks):
            if mark in styles:
                cells[i] = f"[{styles[mark]}]{cells[i]}[/]"
        rows.append((label, *cells))
    headers = [
        f"run {i}" + (" (baseline)" if i == result.baseline else "") for i in result.ids
    ]
    _print_wide_table(headers, rows)
    remarks = ["* differs between the runs"]
    if result.baseline is None:
        remarks.append("the best value of each metric in green")
    else:
        remarks.append(
            f"metrics against run {result.baseline}: (delta) green is better, red worse"
        )
    if result.primary_metric:
        remarks.append("★ the primary metric; ↑ ↓ which way is better")
    if result.diff_only:
        hidden = len(result.params) - len(result.shown_params)
        remarks.append(f"{hidden} identical params hidden")
    note("; ".join(remarks))
    if result.evaluation_differs:
        note(
            "[yellow]the runs were not scored on the same evaluation set:"
            " their metrics are not directly comparable[/]"
        )
    _print_curves(store, result, metric or result.chart_metric)


def _print_curves(store, result, key: str | None) -> None:
    """The metric's curve of each run as a line of blocks on one shared x axis
    and one shared scale, as the TUI overlays them (nothing for one value per run)."""
    from workbench.cli.output import console
    from workbench.runs.compare import default_x_axis, overlay, resample

    if key is None or max(result.points[key]) <= 1:
        return
    x_axis = default_x_axis([n for n in result.points[key] if n > 1])
    label_width = max(len(f"run {rid}") for rid in result.ids)
    columns = max(10, min(60, console().width - label_width - 30))
    # Two points a column: the store's buckets, not every point, are read.
    drawn = overlay(store, result, key, x_axis=x_axis, max_points=2 * columns)
    lines = {rid: line for rid, line in drawn.lines.items() if line.count > 1}
    high_x = 1.0 if x_axis == "fraction" else max(line.xs[-1] for line in lines.values())
    low_x = 0.0 if x_axis == "fraction" else min(line.xs[0] for line in lines.values())
    rows = {rid: resample(line, columns, low_x, high_x) for rid, line in lines.items()}
    values = [v for row in rows.values() for v in row if v is not None]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    axis = "fraction of training" if x_axis == "fraction" else f"steps {low_x:g}..{high_x:g}"
    click.echo()
    click.echo(f"{key} over {axis} (one scale: {fmt.metric(low)}..{fmt.metric(high)})")
    latest = dict(zip(result.ids, result.metrics[key], strict=True))
    for rid, row in rows.items():
        last = latest[rid]  # the value logged last, not its bucket's mean
        click.echo(
            f"  {f'run {rid}':<{label_width}}  {sparkline(row, low, high)}"
            f"  {fmt.metric(last)} ({lines[rid].count} points)"
        )


def _print_wide_table(headers: list[str], rows: list[tuple[str, ...]]) -> None:
    """The table in as many parts as the terminal's width needs, each with the
    label column and the run columns that fit beside it, so no run is cut off."""
    from rich.text import Text

    from workbench.cli.output import console

    def width(markup: str) -> int:
        return Text.from_markup(markup).cell_len

    available = console().width
    label_width = max((width(r[0]) for r in rows), default=0) + 2
    column_widths = [
        max([len(h), *(width(r[i + 1]) for r in rows)]) + 2 for i, h in enumerate(headers)
    ]
    start = 0
    while start < len(headers):
        end, used = start, label_width
        while end < len(headers) and (end == start or used + column_widths[end] <= available):
            used += column_widths[end]
            end += 1
        print_table(
            None,
            ["", *headers[start:end]],
            [(r[0], *r[start + 1 : end + 1]) for r in rows],
        )
        start = end
        if start < len(headers):
            click.echo()


def sparkline(values: list, low: float | None = None, high: float | None = None) -> str:
    """One line of block characters; gaps (NaN) are spaces. The scale is the
    values' own unless `low` and `high` give a shared one."""
    blocks = "▁▂▃▄▅▆▇█"
    present = [v for v in values if v is not None]
    if not present:
        return ""
    if low is None or high is None:
        low, high = min(present), max(present)
    span = (high - low) or 1.0
    return "".join(" " if v is None else blocks[min(7, int((v - low) / span * 8))] for v in values)


def _headline(metrics: dict) -> dict:
    """Final metrics first: per-step series (valid_*, val_*, train_*, cv_fold_*) after them."""
    return dict(sorted(metrics.items(), key=lambda kv: (is_per_step(kv[0]), kv[0])))


def _print_summary(info: dict) -> None:
    res = info["resources"]
    gpu = res.get("gpu")
    rows = [
        ("run", f"{info['id']}  ({info['project']}, {info['trainer']})"),
        (
            "status",
            fmt.status(info["status"])
            + (f"  {escape(info['message'])}" if info["message"] else ""),
        ),
        ("exit code", info["exit_code"]),
        ("started", (info["started_at"] or "").replace("T", " ")),
        ("duration", fmt.seconds(info["duration_s"])),
        (
            "params",
            ", ".join(f"{k}={v}" for k, v in user_params(info["params"]).items()),
        ),
        ("metrics", "  ".join(f"{k}={fmt.metric(v)}" for k, v in info["metrics"].items())),
        (
            "cpu",
            f"max {res['cpu_percent_max'] or 0:.0f}%  mean {res['cpu_percent_mean'] or 0:.0f}%"
            f"  ({res['samples']} samples)",
        ),
        ("memory", f"max RSS {fmt.size(res['rss_bytes_max'])}"),
        (
            "gpu",
            "none"
            if gpu is None
            else "  ".join(
                f"#{d['index']} util max {d['utilization_max']}%"
                f" mem max {fmt.size(d['memory_used_max'])} ({d['attribution']})"
                for d in gpu
            ),
        ),
        ("artifacts", ", ".join(a["name"] for a in info["artifacts"])),
        ("log", info["log"]),
    ]
    if info.get("tags"):
        rows.insert(2, ("tags", escape(" ".join(info["tags"]))))
    if info.get("archived_at"):
        rows.insert(2, ("archived", info["archived_at"].replace("T", " ")))
    if info.get("note"):
        rows.append(("note", escape(info["note"])))
    if info.get("job_id") or info.get("executor"):
        state = info.get("slurm_state") or ""
        if info.get("slurm_reason"):
            state += f" ({info['slurm_reason']})"
        where = f"{info['executor']} job {info.get('job_id') or '-'}"
        rows.insert(2, ("job", escape(f"{where}  on {info.get('node') or '-'}  {state}".rstrip())))
    print_table(None, ["", ""], rows, wrap=True)
