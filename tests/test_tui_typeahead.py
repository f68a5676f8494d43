"""Keys typed right after the key that opens a form go into the form's first
field, as a terminal delivers them: all at once, before the form is drawn.

`pilot.press` waits for the app to be idle between keys, which hides the
problem; these tests post the key events to the app in one go, as the
terminal driver does when the user types ahead."""

from __future__ import annotations

import threading

from textual import events
from textual.widgets import Input
from tui_setup import penguins  # noqa: F401 - a fixture, used by name
from tui_support import use_fixed_system_sampler, wait_for

from workbench.tui import reads
from workbench.tui.app import make_app
from workbench.tui.screens.forms import InitProjectModal, StartRunModal
from workbench.tui.screens.home import HomeScreen
from workbench.tui.screens.project import ProjectScreen


def type_ahead(app, keys: list[str]) -> None:
    """Each key posted to the app at once, with no pause between them."""
    for key in keys:
        character = key if len(key) == 1 else None
        app.post_message(events.Key(key, character))


def characters(text: str) -> list[str]:
    """The key names of a text's characters (Textual names `/` `slash`...)."""
    names = {"/": "slash", "-": "minus", ".": "full_stop", "~": "tilde", "_": "underscore"}
    return [names.get(c, c) for c in text]


def post_text(app, text: str) -> None:
    for key, char in zip(characters(text), text, strict=True):
        app.post_message(events.Key(key, char))


async def test_the_new_project_form_gets_what_is_typed_after_i(wb_home, monkeypatch):
    """`q` would quit and `h` go Home if they reached the screen underneath."""
    use_fixed_system_sampler(monkeypatch)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen), what="home")
        await pilot.pause()
        app.post_message(events.Key("i", "i"))
        post_text(app, "/tmp/quick-hare")
        # Tab typed ahead moves on after the characters before it are in.
        type_ahead(app, ["tab", "tab"])
        post_text(app, "hare.csv")
        type_ahead(app, ["tab"])
        post_text(app, "qty")
        form = await wait_for(
            pilot, lambda: isinstance(app.screen, InitProjectModal) and app.screen, what="form"
        )
        field = form.query_one("#init-path", Input)
        target = form.query_one("#init-target", Input)
        await wait_for(pilot, lambda: target.value == "qty", what="the target typed")
        assert field.value == "/tmp/quick-hare"
        assert form.query_one("#init-data", Input).value == "hare.csv"
        assert target.has_focus
        assert app.is_running and app.screen is form


async def test_the_start_form_gets_what_is_typed_while_its_params_load(
    penguins, wb_home, monkeypatch
):
    """`n` before the project's first poll: the form waits for the params to be
    read; the keys typed meanwhile are kept and go into its first field."""
    use_fixed_system_sampler(monkeypatch)
    polled = threading.Event()  # the project screen's poll: held until the end
    params_read = threading.Event()  # the start form's read: held until typed
    real_runs, real_card = reads.project_runs, reads.project_card

    def slow_runs(*args, **kwargs):
        polled.wait(30)
        return real_runs(*args, **kwargs)

    def slow_card(name):
        params_read.wait(30)
        return real_card(name)

    monkeypatch.setattr(reads, "project_runs", slow_runs)
    monkeypatch.setattr(reads, "project_card", slow_card)
    app = make_app(open_project=penguins)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await wait_for(
                pilot, lambda: isinstance(app.screen, ProjectScreen) and app.screen, what="project"
            )
            assert screen.snapshot is None  # the params are not known yet
            app.post_message(events.Key("n", "n"))
            # `d` would open the Data screen, `q` quit, if they reached the project.
            post_text(app, "9dq")
            await pilot.pause(0.2)
            assert app.screen is screen  # the form waits on its read
            params_read.set()
            form = await wait_for(
                pilot, lambda: isinstance(app.screen, StartRunModal) and app.screen, what="form"
            )
            field = form.query_one("#param-n_estimators", Input)
            # The field's text (150) is selected on focus: typing replaces it.
            await wait_for(pilot, lambda: field.value == "9dq", what="the keys typed")
            assert field.has_focus
            # The field's check answers its change message, which may come a frame later.
            await wait_for(
                pilot,
                lambda: "expected an integer"
                in str(form.query_one("#error-n_estimators").render()),
                what="the field's error",
            )
            post_text(app, "x")  # keys after the replay are not held any more
            await wait_for(pilot, lambda: field.value == "9dqx", what="the next key")
    finally:
        polled.set()
        params_read.set()


async def test_a_failed_read_drops_the_held_keys(penguins, wb_home, monkeypatch):
    """When the params cannot be read the error is shown and keys are no longer
    held: the next ones work the screen as usual."""
    use_fixed_system_sampler(monkeypatch)

    def broken(name):
        raise OSError("disk on fire")

    monkeypatch.setattr(reads, "project_card", broken)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen), what="home")
        app.start_run_form(penguins, None)
        await wait_for(
            pilot,
            lambda: "disk on fire" in str(app.screen.query_one("#error-message").render()),
            what="the error",
        )
        type_ahead(app, ["escape", "question_mark"])
        await wait_for(pilot, lambda: type(app.screen).__name__ == "HelpScreen", what="help")
