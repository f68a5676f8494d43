"""A file the watcher has seen but not yet handed over, and the burst of
complete files waiting to be handed over together."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

Signature = tuple[int, int]  # size, mtime_ns


@dataclass
class Candidate:
    """A data file that may still be being written."""

    seen_at: float  # when we learned of it, then when we last looked at it
    last_event: float
    trigger: str = "watch"
    moved: bool = False  # renamed into place: complete as it stands, once no one writes it
    closed: bool = False  # the last event was a close after writing
    sig: Signature | None = None
    changed_at: float = 0.0  # estimated time `sig` came about
    writer_until: float = 0.0  # a writer held it open (at least) until about then
    writers: tuple[int, ...] = ()  # the pids last seen writing it

    def due(self, quiet: float) -> float:
        if self.sig is None:
            return self.seen_at
        # An empty file may be filled later: only the quiet period completes it.
        empty = self.sig[0] == 0
        if self.moved and not empty and not self.writer_until:
            return self.seen_at
        return self.quiet_since() + quiet

    def quiet_since(self) -> float:
        """The last time the file changed, was closed, or was seen held by a writer."""
        return max(self.last_event, self.changed_at, self.writer_until)


@dataclass
class Batch:
    files: dict[str, Signature] = field(default_factory=dict)
    triggers: set[str] = field(default_factory=set)
    flush_at: float = 0.0


def signature(path: str) -> tuple[Signature, float] | str | None:
    """(size, mtime_ns) and mtime in seconds; None if the file is gone; what it
    is when it is not a regular file (a FIFO or a socket is never complete, and
    is never opened)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(st.st_mode) else "not a regular file"
        return "a folder" if stat.S_ISDIR(st.st_mode) else kind
    return (st.st_size, st.st_mtime_ns), st.st_mtime
