"""The watcher's pipeline worker: runs queued pipelines on its own thread
and store connection, so watching never waits for training."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

# After a pipeline raised, run the queue again this much later (or on the next batch).
WORKER_RETRY = 10.0
Report = Callable[[str], None]


class PipelineWorker:
    """Runs queued pipelines on its own thread and store: once at start (to
    resume any a stopped watcher left), then whenever `kick` is called."""

    def __init__(
        self,
        run_pending: Callable[[Any, threading.Event], list[int]],
        open_store: Callable[[], Any],
        stop: threading.Event,
        report: Report | None = None,
    ) -> None:
        self._run_pending = run_pending
        self._open_store = open_store
        self._stop = stop
        self._report = report or log.warning  # logged unless the caller takes the lines
        self._kick = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        # A daemon thread: a step that ignores the stop request must not keep
        # the process alive; an interrupted pipeline resumes on the next start.
        self._thread = threading.Thread(target=self._run, name="workbench-pipelines", daemon=True)
        self._thread.start()

    def kick(self) -> None:
        self._kick.set()

    def stop(self, timeout: float) -> bool:
        """Wait up to `timeout` for the current step to end; true if it did."""
        self._kick.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        store = None
        try:
            while not self._stop.is_set():
                self._kick.clear()
                retry = None
                try:
                    if store is None:
                        store = self._open_store()
                    self._run_pending(store, self._stop)
                except Exception as exc:  # noqa: BLE001 - keep watching, and retry
                    log.debug("a pipeline raised; retrying", exc_info=True)
                    self._report(f"pipelines: {type(exc).__name__}: {exc}")
                    retry = WORKER_RETRY  # others may be pending behind the one that failed
                self._kick.wait(retry)
        finally:
            if store is not None:
                store.close()
