"""The footer of every screen: its keys, fewer of them on a narrow terminal."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.events import Resize
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

PALETTE_WIDTH = 14  # "^p palette" and its margin


class KeyFooter(Footer):
    """When the screen's keys do not all fit the terminal's width, only those
    whose binding ids the screen lists in `FOOTER_NARROW` are shown (and `?`
    for help, which lists every key), closer together."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._narrow: bool | None = None
        self._needs = 0  # columns all the keys take

    def _is_narrow(self) -> bool:
        return self._needs > self.app.size.width

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        actions: set[str] = set()
        every = []
        for _node, binding, enabled, tooltip in self.screen.active_bindings.values():
            if binding.show and binding.action not in actions:
                actions.add(binding.action)
                every.append((binding, enabled, tooltip))
        self._needs = PALETTE_WIDTH + sum(
            len(self.app.get_key_display(b)) + len(b.description) + 3 for b, _, _ in every
        )
        narrow = self._narrow = self._is_narrow()
        self.set_reactive(Footer.compact, narrow)  # less space between keys
        self.set_class(narrow, "-compact")
        keep = getattr(self.screen, "FOOTER_NARROW", None) if narrow else None
        keys = [
            (binding, enabled, tooltip)
            for binding, enabled, tooltip in every
            if keep is None or binding.id in keep or binding.id == "app.help"
        ]
        self.styles.grid_size_columns = len(keys)
        for binding, enabled, tooltip in keys:
            key = FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                binding.description,
                binding.action,
                disabled=not enabled,
                tooltip=tooltip,
            )
            # Set, not data_bind(compact=Footer.compact): each data_bind leaves
            # a watcher on the footer that is never dropped (textual#6666), so
            # every recompose (twice per `?`) leaked its keys with their styles,
            # and the heap the garbage collector scans grew with every key.
            # The compose runs again when the width class changes anyway.
            key.set_reactive(FooterKey.compact, narrow)
            key.set_class(narrow, "-compact")
            yield key
        if narrow or not self.show_command_palette or not self.app.ENABLE_COMMAND_PALETTE:
            return
        found = self.screen.active_bindings.get(self.app.COMMAND_PALETTE_BINDING)
        if found is not None:
            _node, binding, enabled, tooltip = found
            yield FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                binding.description,
                binding.action,
                classes="-command-palette",
                disabled=not enabled,
                tooltip=binding.tooltip or binding.description,
            )

    def on_resize(self, event: Resize) -> None:
        if self._narrow is not None and self._narrow != self._is_narrow():
            self.call_after_refresh(self.recompose)
