"""Domain errors: each carries a title and a message a user can act on.

The CLI prints them without a traceback and exits with `exit_code`; a UI shows
them in a modal.
"""

from __future__ import annotations

import re

_RUN_ON = re.compile(r"[^\s'\"]{200,}")


def shorten(message: str) -> str:
    """A message stays one readable line: a 5,000-character argument is named
    by its start and length, not echoed whole."""
    return _RUN_ON.sub(lambda m: f"{m.group()[:24]}... ({len(m.group())} characters)", message)


class WorkbenchError(Exception):
    """Base class for errors caused by the user's input or environment."""

    title = "Error"
    exit_code = 1

    def __init__(self, message: str, *, title: str | None = None) -> None:
        message = shorten(message)
        super().__init__(message)
        self.message = message
        if title is not None:
            self.title = title


class UsageError(WorkbenchError):
    """Bad input on the command line or through the API."""

    title = "Invalid input"
    exit_code = 2


class ConfigError(UsageError):
    """A configuration file is invalid; names the file, the key and what was expected."""

    title = "Invalid configuration"

    def __init__(self, path: object, key: str | None, problem: str) -> None:
        where = f"{path}: [{key}]" if key else f"{path}"
        super().__init__(f"{where}: {problem}")
        self.path = str(path)
        self.key = key
        self.problem = problem


class NotFoundError(WorkbenchError):
    """A project, run or file that the user named does not exist."""

    title = "Not found"
    exit_code = 2


class StoreError(WorkbenchError):
    """The store cannot be opened or is in an unexpected state."""

    title = "Store problem"


class StoreDamagedError(StoreError):
    """SQLite found the store's database file damaged (a corrupted or missing page)."""

    title = "Store damaged"

    def __init__(self, path: object, detail: object) -> None:
        super().__init__(
            f"the store database {path} is damaged ({detail}); run `workbench fsck` to see "
            "what is affected and `workbench fsck --repair` to recover what is intact"
        )
        self.path = str(path)


class StoreVersionError(StoreError):
    """The store was written by a newer workbench than this one."""

    title = "Store from a newer version"
