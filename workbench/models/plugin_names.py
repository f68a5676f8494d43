"""The names plugins add to what a workbench.toml may use: trainers, export
formats and drift tests. `workbench.config` checks a project's file without
importing plugins; the programs that load plugins hand it these (`install`)."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from workbench.config.names import use_plugin_names


class PluginNames:
    """`workbench.config.names.PluginNames`, answered by the project's plugins
    (loaded only when a name is not built in)."""

    def trainers(self, root: Path) -> Collection[str]:
        from workbench.plugins import trainer_names

        return trainer_names(root)

    def trainer_hint(self, root: Path) -> str:
        from workbench.plugins import unknown_trainer_hint

        return unknown_trainer_hint(root)

    def export_formats(self, root: Path) -> Collection[str]:
        from workbench.plugins import export_formats

        return export_formats(root)

    def drift_methods(self, root: Path, names: Collection[str]) -> Collection[str]:
        from workbench.plugins import drift_tests

        return tuple(drift_tests(root, list(names)))


def install() -> None:
    """Check plugin names in every project config this process loads."""
    use_plugin_names(PluginNames())
