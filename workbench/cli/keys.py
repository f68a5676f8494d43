"""`workbench keys ...`: the store's signing key and the keys it trusts."""

from __future__ import annotations

from pathlib import Path

import click

from workbench.cli.common import json_option
from workbench.cli.output import note, print_json, print_table
from workbench.core.errors import UsageError


@click.group()
def keys() -> None:
    """The key this store signs its exports with, and the keys it trusts.

    Every export (`workbench model export`) is signed with this store's Ed25519
    key ($WORKBENCH_HOME/keys/signing.key, made on first use, mode 0600).
    `predict` and `serve` load bundles signed by this store or by a key in
    $WORKBENCH_HOME/trusted_keys/; hand a public key over with `keys export`
    on one machine and `keys import` on the other (a file on a USB stick will do).
    """


@keys.command("export")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="File to write (default: stdout). An existing file is not replaced.",
)
@click.option("--name", help="Label written with the key (default: this machine's name).")
def export_(output: Path | None, name: str | None) -> None:
    """Print (or write) this store's public key, for another store's `keys import`."""
    from workbench.models import signing

    if name is not None and not signing._NAME.fullmatch(name):
        raise UsageError(f"--name {name!r}: expected 1-64 letters, digits, '.', '_' or '-'")
    line = signing.public_key_line(name)
    if output is None:
        click.echo(line, nl=False)
        return
    try:
        with open(output, "x") as fh:
            fh.write(line)
    except FileExistsError as exc:
        raise UsageError(f"{output} exists already; choose another -o") from exc
    except OSError as exc:
        raise UsageError(f"{output}: cannot write it ({exc.strerror or exc})") from exc
    note(f"wrote this store's public key ({signing.own_fingerprint()}) to {output}")


@keys.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--name", help="Name to trust it as (default: the label in FILE).")
@json_option
def import_(file: Path, name: str | None, as_json: bool) -> None:
    """Trust the public key in FILE (written by `workbench keys export`)."""
    from workbench.models import signing

    result = signing.import_key(file, name)
    if as_json:
        print_json(result)
    elif result["imported"]:
        note(f"[green]trusted[/] {result['name']} ({result['fingerprint']})")
    else:
        note(f"already trusted as {result['name']} ({result['fingerprint']})")


@keys.command("list")
@json_option
def list_(as_json: bool) -> None:
    """This store's key and the keys it trusts, with their fingerprints."""
    from workbench.models import signing

    entries = [
        {
            "name": signing.THIS_STORE,
            "fingerprint": signing.own_fingerprint(),
            "file": str(signing.key_path()),
        },
        *signing.trusted_keys(),
    ]
    if as_json:
        print_json(entries)
        return
    print_table(
        None,
        ["NAME", "FINGERPRINT", "FILE"],
        [
            (
                e["name"],
                e.get("fingerprint") or e.get("error") or "(made on the first export)",
                e["file"],
            )
            for e in entries
        ],
        wrap=True,
    )
