"""`workbench archive export|import|verify|show`: one-file project hand-over."""

from __future__ import annotations

import contextlib
import datetime
import sys
from pathlib import Path

import click

from workbench.cli.backup import _progress
from workbench.cli.common import json_option, store_for
from workbench.cli.output import note, print_json

_MB = 1 << 20


@click.group()
def archive() -> None:
    """Project archives: export a project's history to one signed file, check it,
    and import it into another store (idempotently)."""


@archive.command("export")
@click.argument("projects", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The archive file to write (.wbx, a zip).",
)
@click.option(
    "--since",
    help="Only what changed since: `last` (the last export --to NAME), a date, or a watermark.",
)
@click.option("--to", "to", help="The destination's name; --since last remembers it.")
@click.option("--runs", help="Only these run ids, comma-separated.")
@click.option(
    "--include",
    help="What files to carry, comma-separated: artifacts, models, datasets, wheels"
    " (default: artifacts,models). wheels: a wheelhouse for serving its models.",
)
@click.option(
    "--wheelhouse",
    "wheelhouses",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="With --include wheels: a folder of wheels to take them from (repeatable);"
    " pip's cache and local indexes are searched too. Nothing is downloaded.",
)
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@json_option
def export_cmd(
    projects: tuple[str, ...],
    output: Path,
    since: str | None,
    to: str | None,
    runs: str | None,
    include: str | None,
    wheelhouses: tuple[Path, ...],
    force: bool,
    as_json: bool,
) -> None:
    """Export PROJECTS' finished runs, metrics, dataset and model versions,
    aliases, promotions and pipelines, with their files, to one signed archive."""
    from workbench.archive.export import export_archive
    store = store_for(click.get_current_context(), reconcile=False)
    with _progress() as progress:
        made = export_archive(
            store,
            list(projects),
            output,
            since=since,
            to=to,
            runs=runs,
            include=include,
            force=force,
            wheelhouses=wheelhouses,
            progress=progress,
        )
    if as_json:
        print_json(
            {
                "file": str(made.path),
                "counts": made.counts,
                "members": made.members,
                "bytes": made.bytes,
                "since": made.since,
                "watermark": made.watermark,
                "signer": made.signer,
                "wheels": list(made.wheels),
                "notes": list(made.notes),
            }
        )
        return
    c = made.counts
    wheels = f", {len(made.wheels)} wheels" if made.wheels else ""
    note(
        f"exported {c['runs']} runs, {c['metric_points']} metric points,"
        f" {c['model_versions']} model versions and {c['blobs']} files{wheels}"
        f" ({made.bytes / _MB:.1f} MB) to {made.path}"
    )
    for line in made.notes:
        note(line)


def _show(file: Path, as_json: bool, verb: str) -> None:
    from workbench.archive.format import read_archive, summary
    from workbench.archive.importer import check_records

    with _progress() as progress:
        checked = read_archive(file, progress=progress)
    check_records(checked)
    found = summary(checked)
    if as_json:
        print_json(found)
        return
    if verb == "verify":
        click.echo(f"{file}: ok, {found['members']} members checked; signer: {found['signer']}")
        return
    created = found["created_at"]
    when = (
        datetime.datetime.fromtimestamp(created, datetime.timezone.utc).strftime("%Y-%m-%d %H:%MZ")
        if isinstance(created, (int, float))
        else "?"
    )
    lines = [
        f"archive    {found['file']}",
        f"format     {found['format_version']} (workbench {found['workbench_version']})",
        f"from       store {found['store_id']}, {when}",
        f"projects   {', '.join(found['projects'] or [])}",
        f"signer     {found['signer']} {found['fingerprint'] or ''}".rstrip(),
        f"since      {found['since'] if found['since'] is not None else 'everything'}",
        f"watermark  {found['watermark']}",
        f"size       {found['bytes'] / _MB:.1f} MB in {found['members']} members",
    ]
    for key, value in sorted((found["counts"] or {}).items()):
        lines.append(f"  {key:<18} {value}")
    if found["wheels"]:
        lines.append(f"wheels     {len(found['wheels'])} for serving its models:")
        lines.extend(f"  {name}" for name in found["wheels"])
    click.echo("\n".join(lines))


@archive.command("verify")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@json_option
def verify(file: Path, as_json: bool) -> None:
    """Check FILE end to end (manifest, every member's size and SHA-256, the
    signature) without importing it."""
    _show(file, as_json, "verify")


@archive.command("show")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@json_option
def show(file: Path, as_json: bool) -> None:
    """What FILE holds (projects, counts, signer), checked, without importing it."""
    _show(file, as_json, "show")


@archive.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Only say what would be new, identical, conflicting.")
@click.option(
    "--on-conflict",
    type=click.Choice(["skip", "rename", "overwrite"]),
    default="skip",
    show_default=True,
    help="A run here that the archive holds in another state: keep it, import the"
    " archive's as another run, or take the archive's.",
)
@click.option(
    "--accept-aliases",
    is_flag=True,
    help="Move aliases as the archive has them, instead of keeping them as proposals.",
)
@click.option(
    "--project-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The project's folder on this machine (with several projects: DIR/NAME)."
    " Without it, a folder that does not exist here is asked for on a terminal.",
)
@click.option(
    "--wheels-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to leave the wheels the archive carries (default: the store's wheels/).",
)
@json_option
def import_cmd(
    file: Path,
    dry_run: bool,
    on_conflict: str,
    accept_aliases: bool,
    project_dir: Path | None,
    wheels_dir: Path | None,
    as_json: bool,
) -> None:
    """Import FILE into this store: everything is verified first, then merged in
    one transaction; importing the same archive again changes nothing.

    Tags merge; a run's note is taken when this store's copy has none, else by
    --on-conflict. A project whose folder does not exist here needs
    --project-dir (or an answer on a terminal)."""
    from workbench.archive.importer import prepare_import

    store = store_for(click.get_current_context(), reconcile=False)
    with contextlib.ExitStack() as stack:
        with _progress() as progress:
            plan = stack.enter_context(
                prepare_import(store, file, stage=not dry_run, progress=progress)
            )
        folders = {} if dry_run else _ask_folders(plan.missing_folders(project_dir))
        report = plan.apply(
            dry_run=dry_run,
            on_conflict=on_conflict,
            accept_aliases=accept_aliases,
            project_dir=project_dir,
            folders=folders,
            wheels_dir=wheels_dir,
        )
    if as_json:
        print_json(report.as_dict())
        return
    head = "would import" if dry_run else "imported"
    click.echo(f"{head} {file} (signer: {report.signer})")
    click.echo(f"  {'':<18} {'new':>6} {'identical':>10} {'conflicting':>12}")
    for kind, c in report.counts.items():
        click.echo(f"  {kind:<18} {c['new']:>6} {c['identical']:>10} {c['conflicting']:>12}")
    click.echo(f"  metric points added: {report.metric_points_added}")
    if report.proposals:
        names = report.project_names[0] if len(report.project_names) == 1 else "PROJECT"
        click.echo(
            f"  {report.proposals} alias(es) arrived as proposals: `workbench model proposals"
            f" {names}` lists them (--accept-aliases moves them on import)"
        )
    for missing in report.missing_folders:
        click.echo(
            f"  project {missing['project']}: its folder {missing['folder']} does not exist"
            " here; the import asks for it (or give --project-dir)"
        )
    if report.wheels:
        verb = "would leave" if dry_run else "left"
        new = "" if dry_run else f" ({report.wheels_added} new)"
        click.echo(
            f"  {verb} {len(report.wheels)} wheels for serving its models in {report.wheels_dir}"
            f"{new}; install offline with `pip install --no-index"
            f" --find-links {report.wheels_dir} -r requirements.txt`, or bundle them with"
            f" `workbench model export PROJECT --with-wheels --wheelhouse {report.wheels_dir}`"
        )


def _ask_folders(missing: list[tuple[str, str]]) -> dict[str, Path]:
    """Where each new project's folder is on this machine: asked on a terminal;
    with no terminal, a usage error naming --project-dir (nothing written)."""
    from workbench.core.errors import UsageError

    folders: dict[str, Path] = {}
    for name, path in missing:
        if not sys.stdin.isatty():
            raise UsageError(
                f"project {name}: its folder {path} does not exist here; give the folder"
                " it has (or will have) on this machine with --project-dir DIR"
            )
        default = Path.cwd() / name
        answer = click.prompt(
            f"project {name}: its folder {path} does not exist here; its folder on this"
            " machine",
            default=str(default),
            type=click.Path(file_okay=False, path_type=Path),
        )
        folders[name] = Path(answer).expanduser().resolve()
    return folders
