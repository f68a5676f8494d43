"""The shell notifier: the event as JSON on stdin, a filter on kinds, and a failing
or hanging command reported (exit code, stderr) without holding anything up."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import pytest
from workbench_notify_shell import NotifyError, workbench_notify

from workbench.plugins import Plugins, notify_plugins

EVENT = {
    "kind": "model.promoted",
    "project": "penguins",
    "message": "version 2 is champion",
    "ts": 1700000000.0,
    "data": {"challenger": 2},
}


def _append_to(file: Path) -> str:
    return f"cat >> {shlex.quote(str(file))}; echo >> {shlex.quote(str(file))}"


def test_the_command_gets_the_event_as_json_on_stdin(tmp_path):
    out = tmp_path / "events.jsonl"
    command = _append_to(out) + f' && echo "$WORKBENCH_EVENT_KIND" >> {shlex.quote(str(out))}'

    workbench_notify(EVENT, {"command": command})

    first, kind = out.read_text().splitlines()
    assert json.loads(first) == EVENT
    assert kind == "model.promoted"


def test_events_filter_the_kinds_it_runs_for(tmp_path):
    out = tmp_path / "events.jsonl"
    settings = {"command": _append_to(out), "events": ["data.rejected"]}

    workbench_notify(EVENT, settings)
    assert not out.exists()
    workbench_notify({**EVENT, "kind": "data.rejected"}, settings)
    assert json.loads(out.read_text())["kind"] == "data.rejected"


def test_without_a_command_it_does_nothing():
    assert workbench_notify(EVENT, {}) is None


def test_a_failing_command_is_reported_with_exit_code_and_stderr():
    with pytest.raises(NotifyError, match=r"exited with code 3: the hook is down"):
        workbench_notify(EVENT, {"command": "cat > /dev/null; echo 'the hook is down' >&2; exit 3"})


def test_a_hanging_command_is_killed_after_the_timeout(tmp_path):
    late = tmp_path / "late"
    command = f"sleep 30; touch {shlex.quote(str(late))}"
    started = time.monotonic()

    with pytest.raises(NotifyError, match=r"did not finish within 0.5s"):
        workbench_notify(EVENT, {"command": command, "timeout": 0.5})

    assert time.monotonic() - started < 10  # generous: the machine may be busy
    time.sleep(0.5)
    assert not late.exists()  # the whole group was killed, not only the shell


@pytest.mark.parametrize(
    "settings,problem",
    [
        ({"command": 3}, "command"),
        ({"command": "true", "events": "all"}, "events"),
        ({"command": "true", "timeout": 0}, "timeout"),
    ],
)
def test_bad_settings_are_reported(settings, problem):
    with pytest.raises(NotifyError, match=problem):
        workbench_notify(EVENT, settings)


def test_workbench_finds_it_and_passes_its_config_toml_settings(wb_home, tmp_path):
    out = tmp_path / "events.jsonl"
    (wb_home / "config.toml").write_text(
        f"[plugins.notify-shell]\ncommand = {json.dumps(_append_to(out))}\ntimeout = 5\n"
    )
    listed = {p["name"]: p for p in Plugins(warn=False).load().report()}
    assert listed["notify-shell"]["status"] == "ok"
    assert listed["notify-shell"]["contributes"]["notifiers"] == ["notify-shell"]

    assert notify_plugins(EVENT) == []
    assert json.loads(out.read_text()) == EVENT

    (wb_home / "config.toml").write_text('[plugins.notify-shell]\ncommand = "exit 7"\n')
    failures = notify_plugins(EVENT)
    assert len(failures) == 1 and "notify-shell" in failures[0] and "code 7" in failures[0]
