"""`workbench monitor`: the served model's traffic, drift and live performance."""

from __future__ import annotations

import click

from workbench.cli.common import json_option, store_for
from workbench.cli.output import note, print_json, print_table

EXIT_ALERT = 1


@click.command()
@click.argument("project")
@click.option(
    "--window",
    default="1d",
    show_default=True,
    help="How the log is cut: a span of time (30m, 1h, 1d) or a number of logged rows.",
)
@click.option(
    "--last",
    type=click.IntRange(min=1),
    default=24,
    show_default=True,
    help="How many of the newest windows with traffic to report.",
)
@click.option(
    "--fail-on",
    "fail_on",
    type=click.Choice(["drift", "degraded"]),
    multiple=True,
    help="Exit 1 when the newest window drifts (inputs or predictions) or is degraded "
    "(for CI and cron); may be given twice.",
)
@json_option
@click.pass_context
def monitor(
    ctx: click.Context,
    project: str,
    window: str,
    last: int,
    fail_on: tuple[str, ...],
    as_json: bool,
) -> None:
    """Monitor PROJECT's served model from its prediction log (written by
    `workbench serve` and `workbench predict --log`).

    Per window: requests, error rate, latency p50/p99, input drift against the
    training reference (the tests and [drift] settings of `data drift`),
    prediction drift against the serving version's predictions on its hold-out,
    and, once labels have arrived (`workbench data labels`), the primary metric
    judged against the noise band of the degradation check.

    With [automation] retrain_on = "monitor" (and on_new_data =
    "validate-and-retrain"), drift or degradation in the newest window queues a
    pipeline over the labelled served traffic: the usual steps and gate.

    Exit codes: 0, or 1 with --fail-on when the newest window drifts (drift) or
    is degraded (degraded); 2 for bad input. A damaged part of the log is
    reported and skipped, never deleted.
    """
    from workbench.monitor.report import monitor as run_monitor

    from workbench.automation.monitoring import retrain_from_monitor

    store = store_for(ctx)
    report = run_monitor(store, project, window, last)
    report["retrain"] = retrain_from_monitor(store, project, report)
    failed = ("drift" in fail_on and report["drift"]) or (
        "degraded" in fail_on and report["degraded"]
    )
    if as_json:
        print_json(report)
    else:
        _show(report)
    ctx.exit(EXIT_ALERT if failed else 0)


def _show(report: dict) -> None:
    for damaged in report["damaged_parts"]:
        note(f"[yellow]skipped a damaged log part[/] {damaged['path']}: {damaged['reason']}")
    for damaged in report["damaged_labels"]:
        note(f"[yellow]skipped a damaged labels file[/] {damaged}")
    if not report["windows"]:
        note(f"{report['project']}: no requests logged yet in {report['log_folder']}")
        return
    print_table(
        None,
        ["WINDOW", "REQUESTS", "ERRORS", "P50 MS", "P99 MS", "INPUT DRIFT", "PRED DRIFT", "LIVE"],
        [
            (
                w["start"].replace("+00:00", "Z"),
                f"{w['requests']:,}",
                f"{w['error_rate']:.1%}",
                _ms(w["latency_ms"]["p50"]),
                _ms(w["latency_ms"]["p99"]),
                _drift(w["input_drift"]),
                _drift(w["prediction_drift"]),
                _live(w["performance"]),
            )
            for w in report["windows"]
        ],
    )
    status = report["status"]
    colour = "green" if status == "ok" else "red"
    note(f"{report['project']}: [{colour}]{status}[/] in the newest window")
    for alert in report["alerts"]:
        note(f"  {alert}")
    retrain = report.get("retrain") or {}
    if retrain.get("triggered"):
        note(
            f"[yellow]retraining queued as pipeline {retrain['pipeline']}[/] with "
            f"{retrain['rows']:,} labelled served rows ([automation] retrain_on = \"monitor\");"
            f" the watcher runs it, or `workbench pipeline run {report['project']}`"
        )


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _drift(result: dict) -> str:
    if not result.get("available", False):
        return "-"
    if result["dataset_drift"]:
        return "[red]" + ", ".join(result["drifted_columns"][:3]) + "[/]"
    return "no"


def _live(result: dict) -> str:
    if not result.get("available"):
        return "-"
    score = result.get("score")
    text = f"{result['metric']} {score:.3g}" if isinstance(score, int | float) else result["metric"]
    return f"[red]{text} degraded[/]" if result.get("degraded") else text
