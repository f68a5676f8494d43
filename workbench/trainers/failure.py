"""Why a built-in trainer failed, in one line, for the run's record.

The trainer writes the reason into the run's folder as it fails; the supervisor
reads it when the trainer exits and stores it as the run's message, which
`run show` prints (the traceback, if any, stays in the run's log)."""

from __future__ import annotations

import contextlib

from workbench.core import paths
from workbench.core.files import atomic_write_text

REASON_FILE = "failure_reason.txt"
MAX_REASON = 500


def one_line(exc: BaseException) -> str:
    """An exception as one line: its message (its type when it has none)."""
    from workbench.core.errors import WorkbenchError

    if isinstance(exc, WorkbenchError):
        text = exc.message
    else:
        text = str(exc).strip()
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    line = " ".join(text.split())
    return line if len(line) <= MAX_REASON else line[: MAX_REASON - 1] + "…"


def record(run_id: int, reason: str) -> None:
    """Keep `reason` as why run `run_id` failed; a failure to write it costs nothing."""
    folder = paths.run_dir(run_id)
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / REASON_FILE, reason + "\n")  # read whole, or not at all


def read(run_id: int) -> str | None:
    """The reason run `run_id`'s trainer gave for failing, or None."""
    try:
        text = (paths.run_dir(run_id) / REASON_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    line = " ".join(text.split())
    return line[:MAX_REASON] or None
