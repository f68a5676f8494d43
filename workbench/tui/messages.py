"""Messages that carry worker results back to the event loop."""

from __future__ import annotations

from typing import Any

from textual.message import Message


class Loaded(Message):
    """A poll finished: `kind` says what was loaded, `data` holds it."""

    def __init__(self, kind: str, data: Any) -> None:
        super().__init__()
        self.kind = kind
        self.data = data


class Failed(Message):
    """A worker raised; the screen shows it instead of crashing."""

    def __init__(self, title: str, error: BaseException) -> None:
        super().__init__()
        self.title = title
        self.error = error
