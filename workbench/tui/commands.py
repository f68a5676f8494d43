"""The command palette: every action by name, aware of the current screen."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from workbench.tui.app import WorkbenchApp


class WorkbenchCommands(Provider):
    if TYPE_CHECKING:  # `self.app` is the workbench's app

        @property
        def app(self) -> WorkbenchApp: ...

    def _commands(self) -> list[tuple[str, Callable[[], object], str]]:
        from workbench.tui.screens.automation import AutomationScreen
        from workbench.tui.screens.compare import CompareScreen
        from workbench.tui.screens.models import ModelsScreen
        from workbench.tui.screens.project import ProjectScreen
        from workbench.tui.screens.run import RunScreen

        app = self.app
        screen = self.screen
        commands: list[tuple[str, Callable[[], object], str]] = [
            ("Run the demo", app.confirm_demo, "copy the samples, train each once (asks first)"),
            ("New project…", app.action_init_project, "create a project from a template"),
            ("Toggle dark/light theme", app.action_toggle_dark, "switch the colour theme"),
            ("Help", app.action_help, "the keys of this screen"),
            ("Home", app.go_home, "the projects and activity screen"),
            (
                "Automation",
                app.open_automation,
                "the watcher, the pipelines and their steps, automation events",
            ),
            (
                "Export archive…",
                partial(_export_archive, app, screen),
                "projects' history to one signed .wbx file",
            ),
            (
                "Import archive…",
                partial(_import_archive, app),
                "a .wbx file: what it would change first, then import",
            ),
        ]
        for name in getattr(app, "project_names", []):
            commands.append((f"Open project {name}", partial(app.open_project, name), "its runs"))
            commands.append(
                (
                    f"Start run in {name}",
                    partial(app.start_run_form, name, None),
                    "a form prefilled from workbench.toml",
                )
            )
            commands.append(
                (
                    f"Models of {name}",
                    partial(app.open_models, name),
                    "versions, aliases, promote, export",
                )
            )
            commands.append(
                (
                    f"Automation of {name}",
                    partial(app.open_automation, name),
                    "its pipelines and automation events",
                )
            )
        if isinstance(screen, ProjectScreen):
            commands += [
                ("Compare marked runs", screen.action_compare, "two or more marked runs"),
                ("Stop selected run", screen.action_stop_run, "SIGTERM, after you confirm"),
                ("Open selected run", screen.action_open_run, "charts, log, environment"),
            ]
        if isinstance(screen, ModelsScreen):
            commands += [
                (
                    "Promote selected version",
                    screen.action_promote,
                    "through the gate, to champion",
                ),
                ("Export selected version", screen.action_export, "bundle, MLflow or ONNX"),
            ]
        if isinstance(screen, AutomationScreen):
            commands += [
                ("Start the watcher", screen.action_start_watcher, "detached: it outlives the app"),
                ("Stop the watcher", screen.action_stop_watcher, "SIGTERM, after you confirm"),
            ]
        if isinstance(screen, RunScreen):
            commands.append(("Stop this run", screen.action_stop_run, "SIGTERM, after you confirm"))
        if isinstance(screen, CompareScreen):
            commands += [
                ("Only the params that differ", screen.action_diff_only, "toggle (d)"),
                (
                    "Pin the run under the cursor as baseline",
                    screen.action_baseline,
                    "the others' metrics as deltas (b)",
                ),
                ("Chart on steps or fraction of training", screen.action_x_axis, "toggle (x)"),
            ]
        return commands

    async def discover(self) -> Hits:
        for name, action, help_text in self._commands():
            yield DiscoveryHit(name, action, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, action, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), action, help=help_text)


def _export_archive(app: WorkbenchApp, screen: object) -> None:
    """The export form, for the project on screen (else every project)."""
    from workbench.tui.screens.archive_export import ArchiveExportModal

    current = getattr(screen, "project", None)
    projects = [current] if isinstance(current, str) else list(app.project_names)
    app.push_form(ArchiveExportModal(projects))  # what is typed after Enter goes into it


def _import_archive(app: WorkbenchApp) -> None:
    from workbench.tui.screens.archive_import import ArchiveImportModal

    app.push_form(ArchiveImportModal())
