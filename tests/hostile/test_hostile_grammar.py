"""Hostile arguments to the noun verb commands (sweep, watch, pipeline, plugins)
and to their old spellings.

Every case goes through the real entry point (`workbench.cli.main`) and must:
exit 2; say why in one `error:` line on stderr naming the argument (an old
spelling may add its one deprecation note); print no traceback; leave the
store (rows and files), the project's files and the working folder as they were;
start no watcher.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

import pytest

from workbench.cli import main

BIG = "9" * 5000
SQL = "x'; DROP TABLE runs; --"

# id -> (arguments, a piece of the one-line error)
CASES: dict[str, tuple[list[str], str]] = {
    # sweep
    "sweep without a verb": (["sweep"], "needs a command: list, resume, show, start"),
    "sweep unknown option": (["sweep", "--bogus"], "--bogus"),
    "sweep list without project": (["sweep", "list"], "PROJECT"),
    "sweep list unknown project": (["sweep", "list", "ghost"], "ghost"),
    "sweep list sql project": (["sweep", "list", SQL], "no project"),
    "sweep list extra argument": (["sweep", "list", "proj", "extra"], "extra"),
    "sweep show text id": (["sweep", "show", "abc"], "run ids"),
    "sweep show 5000 digits": (["sweep", "show", BIG], "5000 characters"),
    "sweep show beyond int64": (["sweep", "show", "9223372036854775808"], "no run"),
    "sweep show negative": (["sweep", "show", "--", "-1"], "whole numbers"),
    "sweep show a plain run": (["sweep", "show", "1"], "not a sweep"),
    "sweep show missing run": (["sweep", "show", "4242"], "no run 4242"),
    "sweep start trials 0": (["sweep", "start", "proj", "--trials", "0"], "--trials"),
    "sweep start parallel text": (["sweep", "start", "proj", "--parallel", "two"], "--parallel"),
    "sweep start timeout nan": (["sweep", "start", "proj", "--timeout", "nan"], "--timeout"),
    "sweep start timeout inf": (["sweep", "start", "proj", "--timeout", "inf"], "--timeout"),
    "sweep start timeout 0": (["sweep", "start", "proj", "--timeout", "0"], "--timeout"),
    "sweep start unknown project": (["sweep", "start", "ghost"], "ghost"),
    "sweep resume sql id": (["sweep", "resume", "proj", "1; drop table runs"], "run ids"),
    "sweep resume a plain run": (["sweep", "resume", "proj", "1"], "no sweep 1"),
    "sweep resume nothing unfinished": (["sweep", "resume", "proj"], "no unfinished sweep"),
    "sweep resume unknown project": (["sweep", "resume", "ghost"], "ghost"),
    "sweep old show text id": (["sweep", "proj", "--show", "abc"], "run ids"),
    "sweep old trials 0": (["sweep", "proj", "--trials", "0"], "--trials"),
    "sweep old timeout -inf": (["sweep", "proj", "--timeout", "-inf"], "--timeout"),
    "sweep old 3000-character project": (["sweep", "p" * 3000, "--list"], "3000 characters"),
    # watch
    "watch status extra argument": (["watch", "status", "proj"], "proj"),
    "watch stop extra argument": (["watch", "stop", "proj"], "proj"),
    "watch status unknown option": (["watch", "status", "--bogus"], "--bogus"),
    "watch start json in the foreground": (["watch", "start", "--json"], "--json"),
    "watch start quiet nan": (["watch", "start", "--quiet", "nan"], "--quiet"),
    "watch start debounce 5000 digits": (["watch", "start", "--debounce", BIG], "--debounce"),
    "watch start unknown project": (["watch", "start", "ghost", "--detach"], "ghost"),
    "watch start sql project": (["watch", "start", SQL], "no project"),
    "watch old status and stop": (["watch", "--status", "--stop"], "only one of"),
    "watch old status with project": (["watch", "--status", "proj"], "no project names"),
    "watch old json in the foreground": (["watch", "--json"], "--json"),
    "watch old unknown project": (["watch", "ghost", "--detach"], "ghost"),
    # pipeline
    "pipeline without a verb": (["pipeline"], "needs a command: list, run"),
    "pipeline list without project": (["pipeline", "list"], "PROJECT"),
    "pipeline list unknown project": (["pipeline", "list", "ghost"], "ghost"),
    "pipeline list sql project": (["pipeline", "list", SQL], "no project"),
    "pipeline run unknown project": (["pipeline", "run", "ghost"], "ghost"),
    "pipeline run missing file": (["pipeline", "run", "proj", "missing.csv"], "no such file"),
    "pipeline run flag with a value": (["pipeline", "run", "proj", "--again=yes"], "--again"),
    "pipeline old history unknown project": (["pipeline", "ghost", "--history"], "ghost"),
    # plugins
    "plugins without a verb": (["plugins"], "needs a command: list"),
    "plugins list unknown project": (["plugins", "list", "ghost"], "ghost"),
    "plugins list traversal": (["plugins", "list", "../../etc/passwd"], "../../etc/passwd"),
    "plugins list project twice": (["plugins", "list", "proj", "--project", "b"], "once"),
    "plugins list old unknown project": (["plugins", "list", "--project", "ghost"], "ghost"),
    # the root
    "a plural noun": (["sweeps", "list"], "sweeps"),
}


@pytest.fixture(scope="module")
def store_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One store with a project and a finished plain run, shared by the cases."""
    return tmp_path_factory.mktemp("hostile-grammar")


@pytest.fixture
def prepared(store_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = store_home / "home"
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    if not (home / "workbench.db").exists():
        code, _, err = run_main(["project", "init", str(store_home / "proj"), "--template", "script"])
        assert code == 0, err
        conn = sqlite3.connect(home / "workbench.db")
        with conn:
            conn.execute(
                "INSERT INTO runs (project_id, status, trainer, created_at)"
                " VALUES (1, 'succeeded', 'script', 0)"
            )
        conn.close()
    return home


def run_main(args: list[str]) -> tuple[int, str, str]:
    """The console script in this process: its exit code, stdout and stderr."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    out, err = io.StringIO(), io.StringIO()
    argv, umask = sys.argv, os.umask(0o022)
    os.umask(umask)
    sys.argv = ["workbench", *args]
    try:
        with redirect_stdout(out), redirect_stderr(err):
            main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = argv
        os.umask(umask)  # main() makes what it creates private; put the test's umask back
    return code, out.getvalue(), err.getvalue()


def _fingerprint(home: Path, project: Path, cwd: Path) -> tuple:
    conn = sqlite3.connect(home / "workbench.db")
    try:
        rows = tuple(
            tuple(conn.execute(f"SELECT * FROM {table} ORDER BY 1"))
            for table in ("projects", "runs", "params", "events", "pipelines")
        )
    finally:
        conn.close()

    def files(root: Path) -> tuple:
        return tuple(
            sorted(
                (str(p.relative_to(root)), p.stat().st_size)
                for p in root.rglob("*")
                if p.is_file() and not p.name.startswith("workbench.db") and "lock" not in p.name
            )
        )

    return rows, files(home), files(project), files(cwd)


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_hostile_grammar_is_refused_in_one_line(
    case: str, prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    args, expected = CASES[case]
    monkeypatch.chdir(tmp_path)  # a relative path in the arguments lands here
    project = prepared.parent / "proj"
    before = _fingerprint(prepared, project, tmp_path)
    code, out, err = run_main(args)
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    notes = [line for line in lines if line.startswith("note: `workbench ")]
    assert len(notes) <= 1 and all("is deprecated" in n for n in notes), err
    [line] = [line for line in lines if line not in notes]
    assert line.startswith("error:") and expected in line, line
    assert all(len(text) < 400 for text in lines)  # a 5,000-digit argument is not echoed whole
    assert _fingerprint(prepared, project, tmp_path) == before
    assert not (prepared / "watcher" / "state.json").exists()  # no watcher was started


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 45
