"""The progress both archive modals show while their worker runs: figures from
the worker's thread, passed to the event loop at most every PROGRESS_EVERY_S."""

from __future__ import annotations

import time

from textual.widgets import Label, ProgressBar

PROGRESS_EVERY_S = 0.1


class ArchiveProgress:
    """Mixed into a modal screen whose progress bar is `#<PROGRESS_ID>-progress`
    and status line `#<PROGRESS_ID>-status`."""

    PROGRESS_ID = ""
    _last_progress = 0.0

    def _progress(self, what: str, done: int, total: int) -> None:
        """Called on the worker's thread: hands the figures to the event loop."""
        now = time.monotonic()
        if now - self._last_progress < PROGRESS_EVERY_S and done < total:
            return
        self._last_progress = now
        self.app.call_from_thread(self._show_progress, what, done, total)  # type: ignore[attr-defined]

    def _show_progress(self, what: str, done: int, total: int) -> None:
        query = self.query_one  # type: ignore[attr-defined]
        query(f"#{self.PROGRESS_ID}-progress", ProgressBar).update(
            total=max(total, 1), progress=done
        )
        query(f"#{self.PROGRESS_ID}-status", Label).update(f"{what}…")
