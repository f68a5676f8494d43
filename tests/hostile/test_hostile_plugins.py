"""Hostile project plugin files, through the real CLI.

A project's `plugins/*.py` files are the user's code, run when a hook needs
them; a file that cannot serve is never fatal. `workbench plugins list PROJECT
--json`, in a fresh `workbench` process, exits 0 and prints one JSON document in
which the file is `failed` with a one-line reason (or `ok` with a warning, for a
name another plugin claimed first); the built-in plugin still works; no
traceback; the project's files are unchanged and nothing is written into the
project (no bytecode cache). Files that are not regular files, or too large to be a plugin, are
refused before they are read.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from wbtest import wb, wb_inprocess

pytestmark = pytest.mark.slow  # a CLI process a case

HOOK = "from workbench import hookimpl\n\n\n@hookimpl\n"


def _file(text: str | bytes) -> Callable[[Path], None]:
    def make(plugins: Path, name: str = "hostile.py") -> None:
        data = text.encode() if isinstance(text, str) else text
        (plugins / name).write_bytes(data)

    return make


def _named(name: str, text: str) -> Callable[[Path], None]:
    return lambda plugins: _file(text)(plugins, name)


def _fifo(plugins: Path) -> None:
    os.mkfifo(plugins / "hostile.py")


def _folder(plugins: Path) -> None:
    (plugins / "hostile.py").mkdir()
    (plugins / "hostile.py" / "__init__.py").write_text("x = 1\n")


def _link_to(target: str) -> Callable[[Path], None]:
    return lambda plugins: (plugins / "hostile.py").symlink_to(target)


def _loop(plugins: Path) -> None:
    (plugins / "hostile.py").symlink_to(plugins / "hostile.py")


def _huge(plugins: Path) -> None:
    (plugins / "hostile.py").write_text("# padding\n" * 300_000)  # 3 MB of comments


# name -> (how to make plugins/hostile.py, expected status, words in the reason)
CASES: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "syntax error": (_file("def broken(:\n"), "failed", "SyntaxError"),
    "not UTF-8": (_file(b"x = '\xff\xfe'\n"), "failed", "SyntaxError"),
    "NUL bytes": (_file(b"x = 1\x00\n"), "failed", "null bytes"),
    "sys.exit at import": (_file("import sys\nsys.exit(3)\n"), "failed", "SystemExit: 3"),
    "raises at import": (_file("raise RuntimeError('boom')\n"), "failed", "RuntimeError: boom"),
    "a BaseException at import": (
        _file("class Odd(BaseException):\n    pass\n\n\nraise Odd('odd')\n"),
        "failed",
        "Odd: odd",
    ),
    "endless recursion at import": (
        _file("def f():\n    return f()\n\n\nf()\n"),
        "failed",
        "RecursionError",
    ),
    "imports a missing module": (
        _file("import no_such_module_for_workbench\n"),
        "failed",
        "ModuleNotFoundError",
    ),
    "multi-line error message": (
        _file("raise ValueError('first\\nsecond\\nthird')\n"),
        "failed",
        "ValueError: first second third",
    ),
    "unknown hook": (
        _file(HOOK + "def workbench_nonsense():\n    return {}\n"),
        "failed",
        "unknown hook(s): workbench_nonsense",
    ),
    "hook takes an argument the spec lacks": (
        _file(HOOK + "def workbench_trainers(extra):\n    return {}\n"),
        "failed",
        "does not match the hook specs",
    ),
    "hook returns a list": (
        _file(HOOK + "def workbench_trainers():\n    return ['x']\n"),
        "failed",
        "returned a list, expected a dict",
    ),
    "hook returns None": (
        _file(HOOK + "def workbench_exporters():\n    return None\n"),
        "failed",
        "returned a NoneType, expected a dict",
    ),
    "hook raises": (
        _file(HOOK + "def workbench_exporters():\n    raise ValueError('no')\n"),
        "failed",
        "workbench_exporters raised ValueError: no",
    ),
    "hook calls sys.exit": (
        _file(HOOK + "def workbench_drift_tests():\n    import sys\n    sys.exit(0)\n"),
        "failed",
        "workbench_drift_tests raised SystemExit",
    ),
    "hook raises a BaseException": (
        _file(
            "class Odd(BaseException):\n    pass\n\n\n"
            + HOOK
            + "def workbench_validators():\n    raise Odd('odd')\n"
        ),
        "failed",
        "workbench_validators raised Odd: odd",
    ),
    "claims a built-in trainer": (
        _file(HOOK + "def workbench_trainers():\n    return {'lightgbm': object}\n"),
        "ok",
        "trainers 'lightgbm' is already provided by 'builtin'; ignored",
    ),
    "claims a built-in exporter": (
        _file(HOOK + "def workbench_exporters():\n    return {'bundle': print}\n"),
        "ok",
        "exporters 'bundle' is already provided by 'builtin'; ignored",
    ),
    "named like the built-in plugin": (
        _named("builtin.py", HOOK + "def workbench_trainers():\n    return {}\n"),
        "failed",
        "the name is taken by the builtin",
    ),
    "prints at import": (_file("print('garbage on stdout')\n"), "ok", ""),
    "prints in a hook": (
        _file(HOOK + "def workbench_trainers():\n    print('{not json')\n    return {}\n"),
        "ok",
        "",
    ),
    "a FIFO": (_fifo, "failed", "not a regular file"),
    "a folder": (_folder, "failed", "not a regular file"),
    "a link to a device": (_link_to("/dev/zero"), "failed", "not a regular file"),
    "a link that loops": (_loop, "failed", "not a regular file"),
    "a link to nowhere": (_link_to("/nonexistent/plugin.py"), "failed", "not a regular file"),
    "too large": (_huge, "failed", "larger than"),
}


def _state(folder: Path) -> dict[str, str]:
    """Every entry under the project: a file's hash, a link's target, or its kind."""
    found = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            found[key] = "link:" + os.readlink(path)
        elif path.is_file():
            found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            found[key] = "folder" if path.is_dir() else "other"
    return found


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_hostile_plugin_file_is_reported_and_skipped(case, tmp_path):
    make, status, reason = CASES[case]
    folder = tmp_path / "project"
    (folder / "plugins").mkdir(parents=True)
    (folder / "data").mkdir()
    (folder / "data" / "train.csv").write_text("x,label\n1,a\n2,b\n")
    (folder / "workbench.toml").write_text(
        '[project]\nname = "hostile"\n[data]\ntrain = "data/train.csv"\ntarget = "label"\n'
        '[train]\ntrainer = "lightgbm"\n'
    )
    make(folder / "plugins")
    before = _state(folder)

    # Registering reads only workbench.toml (no plugin runs): in this process. Listing
    # loads the hostile file, in a fresh process of its own.
    added = wb_inprocess("project", "add", str(folder))
    assert added.returncode == 0, added.stderr
    listed = wb("plugins", "list", "hostile", "--json", timeout=60)

    assert listed.returncode == 0, listed.stderr
    assert "Traceback" not in listed.stdout + listed.stderr
    report = json.loads(listed.stdout)  # stdout is only the JSON document
    [builtin] = [p for p in report if p["source"] == "builtin"]
    assert builtin["status"] == "ok" and builtin["warnings"] == []
    assert "lightgbm" in builtin["contributes"]["trainers"]
    [plugin] = [p for p in report if p["source"] == "project file"]
    assert plugin["status"] == status
    said = plugin["error"] if status == "failed" else " ".join(plugin["warnings"])
    assert reason in said
    assert "\n" not in said and len(said) < 1000
    assert _state(folder) == before  # nothing changed, nothing written (no __pycache__)


def test_a_private_plugin_file_is_not_run(tmp_path):
    folder = tmp_path / "project"
    (folder / "plugins").mkdir(parents=True)
    (folder / "plugins" / "_helper.py").write_text("raise SystemExit('must not run')\n")
    (folder / "workbench.toml").write_text(
        '[project]\nname = "private"\n[data]\ntrain = "t.csv"\ntarget = "y"\n'
        '[train]\ntrainer = "lightgbm"\n'
    )
    (folder / "t.csv").write_text("x,y\n1,2\n")
    wb_inprocess("project", "add", str(folder), check=True)
    listed = wb("plugins", "list", "private", "--json", check=True)
    assert [p["name"] for p in json.loads(listed.stdout) if p["source"] == "project file"] == []
    assert "must not run" not in listed.stdout + listed.stderr
