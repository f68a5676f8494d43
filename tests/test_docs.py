"""Every command has help text and is documented in the README."""

from __future__ import annotations

import click
import pytest
from wbtest import REPO

from workbench.cli import cli

README = (REPO / "README.md").read_text()


def _commands(group: click.Group, prefix: tuple[str, ...] = ()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        path = (*prefix, name)
        if isinstance(command, click.Group):
            yield from _commands(command, path)
        else:
            yield path, command


COMMANDS = list(_commands(cli))


def test_there_are_commands():
    assert len(COMMANDS) >= 10


@pytest.mark.parametrize("path,command", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_command_has_help_and_is_in_readme(path, command):
    assert command.help and command.help.strip(), f"{' '.join(path)} has no help text"
    assert f"workbench {' '.join(path)}" in README, f"`workbench {' '.join(path)}` not in README"
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert param.help, f"{' '.join(path)} {param.opts[0]} has no help text"


def test_readme_commands_match_ci():
    ci = (REPO / ".ci" / "run").read_text()
    test_command = next(
        line.strip() for line in README.splitlines() if "pytest" in line and "pip" in line
    )
    assert test_command in ci
