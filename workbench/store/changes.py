"""Whether the store changed since a connection last looked, without reading
it: for screens that poll every second and mostly find nothing new."""

from __future__ import annotations

from dataclasses import dataclass

from workbench.store.db import Store


@dataclass(frozen=True, slots=True)
class StoreVersion:
    """A connection's view of the store's version. `data_version` changes when
    another connection (any process) commits; `own_changes` counts this
    connection's own writes, which `data_version` does not. Versions of two
    connections are not comparable: `connection` says whose it is."""

    connection: int
    data_version: int
    own_changes: int


def version(store: Store) -> StoreVersion:
    """The store's version as `store`'s connection sees it (one PRAGMA, no read
    of any table)."""
    conn = store.conn
    (data_version,) = conn.execute("PRAGMA data_version").fetchone()
    return StoreVersion(id(conn), int(data_version), conn.total_changes)
