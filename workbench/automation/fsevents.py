"""What the watcher takes from watchdog: the event types it listens to, the
handler that passes them on from watchdog's threads, and a filter for a
harmless shutdown message."""

from __future__ import annotations

import logging
from typing import Any

from watchdog.events import (
    DirDeletedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)

EVENT_TYPES: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileMovedEvent,
    FileModifiedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileDeletedEvent,
    DirDeletedEvent,  # the watched folder itself going away
    DirMovedEvent,
]


class QuietStop(logging.Filter):
    """Watchdog logs an error when it stops an emitter that is mid-read: a
    harmless race at shutdown that would only alarm the user."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "called when the thread is inactive" not in record.getMessage()


QUIET_STOP = QuietStop()


class Handler(FileSystemEventHandler):
    """Runs on watchdog's thread: passes the event on and returns."""

    def __init__(self, watcher: Any, project: str, folder: str) -> None:
        self._watcher = watcher
        self._project = project
        self._folder = folder

    def dispatch(self, event: FileSystemEvent) -> None:
        if not event.is_directory or isinstance(event, (DirDeletedEvent, DirMovedEvent)):
            self._watcher._on_event(self._project, self._folder, event)
