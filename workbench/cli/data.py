"""`workbench data ...`"""

from __future__ import annotations

from pathlib import Path

import click

from workbench.core import formatting as fmt
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
    twice is one version. The file is only read, never moved or changed. Its
    drift profile is computed now and kept in the store folder, so that checking
    drift against it later starts from the profile.
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
            f"no data versions yet: `workbench data add {project} FILE`"
            " (training registers its data too)"
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


@data.command("schema")
@click.argument("project")
@click.option(
    "--infer", is_flag=True, help="Infer again from the reference data (pinned rules are kept)."
)
@json_option
@click.pass_context
def schema(ctx: click.Context, project: str, infer: bool, as_json: bool) -> None:
    """Show PROJECT's data schema (inferred into schema.toml on first use; edit it freely)."""
    from workbench.data.checks import project_schema

    found, path = project_schema(store_for(ctx), project, infer)
    if as_json:
        print_json({"path": str(path), **found})
        return
    note(f"schema: {path}")
    target = found.get("target", {})
    rows = []
    for name, rules in found["columns"].items():
        detail = []
        if "min" in rules:
            detail.append(f"{rules['min']:g} .. {rules['max']:g}")
        if "categories" in rules:
            cats = rules["categories"]
            detail.append(", ".join(map(str, cats[:5])) + (" …" if len(cats) > 5 else ""))
        rows.append(
            (
                name + (" (target)" if name == target.get("name") else ""),
                rules["type"],
                "yes" if rules.get("nullable") else "no",
                "; ".join(detail),
                "pinned" if rules.get("pinned") else "",
            )
        )
    print_table(None, ["COLUMN", "TYPE", "NULLS", "RULES", ""], rows)


@data.command("validate")
@click.argument("project")
@click.argument("file", type=click.Path(path_type=Path))
@json_option
@click.pass_context
def validate(ctx: click.Context, project: str, file: Path, as_json: bool) -> None:
    """Check FILE against PROJECT's schema; exit 1 when an error-level check fails.

    The report is stored with the file's dataset version. The file is only read.
    """
    from workbench.data.checks import validate as run_validation

    result = run_validation(store_for(ctx), project, file)
    if as_json:
        print_json(result)
    else:
        _print_validation(file, result)
    ctx.exit(0 if result["passed"] else 1)


@data.command("drift")
@click.argument("project")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--fail-on",
    "fail_on",
    type=click.Choice(["drift"]),
    help="Exit 1 when the data set drifts (for CI and cron); without it, drift exits 0.",
)
@json_option
@click.pass_context
def drift(
    ctx: click.Context, project: str, file: Path, fail_on: str | None, as_json: bool
) -> None:
    """Check FILE for drift against PROJECT's reference data, column by column.

    Tests follow Evidently's defaults (KS / chi-square / z-test for small
    references, normalised Wasserstein / Jensen-Shannon for large ones, a
    distance counting only when the KS or chi-square test agrees); set [drift]
    in workbench.toml to change methods and thresholds. The dataset drifts when
    at least [drift] share of the columns drift, or when any one column drifts
    strongly (Wasserstein >= 0.5 reference stds, or PSI >= 0.25, confirmed at
    p < 0.001 over the columns). With labels in FILE, the serving model's
    primary metric on it is judged against a noise band around its
    cross-validated (else bootstrapped hold-out) score.
    """
    from workbench.models.degradation import check_drift as run_drift

    result = run_drift(store_for(ctx), project, file)
    failed = fail_on == "drift" and bool(result["dataset_drift"])
    if as_json:
        print_json(result)
    else:
        _print_drift(file, result)
    ctx.exit(1 if failed else 0)


@data.command("check")
@click.argument("project")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--fail-on",
    "fail_on",
    type=click.Choice(["drift"]),
    help="Also exit 1 when the data set drifts (for CI and cron); without it, drift alone"
    " exits 0.",
)
@json_option
@click.pass_context
def check(
    ctx: click.Context, project: str, file: Path, fail_on: str | None, as_json: bool
) -> None:
    """Validate FILE and check it for drift from one read: `data validate` and
    `data drift` in one command.

    The batch is read once and registered once; both reports are stored, as the
    two commands store them. Exit 1 when validation fails (as `data validate`),
    when drift cannot be measured (the reason is printed), or with --fail-on
    drift when the data set drifts (as `data drift`); else 0. --json prints
    {file, passed, dataset_drift, validation, drift, drift_error}.
    """
    from workbench.data.checks import check as run_check

    result = run_check(store_for(ctx), project, file, performance=_performance)
    failed = (
        not result["passed"]
        or result["drift"] is None
        or (fail_on == "drift" and bool(result["dataset_drift"]))
    )
    if as_json:
        print_json(result)
        ctx.exit(1 if failed else 0)
    _print_validation(file, result["validation"])
    if result["drift"] is not None:
        _print_drift(file, result["drift"])
    else:
        note(f"{file.name}: [red]drift not checked[/]: {result['drift_error']}")
    ctx.exit(1 if failed else 0)


def _performance(store, project: str, frame, config) -> dict:
    """`models.degradation.performance_on`, imported when the batch has been read:
    imported first, it would delay the read it can overlap."""
    from workbench.models.degradation import performance_on

    return performance_on(store, project, frame, config)


def _print_validation(file: Path, result: dict) -> None:
    """A validation report as `data validate` prints it: the verdict, then the
    checks that failed."""
    failed = [c for c in result["checks"] if not c["passed"]]
    verdict = "[green]passed[/]" if result["passed"] else "[red]failed[/]"
    note(
        f"{file}: {verdict} ({result['errors']} errors, {result['warnings']} warnings"
        + (f", {result['rows']} rows" if result["rows"] is not None else "")
        + ")"
    )
    if failed:
        print_table(
            None,
            ["SEVERITY", "CHECK", "COLUMN", "WHAT"],
            [
                (
                    "[red]error[/]" if c["severity"] == "error" else "[yellow]warn[/]",
                    c["check"],
                    c["column"] or "",
                    c["message"],
                )
                for c in failed
            ],
            wrap=True,
        )


def _print_drift(file: Path, result: dict) -> None:
    """A drift report as `data drift` prints it: the columns, the verdict and the
    serving model's performance on the batch."""
    print_table(
        None,
        ["COLUMN", "KIND", "METHOD", "P-VALUE/DISTANCE", "THRESHOLD", "EFFECT", "DRIFT"],
        [
            (
                c["column"],
                c.get("kind") or "",
                c.get("method") or "skipped",
                fmt.metric(c["p_value"] if c.get("p_value") is not None else c.get("statistic")),
                fmt.metric(c.get("threshold")),
                _effect(c),
                "[red]strong[/]" if c.get("strong") else "[red]yes[/]" if c.get("drifted") else "no",
            )
            for c in result["columns"]
        ],
    )
    verdict = "[red]drift[/]" if result["dataset_drift"] else "[green]no drift[/]"
    note(f"{file.name}: {verdict}: {result['verdict_reason']}")
    perf = result["performance"]
    if perf["available"]:
        flag = " [red](degraded)[/]" if perf["degraded"] else ""
        text = perf.get("message") or (
            f"{perf['metric']} {fmt.metric(perf['batch'])} on this batch"
            f" vs {fmt.metric(perf['training'])} at training"
        )
        note(f"model {perf['model']} (run {perf['run']}): {text}{flag}")
    else:
        note(f"model performance: not computed ({perf['reason']})")


@data.command("labels")
@click.argument("project")
@click.argument("file", type=click.Path(path_type=Path))
@json_option
@click.pass_context
def labels(ctx: click.Context, project: str, file: Path, as_json: bool) -> None:
    """Receive labels for served predictions: FILE (CSV or Parquet) has request_id,
    the label (a `label` column or the project's target) and optionally `row`
    (the row's place in its request, 0 when absent).

    The labels are kept under the project (.workbench/labels/) and joined to the
    prediction log by `workbench monitor`, which then reports live performance.
    Ids given two different labels, empty ids or an unreadable file are refused
    (exit 2) and nothing is kept; ids not in the prediction log are kept and
    counted. The same file twice is received once.
    """
    from workbench.monitor.service import receive_labels

    result = receive_labels(store_for(ctx), project, file)
    if as_json:
        print_json(result)
        return
    if result["already_received"]:
        note(f"{file.name}: already received ({result['stored']})")
        return
    note(f"[green]received {result['labels']:,} labels[/] for {project} from {file.name}")
    if result["repeated_rows"]:
        note(f"  {result['repeated_rows']:,} rows repeated a label already given; counted once")
    if result["unlabelled_rows"]:
        note(f"  {result['unlabelled_rows']:,} rows had no label and were left out")
    if result["unknown_ids"]:
        shown = ", ".join(result["unknown_examples"])
        more = " …" if result["unknown_ids"] > len(result["unknown_examples"]) else ""
        note(
            f"  [yellow]{result['unknown_ids']:,} request ids are not in the prediction log[/]"
            f" ({shown}{more}); kept: they join when their requests are logged"
        )


def _effect(column: dict) -> str:
    """The column's effect size: W/std for numeric columns, PSI for categorical."""
    if column.get("effect_size") is None:
        return ""
    name = "W/std" if column["effect_method"] == "wasserstein" else "PSI"
    return f"{name} {column['effect_size']:.3g}"
