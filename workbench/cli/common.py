"""Helpers shared by the command modules."""

from __future__ import annotations

import click

from workbench.store import Store, open_store

json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


def store_for(ctx: click.Context, *, reconcile: bool = True) -> Store:
    """The store for this command, migrated, closed when the command ends.

    Every command that opens the store reconciles it once, here (runs whose
    owner is gone marked lost, queued runs that are due started), except the
    listings that must only read (`reconcile=False`): they show a dead run as
    lost without recording it, and start nothing."""
    from workbench.config.settings import load_settings

    load_settings()  # a bad config.toml stops the command before it changes anything
    store = open_store()
    ctx.call_on_close(store.close)
    if reconcile:
        from workbench.runs.reconcile import reconcile as reconcile_runs

        reconcile_runs(store)
    return store
