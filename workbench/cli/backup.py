"""`workbench backup`, `workbench restore`, `workbench offline-kit`"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import click

from workbench.cli.common import json_option
from workbench.cli.output import note, print_json

_MB = 1 << 20
QUIET_S = 1.0  # a copy shorter than this prints no progress at all


@contextlib.contextmanager
def _progress() -> Iterator[Callable[[str, int, int], None]]:
    """A progress callback for long copies: a Rich bar on a terminal, else a line
    on stderr every few seconds; nothing for a copy that ends within a second."""
    started = time.monotonic()
    last = [0.0]
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import Progress

        with Progress(transient=True, console=Console(stderr=True)) as bar:
            tasks: dict[str, object] = {}

            def show(what: str, done: int, total: int) -> None:
                if time.monotonic() - started < QUIET_S:
                    return
                task = tasks.get(what)
                if task is None:
                    task = tasks[what] = bar.add_task(what, total=max(total, 1))
                bar.update(task, completed=done, total=max(total, 1))  # type: ignore[arg-type]

            yield show
        return

    def line(what: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - started < QUIET_S or (now - last[0] < 5 and done < total):
            return
        last[0] = now
        share = 100 * done // total if total else 100
        click.echo(f"{what}: {share}% ({done / _MB:.0f} of {total / _MB:.0f} MB)", err=True)

    yield line


@click.command()
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The backup file to write (a zip).",
)
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@json_option
def backup(output: Path, force: bool, as_json: bool) -> None:
    """Back up the whole store into one file: a consistent copy of the database
    (taken while runs keep writing), the identity file, and the artifacts, run
    folders, data versions and keys it refers to, with a manifest of SHA-256s."""
    from workbench.store.backup import create_backup

    with _progress() as progress:
        made = create_backup(output, force=force, progress=progress)
    if as_json:
        print_json(
            {
                "file": str(made.path),
                "store_id": made.store_id,
                "members": made.members,
                "bytes": made.bytes,
                "runs": made.runs,
            }
        )
    else:
        note(
            f"backed up {made.runs} runs and {made.members} files"
            f" ({made.bytes / _MB:.1f} MB) to {made.path}"
        )


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@json_option
def restore(file: Path, as_json: bool) -> None:
    """Restore the backup FILE into an empty store folder ($WORKBENCH_HOME): every
    member is checked against the manifest and the database must pass SQLite's
    integrity check before anything is put in place."""
    from workbench.store.backup import restore_backup

    with _progress() as progress:
        done = restore_backup(file, progress=progress)
    if as_json:
        print_json(
            {
                "home": str(done.home),
                "store_id": done.store_id,
                "members": done.members,
                "bytes": done.bytes,
                "runs": done.runs,
                "integrity": done.integrity,
            }
        )
    else:
        note(
            f"restored {done.runs} runs and {done.members} files into {done.home}"
            f" (integrity {done.integrity})"
        )


@click.command("offline-kit")
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The folder to make (it must not exist, or be empty).",
)
@click.option(
    "--from",
    "wheelhouse",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Take the wheels from this folder of wheels instead of downloading them.",
)
@click.option(
    "--extras",
    default="",
    help="Optional extras to include, comma-separated (onnx, mlflow).",
)
@json_option
def offline_kit(output: Path, wheelhouse: Path | None, extras: str, as_json: bool) -> None:
    """Make a folder to install this workbench on a machine with no network: the
    wheels of workbench and every dependency for this platform and Python, an
    install.sh and a README.txt."""
    from workbench.cli.offline_kit import make_kit

    kit = make_kit(output, wheelhouse=wheelhouse, extras=extras)
    if as_json:
        print_json(kit)
    else:
        note(f"offline kit with {kit['wheels']} wheels in {kit['folder']}; see its README.txt")
