"""What every live screen shares: polling the store in a worker, and showing
errors instead of crashing."""

from __future__ import annotations

from collections.abc import Callable
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

    def on_loaded(self, message: Loaded) -> None:
        if message.kind == "poll":
            self._last_failure = None
            self.show(message.data)
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


def describe(error: BaseException) -> str:
    if isinstance(error, WorkbenchError):
        return error.message
    return f"{type(error).__name__}: {error}"
