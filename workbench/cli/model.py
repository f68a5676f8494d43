"""`workbench model ...`: the registry, promotion, export and verification."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from workbench.core import formatting as fmt
from workbench.cli.common import json_option, store_for
from workbench.cli.output import note, print_json, print_table
from workbench.core.metric_rules import is_per_step
from workbench.models import registry
from workbench.models.export import FORMATS



@click.group()
def model() -> None:
    """Model versions, aliases (champion, challenger, your own), promotion and export.

    Every succeeded training run that saves a model registers a version. A
    model is named PROJECT (its champion, else its newest version),
    PROJECT@VERSION or PROJECT@ALIAS.
    """


@model.command("list")
@click.argument("project")
@json_option
@click.pass_context
def list_(ctx: click.Context, project: str, as_json: bool) -> None:
    """List PROJECT's model versions, newest first, with aliases and metrics.

    Each version's own score is on its own hold-out, and hold-outs differ as the
    training data grows; so every version is also scored on one common
    evaluation set, the newest version's hold-out (the COMMON column; in --json
    `own_score`, `common_score`, `common_metrics` and `common_evaluation`).

    Aliases that arrived in an archive from another store are listed under the
    versions as proposals, with the command that accepts one (in --json, each
    version's `proposals`).
    """
    from workbench.models.gate import common_scores

    store = store_for(ctx)
    versions = registry.list_versions(store, project)
    proposals = registry.alias_proposals(store, project)
    metric = _primary_metric(store, project, versions)
    common = common_scores(versions, metric) if versions else {"evaluation": None, "scores": {}}
    documents = []
    for v in versions:
        scored = common["scores"].get(v.version, {})
        documents.append(
            {
                **v.document(),
                "primary_metric": metric,
                "own_score": v.metrics.get(metric) if metric else None,
                "common_score": scored.get("score"),
                "common_metrics": scored.get("metrics"),
                "common_evaluation": common["evaluation"],
                "common_error": scored.get("error"),
                "proposals": [p.document() for p in proposals if p.version == v.version],
            }
        )
    if as_json:
        print_json(documents)
        return
    if not versions:
        note(f"no model versions yet: `workbench run start {project}` trains one")
        return
    keys = sorted({k for v in versions for k in v.metrics if not is_per_step(k)})
    where = common["evaluation"]["ref"].rpartition("@")[2] if common["evaluation"] else "-"
    common_header = f"{(metric or 'score').upper()} ON V{where} HOLD-OUT"
    print_table(
        None,
        [
            "VERSION",
            "ALIASES",
            "RUN",
            "FRAMEWORK",
            *(k.upper() for k in keys),
            common_header,
            "CREATED",
        ],
        [
            (
                v.version,
                ", ".join(v.aliases),
                v.run_id,
                v.framework,
                *(fmt.metric(v.metrics.get(k)) for k in keys),
                fmt.metric(d["common_score"]) if d["common_score"] is not None else "-",
                fmt.ago(time.time() - v.created_at),
            )
            for v, d in zip(versions, documents, strict=True)
        ],
    )
    if common["evaluation"]:
        note(
            f"{common_header.lower()}: every version scored on the {common['evaluation']['rows']}"
            f" hold-out rows of {common['evaluation']['ref']}"
        )
    if proposals:
        _print_proposals(project, proposals)


def _print_proposals(project: str, proposals: list[registry.AliasProposal]) -> None:
    click.echo("\nalias proposals (from archives of other stores):")
    print_table(
        None,
        ["ID", "ALIAS", "VERSION", "FROM STORE", "PROPOSED", "ACCEPT WITH"],
        [
            (
                p.id,
                p.alias,
                p.version,
                (p.source_store or "?")[:12],
                fmt.ago(time.time() - p.proposed_at),
                f"workbench model accept {project} {p.id}",
            )
            for p in proposals
        ],
    )


@model.command("proposals")
@click.argument("project")
@json_option
@click.pass_context
def proposals_(ctx: click.Context, project: str, as_json: bool) -> None:
    """List PROJECT's alias proposals: aliases another store gave versions that
    an archive brought here. `model accept` takes one through the promotion
    gate; `model reject` forgets it."""
    found = registry.alias_proposals(store_for(ctx), project)
    if as_json:
        print_json([p.document() for p in found])
        return
    if not found:
        note(f"no alias proposals for {project}")
        return
    _print_proposals(project, found)


@model.command("accept")
@click.argument("project")
@click.argument("proposal")
@click.option(
    "--force", is_flag=True, help="Move the alias even if the gate says no (recorded as forced)."
)
@click.option("--dry-run", is_flag=True, help="Only say what the gate decides.")
@json_option
@click.pass_context
def accept(
    ctx: click.Context, project: str, proposal: str, force: bool, dry_run: bool, as_json: bool
) -> None:
    """Accept PROPOSAL (ALIAS:VERSION, from `model proposals`) of PROJECT.

    The alias moves through this store's promotion gate, as `model promote`
    does: the other store judged the version on its own data, this one judges
    it against the version that holds the alias here. --force moves it anyway
    (and the decision says so). Exit status: 0 accepted, 3 the gate kept the
    current holder (the proposal stays until accepted with --force or rejected).
    """
    from workbench.models.gate import promote as run_gate

    store = store_for(ctx)
    found = registry.find_proposal(store, project, proposal)
    version = registry.resolve(store, f"{project}@{found.version}")
    decision = run_gate(store, version, found.alias, force=force, dry_run=dry_run)
    if decision.promoted and not dry_run:
        registry.drop_proposal(store, found)
        from workbench.automation.notify import notify

        notify(
            store,
            "model.promoted",
            version.project,
            f"version {version.version} is {found.alias}: {decision.reason}",
            decision.document(),
        )
    if as_json:
        print_json({**decision.document(), "proposal": found.id, "dry_run": dry_run})
    else:
        would = "would be" if dry_run else "is"
        if decision.promoted:
            note(f"[green]{version.ref} {would} {found.alias}[/]: {decision.reason}")
        else:
            note(
                f"[yellow]{version.ref} {would} not {found.alias}[/]: {decision.reason}"
                f" (`--force` moves it anyway; `workbench model reject {project} {found.id}`"
                " forgets the proposal)"
            )
    if not decision.promoted:
        sys.exit(3)


@model.command("reject")
@click.argument("project")
@click.argument("proposal")
@click.pass_context
def reject(ctx: click.Context, project: str, proposal: str) -> None:
    """Forget PROPOSAL (ALIAS:VERSION, from `model proposals`) of PROJECT; the
    aliases here stay as they are."""
    store = store_for(ctx)
    found = registry.find_proposal(store, project, proposal)
    registry.drop_proposal(store, found)
    note(f"rejected {found.alias} for {project}@{found.version}")


def _primary_metric(store, project: str, versions: list) -> str | None:
    """The project's primary metric ([train] metric), else the one recorded with
    the newest version."""
    from workbench.core.errors import WorkbenchError
    from workbench.projects import project_config

    task = next((v.task for v in versions if v.task), None)
    try:
        return project_config(store, project)[1].primary_metric(task)
    except WorkbenchError:
        return next((v.metric for v in versions if v.metric), None)


@model.command("show")
@click.argument("ref")
@json_option
@click.pass_context
def show(ctx: click.Context, ref: str, as_json: bool) -> None:
    """Show one model version: PROJECT, PROJECT@VERSION or PROJECT@ALIAS."""
    store = store_for(ctx)
    version = registry.resolve(store, ref)
    document = version.document()
    document["datasets"] = _datasets(store, version.run_id)
    document["promotions"] = [
        p
        for p in registry.promotions(store, version.project)
        if version.version in (p["challenger"], p["champion"])
    ]
    if version.schema_sha256:
        schema = version.schema
        document["features"] = schema["features"]
        document["target"] = schema["target"]
    if as_json:
        print_json(document)
        return
    rows = [
        ("version", f"{version.ref}  {', '.join(version.aliases)}"),
        ("run", version.run_id),
        ("framework", f"{version.framework} {version.framework_version or ''}"),
        ("task", version.task),
        ("primary metric", version.metric),
        *((f"  {k}", fmt.metric(v)) for k, v in sorted(version.metrics.items())),
        ("model", f"{version.model_name} {version.model_sha256[:12]}"),
        *(
            (f"data ({d['role']})", f"{d['sha256'][:12]} {d['rows']} rows {d['path']}")
            for d in document["datasets"]
        ),
        ("created", fmt.ago(time.time() - version.created_at)),
    ]
    if "features" in document:
        rows.append(("features", ", ".join(f["name"] for f in document["features"])))
        rows.append(("target", document["target"]["name"]))
    for p in document["promotions"][:5]:
        verdict = "promoted" if p["promoted"] else "kept"
        rows.append((f"gate → {p['alias']}", f"{verdict}: {p['reason']}"))
    print_table(None, ["", ""], rows, wrap=True)


@model.command("promote")
@click.argument("project")
@click.argument("version")
@click.option("--alias", default=registry.CHAMPION, show_default=True, help="Alias to move.")
@click.option("--force", is_flag=True, help="Move the alias even if the gate says no.")
@click.option("--dry-run", is_flag=True, help="Only say what the gate decides.")
@click.option(
    "--margin",
    default=None,
    metavar="NUMBER",
    help="Override [automation] margin for this decision (a number >= 0).",
)
@click.option(
    "--gate",
    "method",
    type=click.Choice(["bootstrap", "point"]),
    default=None,
    help="Override [automation] gate: paired bootstrap (default) or point comparison.",
)
@json_option
@click.pass_context
def promote(
    ctx: click.Context,
    project: str,
    version: str,
    alias: str,
    force: bool,
    dry_run: bool,
    margin: str | None,
    method: str | None,
    as_json: bool,
) -> None:
    """Give VERSION of PROJECT an alias, through the promotion gate.

    Both models are scored on VERSION's hold-out rows (the holder re-scored
    there when they were trained on different data). With the default
    [automation] gate = "bootstrap" the version takes the alias only when the
    95 % paired-bootstrap interval of its gain on the primary metric ([train]
    metric) lies above [automation] margin; gate = "point" compares the two
    scores as numbers. The decision, both scores, the interval and the method
    are recorded. Exit status: 0 promoted, 3 the gate kept the current holder.
    """
    from workbench.models.gate import check_margin
    from workbench.models.gate import promote as run_gate

    checked = None if margin is None else check_margin(margin)
    store = store_for(ctx)
    registry.check_alias(alias)
    challenger = registry.resolve(store, f"{project}@{version}")
    decision = run_gate(
        store,
        challenger,
        alias,
        force=force,
        dry_run=dry_run,
        margin=checked,
        method=method,
    )
    if decision.promoted and not dry_run:
        from workbench.automation.notify import notify

        notify(
            store,
            "model.promoted",
            challenger.project,
            f"version {challenger.version} is {alias}: {decision.reason}",
            decision.document(),
        )
    if as_json:
        print_json({**decision.document(), "dry_run": dry_run})
    else:
        would = "would be" if dry_run else "is"
        if decision.promoted:
            note(f"[green]{challenger.ref} {would} {alias}[/]: {decision.reason}")
        else:
            note(f"[yellow]{challenger.ref} {would} not {alias}[/]: {decision.reason}")
    if not decision.promoted:
        sys.exit(3)


@model.command("unalias")
@click.argument("project")
@click.argument("alias")
@click.pass_context
def unalias(ctx: click.Context, project: str, alias: str) -> None:
    """Remove ALIAS from PROJECT's models."""
    registry.remove_alias(store_for(ctx), project, alias)
    note(f"removed {alias}")


@model.command("export")
@click.argument("ref")
@click.option(
    "--format",
    "fmt_",
    default="bundle",
    show_default=True,
    help=f"{', '.join(FORMATS)}, or a format added by a plugin (`workbench plugins list`).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="Folder to create (for a bundle, a path ending in .zip makes a zip).",
)
@click.option("--with-wheels", is_flag=True, help="Bundle: add the wheels it needs (no network).")
@click.option(
    "--wheelhouse",
    "wheelhouses",
    multiple=True,
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    help="Folder of wheels to take them from (repeatable); pip's cache is searched too.",
)
@click.option("--docker", is_flag=True, help="Bundle: add a Dockerfile that serves the model.")
@click.option(
    "--tolerance",
    type=float,
    default=1e-4,
    show_default=True,
    help="ONNX: largest difference allowed from the native model's predictions.",
)
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
@json_option
@click.pass_context
def export(
    ctx: click.Context,
    ref: str,
    fmt_: str,
    output: Path,
    with_wheels: bool,
    wheelhouses: tuple[Path, ...],
    docker: bool,
    tolerance: float,
    force: bool,
    as_json: bool,
) -> None:
    """Export a model (REF: PROJECT, PROJECT@VERSION or PROJECT@ALIAS).

    bundle: a verified folder or .zip that runs no code at load, with a
    manifest of SHA-256 hashes, pinned requirements and a README.
    mlflow: a directory for mlflow.pyfunc.load_model.
    onnx: a model checked against the native one with onnxruntime.
    """
    from workbench.models.export import export_model

    store = store_for(ctx)
    version = registry.resolve(store, ref)
    report = export_model(
        store,
        version,
        fmt_,
        output,
        with_wheels=with_wheels,
        wheelhouses=list(wheelhouses),
        docker=docker,
        tolerance=tolerance,
        force=force,
    )
    if as_json:
        print_json(report)
    else:
        note(f"[green]exported {version.ref} as {fmt_}[/] to {report['path']}")
        for line in report.get("notes", []):
            note(f"  {line}")


@model.command("verify")
@click.argument("path", type=click.Path(path_type=Path))
@json_option
def verify(path: Path, as_json: bool) -> None:
    """Check a bundle (folder or .zip): every file against its manifest, its
    signature, and its model file against the loading rules, and say who signed it.

    A changed, missing or extra file, a path leaving the bundle, a link, a file
    over the size limits, a signature that does not match, or a model holding
    anything but data and allow-listed classes (or malformed LightGBM text) is
    refused with the reason (exit 1). The signer is "this store", "trusted key
    NAME" (in $WORKBENCH_HOME/trusted_keys), "unknown signer" or "unsigned";
    `predict` and `serve` load only the first two unless given --trust.
    """
    from workbench.models.bundle import verify_bundle

    result = verify_bundle(path)
    if as_json:
        print_json(result)
    elif result["ok"]:
        note(f"[green]ok[/]: {result['files']} files match {path}/manifest.json")
        who = result["signer"]
        fingerprint = f" ({who['fingerprint']})" if who["fingerprint"] else ""
        note(f"signed by: {who['signer']}{fingerprint}")
    else:
        for problem in result["problems"]:
            note(f"[red]refused[/]: {problem}")
    if not result["ok"]:
        sys.exit(1)


@model.command("report")
@click.argument("ref")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the report as one self-contained HTML file (charts inline, loads nothing).",
)
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
@json_option
@click.pass_context
def report(ctx: click.Context, ref: str, output: Path | None, force: bool, as_json: bool) -> None:
    """Report on a model (REF: PROJECT, PROJECT@VERSION or PROJECT@ALIAS).

    Hold-out metrics with 95 % bootstrap intervals, feature importance (the
    model's gain and permutation importance), for classification the confusion
    matrix, ROC, precision-recall and calibration curves, for regression the
    residuals, the training data's profile, the lineage (data versions, run,
    params, environment) and the promotion gate's decisions. Without -o or
    --json a summary is printed; -o writes the whole report as HTML, the same
    model card a bundle carries.
    """
    from rich.markup import escape

    from workbench.core.errors import UsageError
    from workbench.core.files import atomic_write_text
    from workbench.models.report import build_report
    from workbench.models.report_html import render_html

    if output is not None:
        output = output.expanduser().absolute()
        if (output.exists() or output.is_symlink()) and not force:
            raise UsageError(f"{output} already exists; pass --force to replace it")
        if output.is_dir():
            raise UsageError(f"{output} is a folder; -o names the HTML file to write")
    store = store_for(ctx)
    version = registry.resolve(store, ref)
    from workbench.cli.output import console

    with console(stderr=True).status(f"reporting on {version.ref}…") as status:
        built = build_report(store, version, progress=lambda step: status.update(f"{step}…"))
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(output, render_html(built))
    if as_json:
        print_json(built.document())
    else:
        _print_report(built)
    if output is not None:
        note(f"[green]wrote the report of {version.ref}[/] to {escape(str(output))}")
    elif not as_json:
        note(f"the full report with charts: workbench model report {escape(ref)} -o report.html")


def _heading(text: str) -> None:
    from rich.markup import escape

    from workbench.cli.output import console

    console().print(f"\n[b]{escape(text)}[/b]", soft_wrap=True)


def _print_report(built) -> None:
    """The report's tables for a terminal (the charts are in the HTML)."""
    from rich.markup import escape

    aliases = f"  ({', '.join(built.aliases)})" if built.aliases else ""
    rows = f", {built.holdout_rows} hold-out rows" if built.holdout_rows is not None else ""
    note(f"[b]{escape(built.ref)}[/b]{escape(aliases)}: {built.framework} {built.task or ''}{rows}")
    for line in built.notes:
        note(f"[yellow]note[/]: {escape(line)}")
    if built.metrics:
        _heading("Metrics, with 95 % bootstrap intervals (* primary)")
        print_table(
            None,
            ["METRIC", "VALUE", "LOW", "HIGH"],
            [
                (
                    m.name + (" *" if m.primary else ""),
                    fmt.metric(m.value),
                    fmt.metric(m.low),
                    fmt.metric(m.high) if m.why is None else m.why,
                )
                for m in built.metrics
            ],
        )
    if built.importance:
        _heading(f"Feature importance (permutation: how much {built.importance_metric} worsens)")
        print_table(
            None,
            ["FEATURE", "PERMUTATION", "±", "GAIN"],
            [
                (
                    i.feature,
                    fmt.metric(i.permutation),
                    fmt.metric(i.permutation_std),
                    fmt.metric(i.gain),
                )
                for i in built.importance[:15]
            ],
        )
    if built.confusion is not None:
        labels = built.confusion.labels
        _heading("Confusion matrix (rows: truth, columns: predicted)")
        print_table(
            None,
            ["", *labels],
            [
                (label, *counts)
                for label, counts in zip(labels, built.confusion.counts, strict=True)
            ],
        )
    for chart in built.charts:
        areas = ", ".join(f"{c.label} {c.area:.3f}" for c in chart.curves if c.area is not None)
        if areas:
            note(f"{chart.title} area: {escape(areas)}")
    if built.residuals is not None:
        note(f"residuals: mean {built.residuals.mean:.4g}, std {built.residuals.std:.4g}")
    for d in built.decisions[:5]:
        verdict = "promoted" if d.promoted else "kept"
        note(f"gate v{d.challenger} → {d.alias}: {verdict}: {escape(d.reason)}")


def _datasets(store, run_id: int) -> list[dict]:
    from workbench.data.versions import run_datasets

    return [
        {k: d[k] for k in ("sha256", "path", "rows", "role")} for d in run_datasets(store, run_id)
    ]
