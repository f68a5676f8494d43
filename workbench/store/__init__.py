"""The SQLite store: one place opens connections, sets pragmas and migrates."""

from workbench.store.db import Store, open_store

__all__ = ["Store", "open_store"]
