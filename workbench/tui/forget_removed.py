"""Drop what the app keeps for widgets since removed.

A widget that watches the app (`Header`: `self.watch(self.app, "title", ...)`)
or subscribes to one of its signals (a plotext chart: `theme_changed_signal`)
leaves a callback on the app that holds it. Textual drops such callbacks only
when the attribute next changes or the signal is next published, which on an
idle app is never: every closed screen's header and charts stayed alive, with
their render caches.

Textual's `StylesCache.get_inner_outer` is an `lru_cache` on a method: its
1,024 entries hold the widgets' style caches, and with them the lines they
drew, long after the widgets are gone. It only saves blending two colours, so
it is emptied whenever a screen was closed.

Together they kept ~37k objects per round of the eight screens (live objects
after 1, 2, 3 rounds: 245k, 282k, 319k; now 217k, 216k, 216k), all of it
frozen by the garbage collection tuning and scanned by each of its reclaims."""

from __future__ import annotations

from textual._styles_cache import StylesCache
from textual.dom import DOMNode
from textual.signal import Signal


def forget_removed(owner: DOMNode) -> None:
    """Drop the watchers and signal subscriptions that removed nodes left on
    `owner`, judged as Textual itself would at the next change or publish;
    when there were any (a screen was closed), the style caches' colours too."""
    dropped = 0
    watchers: dict[str, list[tuple[DOMNode, object]]] = getattr(owner, "__watchers", {})
    for callbacks in watchers.values():
        kept = [(node, cb) for node, cb in callbacks if not node._closing]
        dropped += len(callbacks) - len(kept)
        callbacks[:] = kept
    for value in vars(owner).values():
        if isinstance(value, Signal):
            for node in [n for n in list(value._subscriptions) if _unsubscribed(n)]:
                value.unsubscribe(node)
                dropped += 1
    if dropped:
        StylesCache.get_inner_outer.cache_clear()


def _unsubscribed(node: DOMNode) -> bool:
    # Signal.publish's test: a node can only subscribe once running.
    return not (node.is_running and node.is_attached) or node._pruning
