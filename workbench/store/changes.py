"""Whether the store changed since a screen last read it, without reading it:
for screens that poll every second and mostly find nothing new."""

from __future__ import annotations

from workbench.store.db import Store


def data_version(store: Store) -> int:
    """SQLite's `PRAGMA data_version` on `store`'s connection: it changes when
    any other connection (this process's or another's) has committed since
    this connection last asked, and not for this connection's own writes; so
    a connection kept only for asking sees every commit. One PRAGMA, no table
    read."""
    (version,) = store.conn.execute("PRAGMA data_version").fetchone()
    return int(version)
