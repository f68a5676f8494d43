"""The names plugins add to what a workbench.toml may use, as config asks for
them. Config cannot import plugins (they sit above it); the program that loads
plugins installs an answer here once, cheaply, before any project is loaded."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Protocol


class PluginNames(Protocol):
    """The names plugins add to what a workbench.toml may use, by project folder."""

    def trainers(self, root: Path) -> Collection[str]:
        """Every trainer name, built in or from a plugin."""
        ...

    def trainer_hint(self, root: Path) -> str:
        """Text after "expected ..." of an unknown trainer: plugin trainers, failed plugins."""
        ...

    def export_formats(self, root: Path) -> Collection[str]:
        """Every export format name, built in or from a plugin."""
        ...

    def drift_methods(self, root: Path, names: Collection[str]) -> Collection[str]:
        """The plugin drift tests; asked only for names that are not built in."""
        ...


_installed: PluginNames | None = None


def use_plugin_names(names: PluginNames | None) -> None:
    """Check plugin names with `names` in every later `load_config` of this process."""
    global _installed
    _installed = names


def installed() -> PluginNames | None:
    """The plugin names installed in this process, if any."""
    return _installed
