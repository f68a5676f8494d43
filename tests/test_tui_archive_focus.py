"""The archive forms focus their first field as they open (their AUTO_FOCUS),
so what is typed right after the palette's Enter goes into it, as in every
other form: nothing is lost to the screen underneath or to the form's box."""

from __future__ import annotations

import pytest
from textual import events
from textual.command import CommandPalette
from textual.widgets import Input
from tui_setup import penguins  # noqa: F401 - a fixture, used by name
from tui_support import use_fixed_system_sampler, wait_for

from workbench.tui.app import make_app
from workbench.tui.screens.archive_export import ArchiveExportModal
from workbench.tui.screens.archive_import import ArchiveImportModal
from workbench.tui.screens.home import HomeScreen


def post_text(app, text: str) -> None:
    """Each character posted to the app at once, as a terminal delivers what
    is typed ahead (`pilot.press` would wait for the app between keys)."""
    names = {"/": "slash", ".": "full_stop", "-": "minus"}
    for char in text:
        app.post_message(events.Key(names.get(char, char), char))


@pytest.mark.parametrize(
    ("words", "form", "field"),
    [
        ("export arch", ArchiveExportModal, "#export-file"),
        ("import arch", ArchiveImportModal, "#import-file"),
    ],
)
async def test_keys_typed_right_after_the_palette_enter_go_into_the_first_field(
    penguins, monkeypatch, words, form, field
):
    """`q` or `h` reaching Home would quit or do nothing visible; a key
    reaching the form's scrolling box would be lost."""
    use_fixed_system_sampler(monkeypatch)
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_for(pilot, lambda: app.project_names == [penguins], what="projects")
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), what="the palette")
        await pilot.press(*words)
        await wait_for(
            pilot, lambda: app.screen.query_one("CommandList").option_count > 0, what="hits"
        )
        # Enter runs the command; what follows is typed before the form shows.
        app.post_message(events.Key("enter", "\r"))
        post_text(app, "/tmp/quick.wbx")
        first = await wait_for(
            pilot,
            lambda: isinstance(app.screen, form) and app.screen.query_one(field, Input),
            what="the form",
        )
        # The export's proposed file name is selected on focus: typing replaces it.
        await wait_for(pilot, lambda: first.value == "/tmp/quick.wbx", what="the keys typed")
        assert first.has_focus
        assert app.is_running and not isinstance(app.screen_stack[-2], CommandPalette)
        assert isinstance(app.screen_stack[-2], HomeScreen)


async def _palette_with(pilot, words: str) -> CommandPalette:
    app = pilot.app
    await pilot.press("ctrl+p")
    palette = await wait_for(
        pilot, lambda: isinstance(app.screen, CommandPalette) and app.screen, what="the palette"
    )
    await pilot.press(*words)
    return palette


async def test_keys_after_a_palette_command_that_opens_no_form_are_dropped(penguins, monkeypatch):
    """The keys held after Enter do not fall on the screen underneath: `q`
    there would quit the app."""
    use_fixed_system_sampler(monkeypatch)
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_for(pilot, lambda: app.project_names == [penguins], what="projects")
        await _palette_with(pilot, "open project penguins")
        await wait_for(
            pilot, lambda: app.screen.query_one("CommandList").option_count > 0, what="hits"
        )
        app.post_message(events.Key("enter", "\r"))
        post_text(app, "q")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ProjectScreen", what="project")
        await wait_for(pilot, lambda: app._held_keys is None, what="the hold to end")
        await pilot.pause()
        assert app.is_running and type(app.screen).__name__ == "ProjectScreen"


async def test_keys_after_start_run_in_the_palette_go_into_the_start_form(penguins, monkeypatch):
    """The start form reads the project's params first (in a worker): the
    keys typed after Enter are kept for it meanwhile, not dropped when the
    palette's command returns before the form is up."""
    from workbench.tui.screens.forms import StartRunModal

    use_fixed_system_sampler(monkeypatch)
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_for(pilot, lambda: app.project_names == [penguins], what="projects")
        await _palette_with(pilot, "start run in penguins")
        await wait_for(
            pilot, lambda: app.screen.query_one("CommandList").option_count > 0, what="hits"
        )
        app.post_message(events.Key("enter", "\r"))
        post_text(app, "9q")
        field = await wait_for(
            pilot,
            lambda: isinstance(app.screen, StartRunModal)
            and app.screen.query_one("#param-n_estimators", Input),
            what="the start form",
        )
        await wait_for(pilot, lambda: field.value == "9q", what="the keys typed")
        assert app.is_running and field.has_focus
