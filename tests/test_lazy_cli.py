"""The command line loads a command's module only when that command runs: `--help`
imports none of them (its one-line helps come from a table kept next to the
registry, checked here against each command's real help), and the data checks
import scipy and scikit-learn only where they are needed."""

from __future__ import annotations

import importlib
import inspect
import json
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from wbtest import REPO

from workbench.cli import cli
from workbench.cli.app import WorkbenchGroup

# Runs the real entry point with the given arguments, then writes the names of the
# modules it imported to a file, whatever the exit.
PROBE = r"""
import atexit, json, sys
out, sys.argv = sys.argv[1], ["workbench", *sys.argv[2:]]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
from workbench.cli import main
main()
"""

HEAVY = ("pandas", "numpy", "scipy", "sklearn", "lightgbm", "rich", "textual", "sqlite_utils")


def _imported(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    out = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert out.exists(), done.stderr
    return done, set(json.loads(out.read_text()))


def _first_paragraph(help_text: str) -> str:
    return " ".join(inspect.cleandoc(help_text).partition("\n\n")[0].split())


def _fresh_group() -> WorkbenchGroup:
    """A root group like `cli`, with no command loaded yet."""
    return WorkbenchGroup(
        name="workbench",
        help=cli.help,
        params=list(cli.params),
        callback=cli.callback,
        invoke_without_command=True,
        context_settings=dict(cli.context_settings),
    )


def test_help_imports_no_command_module(tmp_path):
    done, modules = _imported(tmp_path, "--help")
    assert done.returncode == 0, done.stderr
    loaded = sorted(m for m in modules if m.startswith("workbench.cli."))
    assert loaded == ["workbench.cli.app"], loaded
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert heavy == [], heavy
    for name in WorkbenchGroup.LAZY:
        assert f"\n  {name} " in done.stdout, f"{name} missing from --help"
    assert "Traceback" not in done.stderr


def test_summary_table_matches_each_commands_help():
    assert set(WorkbenchGroup.SUMMARIES) == set(WorkbenchGroup.LAZY)
    for name, target in WorkbenchGroup.LAZY.items():
        module, attr = target.split(":")
        command = getattr(importlib.import_module(module), attr)
        assert command.help, name
        assert WorkbenchGroup.SUMMARIES[name] == _first_paragraph(command.help), (
            f"SUMMARIES[{name!r}] no longer matches the first paragraph of its help"
        )
        assert not command.short_help, f"{name} sets short_help, which the table ignores"
        assert not command.hidden and not command.deprecated, name


def test_help_is_the_same_text_as_with_every_command_loaded():
    group = _fresh_group()
    lazy = group.get_help(click.Context(group, info_name="workbench"))
    assert group.commands == {}  # listing loaded nothing
    for name in group.list_commands(click.Context(group)):
        assert group.get_command(click.Context(group), name) is not None
    assert set(group.commands) == set(WorkbenchGroup.LAZY)
    loaded = group.get_help(click.Context(group, info_name="workbench"))
    assert lazy == loaded
    # ...and as click's own rendering of the loaded commands.
    ctx = click.Context(group, info_name="workbench")
    formatter = ctx.make_formatter()
    click.Group.format_commands(group, ctx, formatter)
    assert formatter.getvalue().strip() and formatter.getvalue().rstrip("\n") in lazy


def test_a_command_still_runs_through_the_lazy_registry(tmp_path):
    done, modules = _imported(tmp_path, "project", "list", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
    assert "workbench.cli.project" in modules
    assert "workbench.cli.model" not in modules and "workbench.cli.serve" not in modules
    # The store was made by this command: its migrations ran through sqlite-utils,
    # without the pandas and numpy that sqlite-utils imports when they are there.
    assert "sqlite_utils" in modules
    assert not any(m.split(".")[0] in ("pandas", "numpy") for m in modules)


def test_modules_hidden_for_sqlite_utils_import_again_after():
    from workbench.store.migrations import _hidden

    assert "tabnanny" not in sys.modules
    with _hidden("tabnanny", "json"):
        with pytest.raises(ImportError):
            importlib.import_module("tabnanny")
        assert importlib.import_module("json").dumps([1]) == "[1]"  # imported before: kept
    assert importlib.import_module("tabnanny").__name__ == "tabnanny"


def test_an_unknown_command_is_a_one_line_usage_error(tmp_path):
    done, modules = _imported(tmp_path, "no-such-command")
    assert done.returncode == 2
    assert "no-such-command" in done.stderr and "Traceback" not in done.stderr
    assert not any(m.split(".")[0] in ("pandas", "scipy", "sklearn") for m in modules)


def test_data_checks_import_scipy_and_sklearn_only_when_needed(tmp_path):
    shutil.copytree(REPO / "sample_projects" / "penguins-lightgbm", tmp_path / "penguins")
    add, _ = _imported(tmp_path, "project", "add", str(tmp_path / "penguins"))
    assert add.returncode == 0, add.stderr
    batch = str(tmp_path / "penguins" / "data" / "incoming" / "batch_01_clean.csv")

    done, modules = _imported(tmp_path, "data", "validate", "penguins", batch, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["passed"] is True
    assert not any(m == "sklearn" or m.startswith("sklearn.") for m in modules)
    assert not any(m == "scipy" or m.startswith("scipy.") for m in modules)

    done, modules = _imported(tmp_path, "data", "drift", "penguins", batch, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["dataset_drift"] is False
    assert report["performance"]["available"] is False  # no model: no metric to compute
    assert "scipy.stats" in modules  # the KS test ran
    assert not any(m == "sklearn" or m.startswith("sklearn.") for m in modules)
