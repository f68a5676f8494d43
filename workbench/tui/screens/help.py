"""`?`: the keys of the screen underneath, and of the app."""

from __future__ import annotations

from dataclasses import replace

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close", id="help.close")]

    def __init__(self, under: Screen) -> None:
        super().__init__()
        self.under = under

    def compose(self) -> ComposeResult:
        lines = [f"[b]{self.under.title or type(self.under).__name__}[/b] keys", ""]
        seen = set()
        remapped = getattr(getattr(self.app, "settings", None), "keys", {})
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
        with VerticalScroll(id="help-box"):
            yield Static("\n".join(lines))
