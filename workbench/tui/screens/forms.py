"""Modal forms: start a run with editable params, create a project."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select

from workbench.templates import TEMPLATES


class StartRunModal(ModalScreen[dict[str, str] | None]):
    """Params prefilled from workbench.toml (or from `initial`, a run being
    cloned: its values, and its keys workbench.toml lacks under "extra");
    returns the edited `key=value` texts."""

    # The first field has the focus as soon as the form is composed, so the
    # keys typed right after the one that opened it go there (see
    # WorkbenchApp.on_event); a focus() in on_mount would come after them.
    AUTO_FOCUS = "Input"
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="form.cancel")]

    def __init__(
        self,
        project: str,
        params: dict[str, Any],
        initial: dict[str, Any] | None = None,
        title: str | None = None,
    ) -> None:
        super().__init__()
        self.project = project
        self.params = params
        self.initial = initial or {}
        self.heading = title or f"Start a run of {project}"

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="form-box"):
            yield Label(f'[b]{self.heading}[/b]  (values are TOML: 0.1, 200, "text")')
            for key, value in self.params.items():
                with Horizontal(classes="form-row"):
                    yield Label(key, classes="form-label")
                    yield Input(
                        _toml(self.initial.get(key, value)),
                        id=f"param-{key}",
                        classes="param-input",
                    )
                yield Label("", id=f"error-{key}", classes="form-error")
            extra = " ".join(
                f"{k}={_toml(v)}" for k, v in self.initial.items() if k not in self.params
            )
            with Horizontal(classes="form-row"):
                yield Label("extra", classes="form-label")
                yield Input(extra, placeholder="key=value key2=value2", id="extra")
            with Horizontal(id="form-buttons"):
                yield Button("Start", variant="primary", id="start")
                yield Button("Cancel", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            self._submit()
        else:
            self.dismiss(None)

    def on_input_changed(self, event: Input.Changed) -> None:
        key = (event.input.id or "").removeprefix("param-")
        if event.input.id and event.input.id.startswith("param-") and key in self.params:
            self._check(key)

    def _check(self, key: str) -> bool:
        """Shows under the field why its text does not fit the param's type."""
        text = self.query_one(f"#param-{key}", Input).value.strip()
        problem = type_problem(self.params[key], text) if text else None
        label = self.query_one(f"#error-{key}", Label)
        label.update(f"{key}: {problem}" if problem else "")
        label.set_class(problem is not None, "-visible")
        return problem is None

    def on_input_submitted(self) -> None:
        self._submit()

    def _submit(self) -> None:
        bad = [key for key in self.params if not self._check(key)]
        if bad:
            self.query_one(f"#param-{bad[0]}", Input).focus()
            return
        overrides = {}
        for key in self.params:
            text = self.query_one(f"#param-{key}", Input).value.strip()
            if text:
                overrides[key] = text
        for pair in self.query_one("#extra", Input).value.split():
            key, _, text = pair.partition("=")
            overrides[key] = text
        self.dismiss(overrides)

    def action_cancel(self) -> None:
        self.dismiss(None)


def _toml(value: Any) -> str:
    """A param value as the TOML text a field shows."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def type_problem(default: Any, text: str) -> str | None:
    """Why `text` (a TOML value) cannot replace a param whose value in
    workbench.toml is `default`, or None when it can."""
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except (tomllib.TOMLDecodeError, ValueError):
        value = text  # kept as a string, as `--set` does
    if isinstance(default, bool):
        return None if isinstance(value, bool) else f"expected true or false, got {text!r}"
    if isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return None
        return f"expected an integer (like {default}), got {text!r}"
    if isinstance(default, float):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return None
        return f"expected a number (like {default:g}), got {text!r}"
    return None


class InitProjectModal(ModalScreen[tuple[Path, str, Path | None, str | None] | None]):
    """A new project: its folder and template, and optionally the user's own
    data (a CSV or Parquet file) with its target column instead of the
    template's sample data."""

    AUTO_FOCUS = "#init-path"
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="init.cancel")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="form-box"):
            yield Label("[b]New project[/b]  (a working project with real data)")
            with Horizontal(classes="form-row"):
                yield Label("folder", classes="form-label")
                yield Input(placeholder="~/projects/churn", id="init-path")
            with Horizontal(classes="form-row"):
                yield Label("template", classes="form-label")
                yield Select(
                    [(t, t) for t in TEMPLATES],
                    value="lightgbm",
                    allow_blank=False,
                    id="init-template",
                )
            with Horizontal(classes="form-row"):
                yield Label("data (optional)", classes="form-label")
                yield Input(placeholder="~/data/churn.csv (else the sample data)", id="init-data")
            with Horizontal(classes="form-row"):
                yield Label("target", classes="form-label")
                yield Input(placeholder="the column to predict (with data)", id="init-target")
            with Horizontal(id="form-buttons"):
                yield Button("Create", variant="primary", id="create")
                yield Button("Cancel", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "create":
            self._submit()
        else:
            self.dismiss(None)

    def on_input_submitted(self) -> None:
        self._submit()

    def _submit(self) -> None:
        path = self.query_one("#init-path", Input).value.strip()
        if not path:
            self.notify("Give the new project's folder.", severity="warning")
            return
        data = self.query_one("#init-data", Input).value.strip()
        target = self.query_one("#init-target", Input).value.strip()
        if target and not data:
            self.notify("A target column goes with a data file.", severity="warning")
            return
        self.dismiss(
            (
                Path(path).expanduser(),
                str(self.query_one("#init-template", Select).value),
                Path(data).expanduser() if data else None,
                target or None,
            )
        )

    def action_cancel(self) -> None:
        self.dismiss(None)
