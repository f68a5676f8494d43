"""Old spellings of commands, kept for one release as hidden aliases.

The command line reads noun verb throughout (`workbench sweep list PROJECT`);
where a command used to be a single command with mode flags
(`workbench sweep PROJECT --list`), its group keeps that spelling working: the
arguments go to a hidden command that says, on one line of stderr, what the new
spelling is, then runs it, with the same output and exit code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

# The name the hidden command is registered under: no user types it, and since
# the legacy spelling never starts with a verb, no verb can be mistaken for it.
LEGACY = "\0legacy"


def deprecated(old: str, new: str) -> None:
    """The one-line note an old spelling prints on stderr before it runs."""
    from workbench.core.errors import shorten

    click.echo(
        f"note: `workbench {shorten(old)}` is deprecated and goes in the next release;"
        f" use `workbench {shorten(new)}`",
        err=True,
    )


class _AliasContext(click.Context):
    """The hidden command's context names its group in messages
    (`workbench sweep`), never the hidden name."""

    @property
    def command_path(self) -> str:
        if self.parent is not None:
            return self.parent.command_path
        return super().command_path


class LegacyCommand(click.Command):
    """The old single-command spelling of a group, hidden from `--help`."""

    context_class = _AliasContext

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("hidden", True)
        super().__init__(*args, **kwargs)


class NounGroup(click.Group):
    """A noun's verbs. With `legacy` set, arguments that do not start with one of
    the verbs (nor `--help`) are the old spelling and go to that hidden command;
    with `legacy_when_empty`, so does no argument at all (`workbench watch`)."""

    def __init__(
        self,
        *args: Any,
        legacy: click.Command | None = None,
        legacy_when_empty: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.legacy = legacy
        self.legacy_when_empty = legacy_when_empty

    def _is_legacy(self, ctx: click.Context, args: Sequence[str]) -> bool:
        if self.legacy is None:
            return False
        if not args:
            return self.legacy_when_empty
        first = args[0]
        return first not in self.commands and first not in ctx.help_option_names

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if self._is_legacy(ctx, args):
            args = [LEGACY, *args]
        return super().parse_args(ctx, args)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] == LEGACY and self.legacy is not None:
            return self.name, self.legacy, args[1:]
        return super().resolve_command(ctx, args)


def legacy_command(group: click.Group) -> Any:
    """Decorator: make the function the hidden old spelling of `group`."""

    def decorator(f: Any) -> LegacyCommand:
        command = click.command(cls=LegacyCommand, name=group.name)(f)
        assert isinstance(group, NounGroup)
        group.legacy = command
        return command

    return decorator
