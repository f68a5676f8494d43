"""`workbench predict`: batch predictions from a bundle, chunk by chunk."""

from __future__ import annotations

from pathlib import Path

import click

from workbench.cli.common import json_option
from workbench.cli.output import console, note, print_json
from workbench.core.errors import UsageError


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.argument("input_", metavar="INPUT", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="File to write: .csv, .csv.gz or .parquet (default: CSV on stdout).",
)
@click.option(
    "--chunk-rows",
    type=click.IntRange(min=1),
    default=50_000,
    show_default=True,
    help="Rows read and predicted at a time.",
)
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Predict the valid rows; write the others, with the reason, to OUTPUT.rejected.csv.",
)
@click.option(
    "--rejected",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where --skip-invalid writes the rejected rows (CSV).",
)
@click.option(
    "--trust",
    is_flag=True,
    help="Load the bundle even if it is unsigned or signed by a key this store does not trust.",
)
@click.option(
    "--log",
    "log_predictions",
    is_flag=True,
    help="Log the predictions for `workbench monitor` under the bundle's project, and add "
    "request_id and row columns to the output (for `workbench data labels`).",
)
@json_option
@click.pass_context
def predict(
    ctx: click.Context,
    path: Path,
    input_: Path,
    output: Path | None,
    chunk_rows: int,
    skip_invalid: bool,
    rejected: Path | None,
    trust: bool,
    log_predictions: bool,
    as_json: bool,
) -> None:
    """Predict every row of INPUT with the bundle at PATH (a folder or .zip).

    INPUT is CSV, CSV.gz or Parquet (by its suffix) with the model's feature
    columns; other columns are ignored and kept. The output is the input plus
    `prediction` and, for a classifier, `proba_<class>` per class. The bundle is
    verified before it is loaded, and the columns are checked before anything is
    written: a missing feature column exits 2 naming it.

    The file gets `data validate`'s checks first: an empty or header-only file,
    binary or non-UTF-8 content, another delimiter, or rows with the wrong number
    of fields (a truncated last row) exit 2 with the reason, and nothing is
    written. With --skip-invalid, such rows, and rows whose numeric features are
    not numbers, are set aside with the reason in OUTPUT.rejected.csv (or
    --rejected FILE) and the others predicted.

    A bundle that is unsigned or signed by a key this store does not trust
    (`workbench keys`) is refused with exit 1 unless --trust.

    With --log, each chunk is logged as one request (its [monitor] sample_rate
    applies to rows) to the prediction log of the bundle's project, which must be
    registered in this store.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from workbench.models import bundle_runtime as runtime
    from workbench.models.bundle import load_bundle, runtime_errors

    if as_json and output is None:
        raise UsageError("--json prints a summary on stdout; give the predictions a file with -o")
    if not input_.is_file():
        raise UsageError(f"{input_}: no such file")
    if rejected is not None and not skip_invalid:
        raise UsageError("--rejected goes with --skip-invalid")
    with runtime_errors():
        runtime.table_format(input_)
        if output is not None:
            runtime.table_format(output)
        if skip_invalid and output is None and rejected is None:
            raise runtime.InputError(
                "--skip-invalid writes the rows it sets aside next to the output: "
                "give -o OUTPUT (or --rejected FILE)"
            )
    bundle = load_bundle(path, trust=trust)
    stderr = console(stderr=True)
    progress = Progress(
        TextColumn("predicting"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%  {task.fields[rows]:,} rows"),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
        disable=not stderr.is_terminal,
    )
    request_log, on_chunk = None, None
    if log_predictions:
        from workbench.cli.common import store_for
        from workbench.monitor.service import batch_logger, open_log

        request_log, _ = open_log(store_for(ctx), bundle.manifest, source="predict", required=True)
        on_chunk = batch_logger(request_log, bundle)
    with progress, runtime_errors():
        task = progress.add_task("predict", total=1.0, rows=0)
        summary = runtime.predict_file(
            bundle,
            input_,
            output,
            chunk_rows=chunk_rows,
            progress=lambda rows, done: progress.update(task, completed=done, rows=rows),
            skip_invalid=skip_invalid,
            rejected_path=rejected,
            on_chunk=on_chunk,
        )
    if request_log is not None:
        stats = request_log.close()
        summary["logged_rows"] = stats.written_rows
        summary["log_folder"] = str(request_log.folder)
    if as_json:
        print_json(summary)
        return
    where = output or "stdout"
    note(
        f"[green]predicted {summary['rows']:,} rows[/] with {summary['model']} to {where} "
        f"in {summary['seconds']:.2f} s"
    )
    if summary["rejected"]:
        note(
            f"  [yellow]set aside {summary['rejected']:,} invalid rows[/], with the reason, "
            f"in {summary['rejected_file']}"
        )
    if summary["unseen_categories"]:
        unseen = ", ".join(f"{k} ({v})" for k, v in summary["unseen_categories"].items())
        note(f"  categories the model never saw, predicted as missing: {unseen}")
    if summary["ignored_columns"]:
        note(f"  not features, kept as they are: {', '.join(summary['ignored_columns'])}")
