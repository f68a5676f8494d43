"""Garbage collection tuned for an interactive app: no long pause between a
key and its frame.

A full (generation 2) collection scans every tracked object. After start-up
and a few screens the TUI holds ~100k-200k of them (Textual's widgets, styles
and caches), so a full pass took 50-300 ms and, falling between a key press
and its frame, was the whole tail of the key latency (`?` at p99 256 ms).
Objects that exist once a screen has shown its data are nearly all
long-lived, so they are moved out of the collected generations
(`gc.freeze()`): later passes scan only what is new.

Frozen objects are never freed by the collector, so what was frozen and then
became cyclic garbage (the widgets of a screen since closed) would stay in
memory. While nobody is typing, after enough has been frozen, everything is
unfrozen, collected once and frozen again: that one long pass happens when no
key waits on it. The app unfreezes everything when it exits, so a process that
runs many apps (the tests) frees each one's objects.

What was frozen since the last reclaim is counted as it is frozen (the
young generations' size just before), never read back with
`gc.get_freeze_count()`: that walks the whole frozen list, ~90 ms at the
~350k objects of a session that opened every screen a few times, and at
every tick it was most of the idle app's CPU."""

from __future__ import annotations

import gc
import time

IDLE_SECONDS = 5.0  # no key or mouse event for this long: a long pass bothers no one
PAUSE_SECONDS = 1.0  # a pause in the typing: freezing (no pass, a list splice) is free
RECLAIM_AFTER = 50_000  # objects frozen since the last full collection


class GcTuning:
    """Freezes after a screen settles; reclaims frozen garbage while idle."""

    def __init__(self) -> None:
        self.last_input = time.monotonic()
        self.frozen_since_reclaim = 0  # objects frozen since the last full collection
        self.freezes = 0
        self.reclaims = 0

    def input_seen(self) -> None:
        self.last_input = time.monotonic()

    def settled(self) -> None:
        """A screen has shown its data: what exists now is long-lived."""
        if self.freezes:
            self._freeze()
        else:  # start-up's objects: long-lived, nothing to reclaim yet
            gc.freeze()
        self.freezes += 1

    def _freeze(self) -> None:
        # Only the young generations are walked to count them, and they hold
        # only what is new since the last freeze.
        self.frozen_since_reclaim += len(gc.get_objects())
        gc.freeze()

    def tick(self) -> None:
        """Every few seconds: reclaim while idle; else, at a pause in the
        typing, freeze what survived since (the caches of screens shown, a
        growing series), so the scanned heap stays small in a long session."""
        if self.maybe_reclaim():
            return
        if time.monotonic() - self.last_input >= PAUSE_SECONDS:
            self._freeze()

    def maybe_reclaim(self, force: bool = False) -> bool:
        """While idle (or `force`), free the frozen objects that became
        garbage: unfreeze, one full collection, freeze again."""
        idle = time.monotonic() - self.last_input >= IDLE_SECONDS
        if not force and (self.frozen_since_reclaim < RECLAIM_AFTER or not idle):
            return False
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self.frozen_since_reclaim = 0
        self.reclaims += 1
        return True

    def release(self) -> None:
        """The app is done: its objects are the collector's again."""
        gc.unfreeze()
