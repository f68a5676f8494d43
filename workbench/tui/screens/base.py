"""What every live screen shares: polling the store in a worker, and showing
errors instead of crashing."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.worker import get_current_worker

from workbench.core.errors import NotFoundError, WorkbenchError
from workbench.tui import reads
from workbench.tui.messages import Failed, Loaded

if TYPE_CHECKING:
    from textual import getters

    from workbench.tui.app import WorkbenchApp


class WorkbenchScreen(Screen):
    """A screen of the workbench app: `self.app` is typed as `WorkbenchApp`, so
    its navigation and actions (open_run, stop_run, show_error...) are checked."""

    if TYPE_CHECKING:  # what textual's own MessagePump does; nothing changes at run time
        app = getters.app(WorkbenchApp)


class LiveScreen(WorkbenchScreen):
    """Polls `load()` in a thread worker; the next poll is scheduled only when
    the last one is done, so polls never pile up on a slow store."""

    POLL_SECONDS = 1.0
    _next_poll: Timer | None = None
    _last_failure: str | None = None

    def on_mount(self) -> None:
        self.poll()

    def load(self) -> Any:  # runs in a worker thread
        raise NotImplementedError

    def show(self, data: Any) -> None:  # runs on the event loop
        raise NotImplementedError

    def poll(self) -> None:
        # Polling now replaces the poll already scheduled, so a refresh asked for
        # by an action never starts a second chain of polls.
        self._schedule(None)
        self.run_worker(self._poll, thread=True, exclusive=True, group="poll", exit_on_error=False)

    def _schedule(self, delay: float | None) -> None:
        """At most one poll waits on a timer: the next one, or none."""
        if self._next_poll is not None:
            self._next_poll.stop()
        self._next_poll = None if delay is None else self.set_timer(delay, self.poll)

    def _poll(self) -> None:
        worker = get_current_worker()
        try:
            reads.reconcile()  # once per poll cycle: what the reads then show is current
        except Exception as exc:  # said, and the reads still go on
            if not worker.is_cancelled:
                self.post_message(Failed("Could not update the runs' states", exc))
        try:
            data = self.load()
        except Exception as exc:  # shown to the user, polling goes on
            if not worker.is_cancelled:
                self.post_message(Failed("Could not read the store", exc))
            return
        if not worker.is_cancelled:
            self.post_message(Loaded("poll", data))

    _settled = False

    def on_loaded(self, message: Loaded) -> None:
        if message.kind == "poll":
            self._last_failure = None
            self.show(message.data)
            if not self._settled:
                # The screen's data is in: what it built is long-lived, out of
                # the collector's way once drawn (gc_tuning).
                self._settled = True
                tuning = getattr(self.app, "gc_tuning", None)
                if tuning is not None:
                    self.call_after_refresh(tuning.settled)
            if not self._suspended:
                self._schedule(self.POLL_SECONDS)

    _suspended = False

    def on_screen_suspend(self) -> None:
        # A covered screen stops polling; it catches up as soon as it shows again.
        self._suspended = True

    def on_screen_resume(self) -> None:
        if self._suspended:
            self._suspended = False
            self.poll()

    def on_failed(self, message: Failed) -> None:
        if isinstance(message.error, NotFoundError):
            # The thing this screen shows is gone: nothing to retry.
            self.app.pop_screen()
            self.app.show_error(message.title, message.error)
            return
        # A toast, not a modal: a store busy for a while must not stack dialogs.
        text = describe(message.error)
        if text != getattr(self, "_last_failure", None):
            self.notify(f"{message.title}: {text} (retrying)", severity="error", timeout=6)
        self._last_failure = text
        self._schedule(max(self.POLL_SECONDS, 2.0))

    def in_background(
        self,
        title: str,
        fn: Callable[[], Any],
        then: Callable[[Any], None],
        busy: Widget | None = None,
    ) -> None:
        """Run a blocking action (start, stop, demo) off the event loop; `busy`
        shows a loading indicator until it is done."""
        if busy is not None:
            busy.loading = True

        def done() -> None:
            if busy is not None:
                busy.loading = False

        def work() -> None:
            try:
                result = fn()
            except Exception as exc:
                self.app.call_from_thread(done)
                self.app.call_from_thread(self.app.show_error, title, exc)
                return
            self.app.call_from_thread(done)
            self.app.call_from_thread(then, result)

        self.run_worker(work, thread=True, group="actions", exit_on_error=False)


UNCHANGED = "unchanged"  # what a poll that skipped its read hands to show()


@dataclass(frozen=True, slots=True)
class Fresh:
    """What a poll read, with the store's version taken just before the read
    and what the read asked for (`key`: a filter, a page size...)."""

    version: int
    key: Any
    read_at: float
    data: Any


class StoreWatch:
    """Lets a screen's poll skip its read when the store has not changed since
    the last one (one PRAGMA instead of the screen's queries, on a store of
    thousands of runs tens of ms of CPU every second), and read in full every
    `full_read_seconds` anyway for what is not in the store (a workbench.toml
    edited, a project folder removed).

    The version is taken before the read: a commit in between shows as a
    change at the next poll, never as one missed."""

    def __init__(self, full_read_seconds: float = 10.0) -> None:
        self.full_read_seconds = full_read_seconds
        self._version: int | None = None
        self._key: Any = None
        self._read_at = float("-inf")

    def read(self, key: Any, fn: Callable[[], Any]) -> Fresh | str:
        """In the poll's worker: `fn()` with the version, or UNCHANGED."""
        seen = reads.store_version()
        if (
            seen == self._version
            and key == self._key
            and time.monotonic() - self._read_at < self.full_read_seconds
        ):
            return UNCHANGED
        return Fresh(seen, key, time.monotonic(), fn())

    def shown(self, fresh: Fresh) -> None:
        """On the event loop, once `fresh` is on screen."""
        self._version = fresh.version
        self._key = fresh.key
        self._read_at = fresh.read_at

    def forget(self) -> None:
        """The next poll reads, changed or not (the user asked to refresh)."""
        self._version = None


def describe(error: BaseException) -> str:
    if isinstance(error, WorkbenchError):
        return error.message
    return f"{type(error).__name__}: {error}"
