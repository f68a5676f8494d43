"""The footer of every screen: its keys, fewer of them on a narrow terminal."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.events import Resize
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

WIDE = 100  # columns from which every key fits


class KeyFooter(Footer):
    """Below WIDE columns only the bindings whose ids the screen lists in
    `FOOTER_NARROW` are shown (and `?` for help, which lists every key); a screen
    without that list shows all its keys."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._narrow: bool | None = None

    def _is_narrow(self) -> bool:
        return self.app.size.width < WIDE

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        narrow = self._narrow = self._is_narrow()
        self.set_reactive(Footer.compact, narrow)  # less space between keys
        self.set_class(narrow, "-compact")
        keep = getattr(self.screen, "FOOTER_NARROW", None) if narrow else None
        actions: set[str] = set()
        keys = []
        for _node, binding, enabled, tooltip in self.screen.active_bindings.values():
            if not binding.show or binding.action in actions:
                continue
            if keep is not None and binding.id not in keep and binding.id != "app.help":
                continue
            actions.add(binding.action)
            keys.append((binding, enabled, tooltip))
        self.styles.grid_size_columns = len(keys)
        for binding, enabled, tooltip in keys:
            yield FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                binding.description,
                binding.action,
                disabled=not enabled,
                tooltip=tooltip,
            ).data_bind(compact=Footer.compact)
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
