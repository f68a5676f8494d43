"""`?`: the keys of the screen underneath, and of the app."""

from __future__ import annotations

from dataclasses import replace

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen, Screen
from textual.widgets import Static


# (screen class, title, the user's remaps) -> the help's parsed text. The keys
# of a kind of screen do not change while the app runs, so `?` parses the
# markup once, not at every press (a press should cost a frame, nothing more).
_CACHE: dict[tuple[type, str, tuple[tuple[str, str], ...]], Content] = {}
CACHE_SIZE = 64


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close", id="help.close")]

    def __init__(self, under: Screen) -> None:
        super().__init__()
        self.under = under

    def compose(self) -> ComposeResult:
        remapped: dict[str, str] = getattr(getattr(self.app, "settings", None), "keys", {}) or {}
        title = str(self.under.title or type(self.under).__name__)
        key = (type(self.under), title, tuple(sorted(remapped.items())))
        content = _CACHE.get(key)
        if content is None:
            if len(_CACHE) >= CACHE_SIZE:  # a title per run opened: keep the newest
                del _CACHE[next(iter(_CACHE))]
            content = _CACHE[key] = Content.from_markup(self._text(title, remapped))
        with VerticalScroll(id="help-box"):
            yield Static(content)

    def _text(self, title: str, remapped: dict[str, str]) -> str:
        lines = [f"[b]{title}[/b] keys", ""]
        seen = set()
        for binding in [*self.under.BINDINGS, *self.app.BINDINGS]:
            if not isinstance(binding, Binding) or not binding.description or binding.id in seen:
                continue
            seen.add(binding.id)
            if binding.id in remapped:  # the user's [keys] choice is the key in force
                binding = replace(binding, key=remapped[binding.id])
            key = self.app.get_key_display(binding)
            lines.append(f"  [b]{key:>12}[/b]  {binding.description}  [dim]{binding.id}[/dim]")
        lines += [
            "",
            "  [b]      ctrl+p[/b]  command palette: every action by name",
            "  [b]     j k ↓ ↑[/b]  in a table: next / previous row",
            "  [b]         g G[/b]  in a table: first / last row",
            "",
            "Keys can be remapped in $WORKBENCH_HOME/config.toml under \\[keys]",
            'by the ids shown above, e.g.  "project.start" = "ctrl+n"',
        ]
        return "\n".join(lines)
