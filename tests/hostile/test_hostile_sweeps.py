"""Hostile input to sweeps: ids that name nothing or the wrong thing, options out
of range, and a sweep's Optuna journal replaced by something hostile (garbage,
records of the wrong shape, bytes that are not UTF-8, an empty file, a FIFO, a
link to /dev/zero, a folder, nothing at all).

Documented exit codes: 2 for a bad argument or a sweep that cannot be resumed
as asked (the reason names it); 1 for a journal that cannot be read (the
reason names the file). Every case: one line on stderr, no "Traceback", the
project's files unchanged, the store's runs as they were (a refused resume takes
nothing over), never a hang (a FIFO is never opened).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from wbtest import wb_inprocess

TOML = """\
[project]
name = "{name}"
task = "classification"
[data]
train = "data/train.csv"
target = "y"
[train]
trainer = "sklearn:sklearn.linear_model.LogisticRegression"
"""
SPACE = '[sweep.space]\nC = { type = "log-uniform", low = 0.01, high = 10.0 }\n'
TRAIN = "x1,x2,y\n" + "".join(f"{i % 7},{(i * 3) % 5},{i % 2}\n" for i in range(40))


def make_project(root: Path, name: str, space: bool = True) -> Path:
    folder = root / name
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "train.csv").write_text(TRAIN)
    (folder / "workbench.toml").write_text(TOML.format(name=name) + (SPACE if space else ""))
    wb_inprocess("project", "add", str(folder), check=True)
    return folder


def new_sweep(project: str, ends: str | None = "stopped") -> int:
    """A sweep run with its journal and no trial run; ended as `ends` (None:
    left running, owned by this live process)."""
    from workbench.store import open_store
    from workbench.store import sweeps as rows
    from workbench.sweeps.engine import start_sweep

    store = open_store()
    try:
        sweep = start_sweep(store, project, trials=1)
        sweep._log.close()
        if ends is not None:
            rows.end(store, sweep.run_id, ends, "ended for the test", time.time())
        return sweep.run_id
    finally:
        store.close()


def plain_run(project: str) -> int:
    """A run that is not a sweep (failed, so nothing dispatches it)."""
    from workbench.projects import get_project
    from workbench.store import open_store
    from workbench.store.runs import insert_queued, transition

    store = open_store()
    try:
        project_id = get_project(store, project)["id"]
        run_id = insert_queued(store, project_id, "sklearn", {}, project_name=project)
        transition(store, run_id, "failed", message="made for the test", exit_code=1)
        return run_id
    finally:
        store.close()


def journal(sweep_id: int) -> Path:
    return Path(os.environ["WORKBENCH_HOME"]) / "sweeps" / str(sweep_id) / "journal.log"


def replace_journal(sweep_id: int, make: Callable[[Path], None]) -> None:
    path = journal(sweep_id)
    path.unlink()
    make(path)


def _write(data: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(data)


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _dev_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _folder(path: Path) -> None:
    path.mkdir()


def _missing(path: Path) -> None:
    pass


# name -> (what replaces the journal, exit code, a piece of the reason)
JOURNAL_CASES: dict[str, tuple[Callable[[Path], None], int, str]] = {
    "garbage": (_write(b"\x00\x01garbage\n{not json}\n{}\n"), 1, "cannot be read"),
    "wrong-records": (_write(b'{"op_code": 42}\n{"op_code": 0}\n'), 1, "cannot be read"),
    "not-utf8": (_write(b"\xff\xfe\xfa\n\xff\xff\n{}\n"), 1, "cannot be read"),
    "empty": (_write(b""), 1, "cannot be read"),
    "huge-line": (_write(b"[" * 100_000 + b"\n{}\n"), 1, "cannot be read"),
    "fifo": (_fifo, 1, "not a regular file"),
    "link-to-dev-zero": (_dev_zero, 1, "not a regular file"),
    "folder": (_folder, 1, "not a regular file"),
    "missing": (_missing, 2, "has no study"),
}


def state(folder: Path) -> tuple:
    """The project's files (by content) and the store's runs (by status)."""
    from workbench.store import open_store

    files = sorted(
        (str(p.relative_to(folder)), hashlib.sha256(p.read_bytes()).hexdigest())
        for p in folder.rglob("*")
        if p.is_file()
    )
    store = open_store()
    try:
        runs = store.rows("SELECT id, status, supervisor_pid FROM runs ORDER BY id")
    finally:
        store.close()
    return files, [tuple(r.values()) for r in runs]


def refused(args: tuple[str, ...], code: int, reason: str) -> str:
    result = wb_inprocess(*args, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == code, output
    assert "Traceback" not in output, output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert reason in lines[0], lines[0]
    return lines[0]


# `resume` of a sweep with no journal is not hostile: a sweep killed before its
# journal was made is resumed, by design.
JOURNAL_COMMANDS = [
    (case, command)
    for case in JOURNAL_CASES
    for command in ("show", "resume")
    if (case, command) != ("missing", "resume")
]


@pytest.mark.parametrize(
    ("case", "command"), JOURNAL_COMMANDS, ids=[f"{c}-{m}" for c, m in JOURNAL_COMMANDS]
)
def test_a_hostile_journal_is_refused_with_the_reason(case, command, tmp_path):
    folder = make_project(tmp_path, "hs")
    sweep_id = new_sweep("hs")
    make, code, reason = JOURNAL_CASES[case]
    replace_journal(sweep_id, make)
    before = state(folder)
    args = ("sweep", "show", str(sweep_id)) if command == "show" else ("sweep", "resume", "hs")
    line = refused(args, code, reason)
    if code == 1:
        assert str(journal(sweep_id)) in line
    assert state(folder) == before  # the sweep was not taken over


def _not_a_sweep(tmp_path: Path) -> tuple[str, ...]:
    make_project(tmp_path, "hs")
    return ("sweep", "show", str(plain_run("hs")))


def _no_such_sweep(tmp_path: Path) -> tuple[str, ...]:
    make_project(tmp_path, "hs")
    return ("sweep", "show", "999")


def _id_not_a_number(tmp_path: Path) -> tuple[str, ...]:
    make_project(tmp_path, "hs")
    return ("sweep", "show", "1; DROP TABLE runs")


def _resume_running(tmp_path: Path) -> tuple[str, ...]:
    make_project(tmp_path, "hs")
    return ("sweep", "resume", "hs", str(new_sweep("hs", ends=None)))


def _resume_finished(tmp_path: Path) -> tuple[str, ...]:
    make_project(tmp_path, "hs")
    return ("sweep", "resume", "hs", str(new_sweep("hs", ends="succeeded")))


def _resume_unknown(tmp_path: Path) -> tuple[str, ...]:
    make_project(tmp_path, "hs")
    new_sweep("hs")
    return ("sweep", "resume", "hs", "999")


def _resume_a_plain_run(tmp_path: Path) -> tuple[str, ...]:
    make_project(tmp_path, "hs")
    return ("sweep", "resume", "hs", str(plain_run("hs")))


def _resume_another_projects_sweep(tmp_path: Path) -> tuple[str, ...]:
    make_project(tmp_path, "hs")
    make_project(tmp_path, "other")
    return ("sweep", "resume", "hs", str(new_sweep("other")))


def _resume_with_nothing_unfinished(tmp_path: Path) -> tuple[str, ...]:
    make_project(tmp_path, "hs")
    return ("sweep", "resume", "hs")


def _resume_unknown_project(tmp_path: Path) -> tuple[str, ...]:
    make_project(tmp_path, "hs")
    return ("sweep", "resume", "nope")


def _start_without_a_space(tmp_path: Path) -> tuple[str, ...]:
    make_project(tmp_path, "hs", space=False)
    return ("sweep", "start", "hs")


def _start_zero_trials(tmp_path: Path) -> tuple[str, ...]:
    make_project(tmp_path, "hs")
    return ("sweep", "start", "hs", "--trials", "0")


def _start_negative_parallel(tmp_path: Path) -> tuple[str, ...]:
    make_project(tmp_path, "hs")
    return ("sweep", "start", "hs", "--parallel", "-3")


def _start_endless_timeout(tmp_path: Path) -> tuple[str, ...]:
    make_project(tmp_path, "hs")
    return ("sweep", "start", "hs", "--timeout", "nan")


def _list_unknown_project(tmp_path: Path) -> tuple[str, ...]:
    make_project(tmp_path, "hs")
    return ("sweep", "list", "nope")


# name -> (setup returning the command, a piece of the reason); all exit 2
ARGUMENT_CASES: dict[str, tuple[Callable[[Path], tuple[str, ...]], str]] = {
    "show-not-a-sweep": (_not_a_sweep, "not a sweep"),
    "show-no-such-sweep": (_no_such_sweep, "999"),
    "show-id-not-a-number": (_id_not_a_number, "DROP TABLE"),
    "resume-running": (_resume_running, "is running"),
    "resume-finished": (_resume_finished, "has finished"),
    "resume-unknown-id": (_resume_unknown, "no sweep 999"),
    "resume-a-plain-run": (_resume_a_plain_run, "has no sweep"),
    "resume-another-projects-sweep": (_resume_another_projects_sweep, "has no sweep"),
    "resume-nothing-unfinished": (_resume_with_nothing_unfinished, "no unfinished sweep"),
    "resume-unknown-project": (_resume_unknown_project, "nope"),
    "start-without-a-space": (_start_without_a_space, "[sweep.space]"),
    "start-zero-trials": (_start_zero_trials, "--trials"),
    "start-negative-parallel": (_start_negative_parallel, "--parallel"),
    "start-nan-timeout": (_start_endless_timeout, "--timeout"),
    "list-unknown-project": (_list_unknown_project, "nope"),
}


@pytest.mark.parametrize("case", list(ARGUMENT_CASES), ids=list(ARGUMENT_CASES))
def test_a_bad_sweep_argument_is_refused(case, tmp_path):
    setup, reason = ARGUMENT_CASES[case]
    args = setup(tmp_path)
    before = state(tmp_path / "hs"), studies()
    refused(args, 2, reason)
    assert (state(tmp_path / "hs"), studies()) == before  # no run, no study made


def studies() -> list[str]:
    folder = Path(os.environ["WORKBENCH_HOME"]) / "sweeps"
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []
