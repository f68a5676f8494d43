"""The Workbench terminal app: `make_app()` builds it for the CLI and for tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import events
from textual.app import App
from textual.binding import Binding
from textual.command import CommandPalette
from textual.notifications import SeverityLevel
from textual.widget import Widget
from textual.worker import get_current_worker

from workbench.core.errors import WorkbenchError
from workbench.config.settings import Settings, load_settings
from workbench.store.dashboard import Notification
from workbench.tui.commands import WorkbenchCommands
from workbench.tui.forget_removed import forget_removed
from workbench.tui.gc_tuning import GcTuning
from workbench.tui.screens.base import describe
from workbench.tui.screens.error import ErrorModal
from workbench.tui.screens.help import HelpScreen
from workbench.tui.screens.home import HomeScreen

ACTIVE = ("queued", "running")  # statuses of a run that can still be stopped
NOTIFY_SECONDS = 2.0
NOTIFY_AT_ONCE = 5  # toasts per poll; a burst beyond says how many more there were
# How long keys typed after Enter in the command palette wait for the palette to
# close; when it has not (Enter only highlighted a hit), they go to the palette.
PALETTE_HOLD_SECONDS = 1.0
GC_TICK_SECONDS = 5.0  # how often the garbage collection tuning looks (gc_tuning)
NOTIFY_TOASTS: dict[str, tuple[str, SeverityLevel]] = {  # kind -> (title, severity)
    "notify.model.promoted": ("Model promoted", "information"),
    "notify.data.rejected": ("Data rejected", "error"),
    "notify.data.drift": ("Data drift", "warning"),
    "notify.failed": ("Notifier failed", "warning"),
}


class WorkbenchApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "workbench"
    COMMANDS = App.COMMANDS | {WorkbenchCommands}
    BINDINGS = [
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("ctrl+t", "toggle_dark", "Theme", id="app.theme"),
        Binding("h", "go_home", "Home", id="app.home", show=False),
        Binding("J", "jobs", "Cluster jobs", id="app.jobs", show=False),
    ]

    def __init__(
        self, settings: Settings | None = None, open_project: str | None = None, demo: bool = False
    ) -> None:
        super().__init__()
        self.settings = settings or Settings()
        self.initial_project = open_project
        self.demo = demo
        self.project_names: list[str] = []
        # The newest event the notification toasts have looked at (None until
        # the first look, at startup).
        self.events_seen: int | None = None
        # Keys typed while a form is being prepared (its data read in a worker),
        # handed to the form once it is up; None when no form is awaited.
        self._held_keys: list[events.Key] | None = None
        self._form_pending = False  # push_form will hand the held keys to its form
        self._palette_hold: Any = None  # the timer that ends a hold begun in the palette
        self._palette_holds = False  # the keys are held only because of the palette's Enter
        self.gc_tuning = GcTuning()  # no full garbage collection between a key and its frame

    def on_mount(self) -> None:
        self.theme = "textual-light" if self.settings.theme == "light" else "textual-dark"
        if self.settings.keys:
            self.set_keymap(self.settings.keys)
            unknown = unknown_key_ids(self.settings.keys)
            if unknown:
                self.notify(
                    f"config.toml [keys]: unknown binding id(s) {', '.join(unknown)};"
                    " press ? on a screen to see its ids",
                    title="Key remap ignored",
                    severity="warning",
                    timeout=15,
                    markup=False,
                )
        self.push_screen(HomeScreen())
        self.set_interval(GC_TICK_SECONDS, self._gc_tick)
        if self.initial_project:
            self.open_project(self.initial_project)
        if self.demo:
            self.run_demo()
        self.run_worker(self._toast_notifications, thread=True, group="notify", exit_on_error=False)

    def on_unmount(self) -> None:
        self.gc_tuning.release()

    def _gc_tick(self) -> None:
        # Closed screens' widgets first, so that a reclaim can free them.
        forget_removed(self)
        self.gc_tuning.tick()

    # Keys typed ahead --------------------------------------------------

    async def on_event(self, event: events.Event) -> None:
        """Keys reach a form opened by the key before them.

        Textual forwards each key to the focused widget's queue and answers a
        (non-priority) binding only when the key bubbles back up, so the keys
        typed after `i` were all routed to the table underneath before `i`
        pushed the form. Here a binding of the focused chain runs as its key
        arrives, unless the focused widget takes that key itself (a character
        typed into a field, a key of the field's own bindings, which must stay
        in order with the characters before it): the form is pushed and
        mounted (focused on its first field by its AUTO_FOCUS) before the next
        key is routed, and a Tab typed ahead moves on to the next field."""
        if isinstance(event, (events.Key, events.MouseEvent)):
            self.gc_tuning.input_seen()
        if isinstance(event, events.Key) and not event.is_forwarded:
            if self._held_keys is not None:
                if not await self._check_bindings(event.key, priority=True):
                    self._held_keys.append(event)
                return
            if event.key == "enter" and isinstance(self.screen, CommandPalette):
                # The command chosen runs only once the palette has closed,
                # several messages later: until then what is typed would go
                # into the closing palette's input. Kept for the form the
                # command opens (push_form) instead.
                await super().on_event(event)
                self.hold_keys()
                self._palette_holds = True  # until the command asks for the keys itself
                self._palette_hold = self.set_timer(PALETTE_HOLD_SECONDS, self._palette_stayed)
                return
            if not _takes_key(self.focused, event):
                self.app_focus = True
                if await self._check_bindings(event.key, priority=True):
                    return
                if await self._check_bindings(event.key):
                    return
        await super().on_event(event)

    def hold_keys(self) -> None:
        """Keep the keys typed from now on for the form about to be pushed
        (`push_form`); `drop_held_keys` when it will not come."""
        self._palette_holds = False  # a form is on its way: the hold is its own now
        if self._held_keys is None:
            self._held_keys = []

    def drop_held_keys(self) -> None:
        self._held_keys = None

    def on_command_palette_closed(self, event: CommandPalette.Closed) -> None:
        if self._palette_hold is None:
            return
        self._palette_hold.stop()
        self._palette_hold = None
        if event.option_selected:
            # The palette runs its command by call_later, queued before this.
            self.call_later(self._palette_command_ran)
        else:
            self._palette_holds = False
            self.drop_held_keys()

    def _palette_command_ran(self) -> None:
        """A command that opened a form (or is preparing one: `hold_keys`)
        hands it the held keys; any other (a screen, a toggle) drops them, as
        the closed palette's input did."""
        if self._palette_holds and not self._form_pending:
            self.drop_held_keys()
        self._palette_holds = False

    async def _palette_stayed(self) -> None:
        """Enter did not close the palette: what was typed after it is the
        palette's, in order."""
        self._palette_hold = None
        self._palette_holds = False
        if isinstance(self.screen, CommandPalette) and self._held_keys is not None:
            held, self._held_keys = self._held_keys, None
            for key in held:
                await super().on_event(events.Key(key.key, key.character))

    def push_form(self, form: Any, callback: Any = None) -> None:
        """Push `form`, then route to it, in order, the keys held since it was
        asked for (`hold_keys`); keys typed meanwhile are held until then."""
        mounted = self.push_screen(form, callback)
        self._form_pending = True

        async def replay() -> None:
            await mounted
            self._form_pending = False
            held, self._held_keys = self._held_keys or [], None
            for key in held:
                await super(WorkbenchApp, self).on_event(events.Key(key.key, key.character))

        self.call_next(replay)

    # Navigation ---------------------------------------------------------

    def go_home(self) -> None:
        while len(self.screen_stack) > 2:
            self.pop_screen()

    def action_go_home(self) -> None:
        self.go_home()

    def open_project(self, name: str) -> None:
        from workbench.tui.screens.project import ProjectScreen

        self.push_screen(ProjectScreen(name))

    def open_run(self, run_id: int) -> None:
        from workbench.tui.screens.run import RunScreen

        self.push_screen(RunScreen(run_id))

    def open_models(self, project: str) -> None:
        from workbench.tui.screens.models import ModelsScreen

        self.push_screen(ModelsScreen(project))

    def open_automation(self, project: str | None = None) -> None:
        from workbench.tui.screens.automation import AutomationScreen

        self.push_screen(AutomationScreen(project))

    def open_compare(self, run_ids: list[int]) -> None:
        from workbench.tui.screens.compare import CompareScreen

        self.push_screen(CompareScreen(run_ids))

    def action_jobs(self) -> None:
        from workbench.tui.screens.jobs import JobsScreen

        if not isinstance(self.screen, JobsScreen):
            self.push_screen(JobsScreen())

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def action_toggle_dark(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    # Toasts for the store's notifications, on whatever screen shows --------

    def _toast_notifications(self) -> None:
        """A loop in its own thread: every NOTIFY_SECONDS, the `notify.*` events
        written since the last look (by any process: the watcher, a CI job), from
        the newest event at startup on, so old news is not shown again."""
        from workbench.tui import reads

        worker = get_current_worker()
        failed = False
        while not worker.is_cancelled:
            try:
                if self.events_seen is None:
                    self.events_seen = reads.latest_event_id()
                else:
                    self.events_seen, found = reads.notifications_after(self.events_seen)
                    if found and not worker.is_cancelled:
                        self.call_from_thread(self._toast, found)
                failed = False
            except Exception as exc:  # a busy or broken store: say so once, keep trying
                if not failed and not worker.is_cancelled:
                    self.call_from_thread(
                        self.notify, f"Cannot read notifications: {describe(exc)}", severity="error"
                    )
                failed = True
            worker.cancelled_event.wait(NOTIFY_SECONDS)

    def _toast(self, events: list[Notification]) -> None:
        for event in events[-NOTIFY_AT_ONCE:]:
            title, severity = NOTIFY_TOASTS.get(event.kind, ("Notification", "information"))
            self.notify(event.message, title=title, severity=severity, timeout=10, markup=False)
        if len(events) > NOTIFY_AT_ONCE:
            more = len(events) - NOTIFY_AT_ONCE
            self.notify(f"and {more} more: see the Automation screen", timeout=10)

    # Actions that touch the store run in workers ---------------------------

    def show_error(self, title: str, error: BaseException | str) -> None:
        message = error if isinstance(error, str) else describe(error)
        if isinstance(error, WorkbenchError):
            title = error.title
        self.push_screen(ErrorModal(title, message))

    def _background(
        self, title: str, fn: Any, then: Any, busy: Any = None, failed: Any = None
    ) -> None:
        """`fn` in a thread, then `then(result)` here, or `failed()` and the
        error; `busy` (a widget) shows a loading indicator meanwhile."""
        if busy is not None:
            busy.loading = True

        def done() -> None:
            if busy is not None:
                busy.loading = False

        def work() -> None:
            try:
                result = fn()
            except Exception as exc:
                self.call_from_thread(done)
                if failed is not None:
                    self.call_from_thread(failed)
                self.call_from_thread(self.show_error, title, exc)
                return
            self.call_from_thread(done)
            self.call_from_thread(then, result)

        self.run_worker(work, thread=True, group="actions", exit_on_error=False)

    def start_run_form(
        self,
        project: str,
        params: dict | None,
        initial: dict | None = None,
        title: str | None = None,
    ) -> None:
        """The start form; `initial` prefills it (a cloned run's params)."""
        from workbench.tui.screens.forms import StartRunModal

        def open_form(found: dict) -> None:
            self.push_form(
                StartRunModal(project, found, initial, title), lambda o: self._start(project, o)
            )

        if params is not None:
            open_form(params)
        else:
            from workbench.tui import reads

            # What is typed while the params are read goes into the form.
            self.hold_keys()
            self._background(
                "Cannot start a run",
                lambda: reads.project_card(project).params,
                open_form,
                failed=self.drop_held_keys,
            )

    def _start(self, project: str, overrides: dict[str, str] | None) -> None:
        if overrides is None:
            return
        from workbench.config.project import parse_overrides
        from workbench.runs.launch import start_run
        from workbench.tui import reads

        pairs = [f"{k}={v}" for k, v in overrides.items()]
        self._background(
            "Cannot start a run",
            lambda: start_run(reads.store(), project, parse_overrides(pairs))[0],
            lambda run_id: self.notify(f"run {run_id} started in {project}"),
        )

    def stop_run(self, run_id: int, status: str | None = None, what: str = "run") -> None:
        """Asks first (a stopped run cannot be resumed); a run that has already
        finished gets a notification, not a question."""
        from workbench.tui.screens.confirm import ConfirmModal

        if status is not None and status not in ACTIVE:
            self.notify(f"{what} {run_id} has already finished ({status}): nothing to stop.")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._stop(run_id, what)

        self.push_screen(
            ConfirmModal(
                f"Stop {what} {run_id}?",
                "Its processes are ended and it is marked stopped; it cannot be resumed.",
                confirm=f"Stop {what}",
            ),
            answered,
        )

    def _stop(self, run_id: int, what: str) -> None:
        from workbench.core.errors import UsageError
        from workbench.runs.control import stop_run
        from workbench.tui import reads

        self.notify(f"stopping {what} {run_id}…")

        def work() -> str:
            try:
                return stop_run(reads.store(), run_id)
            except UsageError as exc:  # it finished meanwhile: news, not an error
                return f"not stopped: {exc.message}"

        self._background(
            f"Cannot stop the {what}", work, lambda status: self.notify(f"{what} {run_id} {status}")
        )

    def confirm_demo(self) -> None:
        from workbench.tui.screens.confirm import ConfirmModal

        self.push_screen(
            ConfirmModal(
                "Start the demo?",
                "Copies the sample projects into the store and queues one training run"
                " of each (three runs, about a minute of CPU).",
                confirm="Start demo",
            ),
            lambda yes: self.run_demo() if yes else None,
        )

    def run_demo(self) -> None:
        from workbench.demo import start_demo_runs
        from workbench.tui import reads

        self.notify("working… copying the sample projects and starting one run of each")
        self._background(
            "Demo failed",
            lambda: [s["run"] for s in start_demo_runs(reads.store())],
            lambda ids: self.notify(f"demo runs queued: {', '.join(map(str, ids))}"),
            busy=self._busy_widget(),
        )

    def action_init_project(self) -> None:
        from workbench.tui.screens.forms import InitProjectModal

        self.push_screen(InitProjectModal(), self._init_project)

    def _init_project(self, answer: tuple[Path, str, Path | None, str | None] | None) -> None:
        if answer is None:
            return
        from workbench.projects import create_project
        from workbench.tui import reads

        path, template, data, target = answer

        def created(name: str) -> None:
            self.notify(f"project {name} created")
            self.open_project(name)

        self.notify(f"working… creating the project in {path}", timeout=30)
        self._background(
            "Cannot create the project",
            lambda: create_project(reads.store(), path, template, data=data, target=target)[0][
                "name"
            ],
            created,
            busy=self._busy_widget(),
        )

    def _busy_widget(self) -> Any:
        """The main table of the screen showing, to carry a loading indicator."""
        from workbench.tui.widgets.synced_table import SyncedTable

        tables = list(self.screen.query(SyncedTable))
        return tables[0] if tables else None


def _takes_key(widget: Widget | None, key: events.Key) -> bool:
    """Whether `widget` (focused) handles `key` itself, so that the key must
    be queued to it after the ones before it: a widget that reads keys (an
    Input, a Select's list searched by typing) takes characters and the keys
    of its own bindings; a TextArea takes Enter and Tab too, so it gets all."""
    if widget is None or type(widget)._on_key is Widget._on_key:
        return False
    from textual.widgets import TextArea  # not at import: it slows the first frame

    if isinstance(widget, TextArea) or key.is_printable:
        return True
    return key.key in widget._bindings.key_to_bindings


def binding_ids() -> set[str]:
    """Every binding id a `[keys]` entry of config.toml can remap."""
    from workbench.tui.screens import (
        automation,
        compare,
        confirm,
        data,
        error,
        forms,
        help,
        model_forms,
        models,
        project,
        run,
        sweep,
    )
    from workbench.tui.widgets.synced_table import SyncedTable

    classes: list[Any] = [WorkbenchApp, HomeScreen, SyncedTable]
    for module in (automation, compare, confirm, data, error, forms, help, model_forms):
        classes += [v for v in vars(module).values() if isinstance(v, type)]
    for module in (models, project, run, sweep):
        classes += [v for v in vars(module).values() if isinstance(v, type)]
    return {
        b.id
        for cls in classes
        for b in getattr(cls, "BINDINGS", [])
        if isinstance(b, Binding) and b.id
    }


def unknown_key_ids(keys: dict[str, str]) -> list[str]:
    """The ids of `[keys]` that no binding has (a typo, or a renamed binding)."""
    known = binding_ids()
    return sorted(k for k in keys if k not in known)


def make_app(open_project: str | None = None, demo: bool = False) -> WorkbenchApp:
    """The app as the CLI runs it, with the user's settings (keys, theme)."""
    return WorkbenchApp(load_settings(), open_project=open_project, demo=demo)
