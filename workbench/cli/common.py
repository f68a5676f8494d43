"""Helpers shared by the command modules."""

from __future__ import annotations

import click

from workbench.store import Store, open_store

json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


def store_for(ctx: click.Context) -> Store:
    """The store for this command, migrated, closed when the command ends."""
    from workbench.runs.queue import dispatch
    from workbench.config.settings import load_settings

    load_settings()  # a bad config.toml stops the command before it changes anything
    store = open_store()
    ctx.call_on_close(store.close)
    if not store.readonly:
        dispatch(store)  # whoever uses the store starts queued runs that are due
    return store
