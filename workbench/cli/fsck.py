"""`workbench fsck`"""

from __future__ import annotations

import sys

import click

from workbench.cli.common import json_option
from workbench.cli.output import note, print_json


@click.command()
@click.option(
    "--repair",
    is_flag=True,
    help="Recover a damaged database into a new file (the old one kept as a backup),"
    " mark runs whose supervisor is gone as lost, move unreferenced artifact files"
    " to lost+found.",
)
@json_option
def fsck(repair: bool, as_json: bool) -> None:
    """Check the store: identity, integrity, schema version, stuck runs, missing
    logs and model files, orphan artifacts. Exits 0 when all is well, 1 when
    problems are left."""
    from workbench.runs.liveness import owner_gone
    from workbench.store import fsck as checks

    report = (
        checks.repair(owner_gone=owner_gone) if repair else checks.check(owner_gone=owner_gone)
    )
    if as_json:
        print_json(report)
    else:
        click.echo(f"store     {report['database']}")
        click.echo(f"identity  {report['store_id'] or 'unknown'}")
        integrity = report["integrity"]
        click.echo(f"integrity {'not checked' if integrity is None else integrity[0]}")
        for line in report["repairs"]:
            note(f"repaired: {line}")
        for line in report["problems"]:
            note(f"problem: {line}")
        if not report["problems"]:
            note("no problems found")
        elif not repair:
            note("`workbench fsck --repair` repairs what can be repaired")
    sys.exit(0 if report["ok"] else 1)
