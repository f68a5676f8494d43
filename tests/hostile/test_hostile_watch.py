"""Hostile input to the watcher and the pipeline it runs.

- bad `watch` options (`--quiet inf`, `nan`, negative, past the bounds): exit 2,
  one line naming the option, no watcher started, no state written;
- watch folders that cannot be watched (a file, a broken link, a symbolic link
  loop, a folder that cannot be made, an unreadable one): exit 2 naming the
  folder and why, in the foreground and with --detach, nothing left running;
- hostile files dropped in (binary, a FIFO, a link to /dev/zero, a link loop, a
  folder named like a CSV, not UTF-8, empty): `workbench pipeline` rejects each
  with the reason (exit 1), or refuses the argument (exit 2), and never hangs;
  under a real watcher they are ignored or rejected while a good file dropped
  beside them is still processed.

Every case: no "Traceback", the user's files unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest
from wbtest import wb, wb_inprocess  # wb: where a watcher is left running

TOML = """\
[project]
name = "{name}"
task = "classification"
[data]
train = "data/train.csv"
target = "y"
watch = ["{watch}"]
[train]
trainer = "sklearn:sklearn.linear_model.LogisticRegression"
[automation]
on_new_data = "validate"
"""

TRAIN = "x1,x2,y\n" + "".join(f"{i % 7},{(i * 3) % 5},{i % 2}\n" for i in range(40))
GOOD = "x1,x2,y\n" + "".join(f"{i % 7},{(i * 3) % 5},{i % 2}\n" for i in range(40, 60))


def project(root: Path, name: str = "hw", watch: str = "data/incoming") -> Path:
    folder = root / name
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "train.csv").write_text(TRAIN)
    (folder / "workbench.toml").write_text(TOML.format(name=name, watch=watch))
    return folder


def one_line_error(result, *pieces: str) -> str:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:"), lines[0]
    for piece in pieces:
        assert piece in lines[0], (piece, lines[0])
    return lines[0]


def no_watcher_left(home: Path) -> None:
    from workbench.automation.daemon import is_running

    assert not is_running()  # nobody holds the store's watcher lock
    assert not (home / "watcher" / "state.json").exists()


def digest(path: Path) -> str | None:
    if path.is_symlink():
        return "link:" + os.readlink(path)
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return "folder" if path.is_dir() else None


# -- options ------------------------------------------------------------------------

BIG = "9" * 400
# id -> (watch arguments, a piece of the one-line error)
OPTION_CASES: dict[str, tuple[list[str], str]] = {
    "quiet inf": (["--quiet", "inf"], "--quiet"),
    "quiet -inf": (["--quiet", "-inf"], "--quiet"),
    "quiet nan": (["--quiet", "nan"], "--quiet"),
    "quiet NaN detached": (["--detach", "--quiet", "NaN"], "--quiet"),
    "quiet 1e309 overflows to inf": (["--quiet", "1e309"], "--quiet"),
    "quiet 400 digits": (["--quiet", BIG], "--quiet"),
    "quiet zero": (["--quiet", "0"], "--quiet"),
    "quiet negative": (["--quiet", "-2"], "--quiet"),
    "quiet over an hour": (["--quiet", "3601"], "--quiet"),
    "quiet text": (["--quiet", "soon"], "--quiet"),
    "quiet empty": (["--quiet", ""], "--quiet"),
    "debounce inf": (["--debounce", "inf"], "--debounce"),
    "debounce nan detached": (["--detach", "--debounce", "nan"], "--debounce"),
    "debounce over ten minutes": (["--debounce", "601"], "--debounce"),
    "debounce negative": (["--debounce", "-0.5"], "--debounce"),
    "rescan inf": (["--rescan", "inf"], "--rescan"),
    "rescan nan": (["--rescan", "nan"], "--rescan"),
    "rescan half a second": (["--rescan", "0.5"], "--rescan"),
    "rescan over a day": (["--rescan", "86401"], "--rescan"),
    "rescan 1e400 detached": (["--detach", "--rescan", "1e400"], "--rescan"),
}


@pytest.mark.parametrize("case", list(OPTION_CASES), ids=list(OPTION_CASES))
def test_bad_watch_options_are_refused(case: str, wb_home: Path):
    args, piece = OPTION_CASES[case]
    result = wb_inprocess("watch", "start", *args, timeout=60)
    assert result.returncode == 2, (result.returncode, result.stderr)
    line = one_line_error(result, piece)
    assert len(line) < 300  # a 400-digit value is not echoed whole
    no_watcher_left(wb_home)


# -- watch folders ---------------------------------------------------------------------


def _folder_is_a_file(root: Path) -> tuple[str, str]:
    (root / "data" / "drop").write_text("not a folder\n")
    return "data/drop", "is a file, not a folder"


def _cannot_be_made(root: Path) -> tuple[str, str]:
    (root / "data" / "blocker").write_text("a file where a folder should be\n")
    return "data/blocker/drop", "cannot be made"


def _link_loop(root: Path) -> tuple[str, str]:
    (root / "data" / "drop").mkdir()  # a folder while the project is added...
    return "data/drop", "symbolic link loop"


def _unreadable(root: Path) -> tuple[str, str]:
    (root / "data" / "drop").mkdir(mode=0o000)
    return "data/drop", "permission denied"


FOLDER_CASES = {
    "watch folder is a file": _folder_is_a_file,
    "watch folder cannot be made": _cannot_be_made,
    "watch folder becomes a symlink loop": _link_loop,
    "watch folder is unreadable": _unreadable,
}


@pytest.mark.parametrize("case", list(FOLDER_CASES), ids=list(FOLDER_CASES))
@pytest.mark.parametrize("detach", [False, True], ids=["foreground", "detached"])
def test_a_watch_folder_that_cannot_be_watched_is_refused(
    case: str, detach: bool, tmp_path: Path, wb_home: Path
):
    if case == "watch folder is unreadable" and os.geteuid() == 0:
        pytest.skip("root reads every folder")
    root = tmp_path / "hw"
    project(tmp_path)
    watch, reason = FOLDER_CASES[case](root)
    (root / "workbench.toml").write_text(TOML.format(name="hw", watch=watch))
    wb_inprocess("project", "add", str(root), check=True)
    if case == "watch folder becomes a symlink loop":
        shutil.rmtree(root / "data" / "drop")
        (root / "data" / "drop").symlink_to(root / "data" / "other")
        (root / "data" / "other").symlink_to(root / "data" / "drop")
    before = {p: digest(p) for p in (root / "data").iterdir()}
    result = wb_inprocess("watch", "start", "hw", *(["--detach"] if detach else []), timeout=60)
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    one_line_error(result, reason)
    assert "drop" in result.stderr
    no_watcher_left(wb_home)
    assert {p: digest(p) for p in (root / "data").iterdir()} == before  # nothing made or changed


def test_a_missing_watch_folder_is_made_and_watched(tmp_path: Path, wb_home: Path):
    """Not an error: the documented behaviour (a broken link's target is made too)."""
    root = project(tmp_path, watch="data/later/drop")
    wb_inprocess("project", "add", str(root), check=True)
    result = wb("watch", "start", "hw", "--detach", "--json", timeout=60)
    try:
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stdout + result.stderr
        [folder] = json.loads(result.stdout)["folders"]
        assert folder["path"] == str(root / "data" / "later" / "drop")
        assert (root / "data" / "later" / "drop").is_dir()
    finally:
        wb("watch", "stop", timeout=60)


def test_a_symlink_loop_as_watch_folder_is_refused_when_the_project_is_added(tmp_path: Path):
    root = project(tmp_path, watch="data/loop")
    (root / "data" / "loop").symlink_to(root / "data" / "loop2")
    (root / "data" / "loop2").symlink_to(root / "data" / "loop")
    result = wb_inprocess("project", "add", str(root), timeout=60)
    assert result.returncode == 2
    one_line_error(result, "data.watch", "symbolic link loop")
    assert json.loads(wb_inprocess("project", "list", "--json", check=True).stdout) == []


# -- hostile files, through `workbench pipeline` -------------------------------------------


def _binary(folder: Path) -> Path:
    path = folder / "binary.csv"
    path.write_bytes(bytes(range(256)) * 64)
    return path


def _nul_bytes(folder: Path) -> Path:
    path = folder / "nul.csv"
    path.write_bytes(b"x1,x2,y\n1,\x00\x00,0\n" * 10)
    return path


def _latin1(folder: Path) -> Path:
    path = folder / "latin1.csv"
    path.write_bytes("x1,x2,y\n1,2,caf\xe9\n".encode("latin-1") * 5)
    return path


def _fifo(folder: Path) -> Path:
    path = folder / "fifo.csv"
    os.mkfifo(path)
    return path


def _dev_zero(folder: Path) -> Path:
    path = folder / "zero.csv"
    path.symlink_to("/dev/zero")
    return path


def _empty(folder: Path) -> Path:
    path = folder / "empty.csv"
    path.write_bytes(b"")
    return path


def _cut_short(folder: Path) -> Path:
    path = folder / "cut.csv"
    path.write_text(GOOD + "0.25,")
    return path


# id -> (make the file, exit code, a piece of the reason)
FILE_CASES = {
    "binary bytes": (_binary, 1, "binary.csv"),
    "NUL bytes": (_nul_bytes, 1, "NUL"),
    "not UTF-8": (_latin1, 1, "UTF-8"),
    "a FIFO (must not hang)": (_fifo, 1, "not a regular file"),
    "a link to /dev/zero (must not hang)": (_dev_zero, 1, "not a regular file"),
    "empty": (_empty, 1, "empty"),
    "last row cut short": (_cut_short, 1, "wrong number of fields"),
}


@pytest.fixture(scope="module")
def shared_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(WORKBENCH_HOME, project folder) shared by the file cases."""
    base = tmp_path_factory.mktemp("hostile-watch")
    return base / "home", project(base)


@pytest.mark.parametrize("case", list(FILE_CASES), ids=list(FILE_CASES))
def test_a_hostile_file_is_rejected_with_the_reason(case, shared_project, monkeypatch):
    home, root = shared_project
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    if not (home / "workbench.db").exists():
        wb_inprocess("project", "add", str(root), check=True)
    make, code, piece = FILE_CASES[case]
    folder = root / "data" / "incoming" / case.replace(" ", "-").replace("/", "")
    folder.mkdir(parents=True)
    path = make(folder)
    before = digest(path)
    result = wb_inprocess("pipeline", "run", "hw", str(path), "--json", timeout=60)
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["outcome"] == "rejected"
    reasons = " ".join(s["summary"] or "" for s in report["steps"])
    assert piece in reasons, report["steps"]
    assert digest(path) == before  # left as it was


# id -> (make the argument, a piece of the one-line error)
ARGUMENT_CASES = {
    "a folder named like a CSV": (lambda f: (f / "dir.csv").mkdir() or f / "dir.csv", "folder"),
    "a symbolic link loop": (
        lambda f: (f / "a.csv").symlink_to(f / "b.csv")
        or (f / "b.csv").symlink_to(f / "a.csv")
        or f / "a.csv",
        "symbolic links",
    ),
    "a missing file": (lambda f: f / "missing.csv", "no such file"),
}


@pytest.mark.parametrize("case", list(ARGUMENT_CASES), ids=list(ARGUMENT_CASES))
def test_a_file_argument_that_is_no_data_file_is_refused(case, tmp_path, wb_home):
    root = project(tmp_path)
    wb_inprocess("project", "add", str(root), check=True)
    make, piece = ARGUMENT_CASES[case]
    path = make(tmp_path)
    result = wb_inprocess("pipeline", "run", "hw", str(path), timeout=60)
    assert result.returncode == 2, (result.returncode, result.stderr)
    one_line_error(result, piece)
    db = sqlite3.connect(wb_home / "workbench.db")
    try:
        assert db.execute("SELECT COUNT(*) FROM pipelines").fetchone() == (0,)
    finally:
        db.close()


# -- under a real watcher ------------------------------------------------------------------


def test_hostile_files_under_a_real_watcher_never_stall_it(tmp_path, wb_home):
    root = project(tmp_path)
    incoming = root / "data" / "incoming"
    incoming.mkdir()
    wb_inprocess("project", "add", str(root), check=True)
    start = wb(
        "watch", "start", "hw", "--detach", "--quiet", "0.5", "--debounce", "0.2", timeout=60
    )
    assert start.returncode == 0, start.stderr
    try:
        os.mkfifo(incoming / "fifo.csv")
        (incoming / "zero.csv").symlink_to("/dev/zero")
        (incoming / "loop.csv").symlink_to(incoming / "loop.csv")
        _binary(incoming)
        (tmp_path / "good.csv").write_text(GOOD)
        os.replace(tmp_path / "good.csv", incoming / "good.csv")
        log = wb_home / "watcher" / "watcher.log"

        def verdicts() -> dict[str, str] | None:
            """Each file's last per-file step status, once both data files are judged."""
            db = sqlite3.connect(f"file:{wb_home / 'workbench.db'}?mode=ro", uri=True)
            try:
                rows = db.execute(
                    "SELECT file, status FROM pipeline_steps WHERE file != ''"
                    " AND status != 'running' ORDER BY id"
                ).fetchall()
            finally:
                db.close()
            seen = {Path(f).name: status for f, status in rows}
            judged = seen.get("good.csv") in ("ok", "alert") and "binary.csv" in seen
            return seen if judged else None

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not verdicts():
            time.sleep(0.2)
        seen = verdicts()
        assert seen, log.read_text()
        assert seen["binary.csv"] in ("rejected", "failed"), seen
        assert not {"fifo.csv", "zero.csv", "loop.csv"} & set(seen), seen
        text = log.read_text()
        assert "fifo.csv is a FIFO; ignored" in text
        assert "Traceback" not in text
        status = json.loads(wb("watch", "status", "--json", check=True).stdout)
        assert status["running"] is True  # still answering
        assert stat_is_fifo(incoming / "fifo.csv")  # left as it was
    finally:
        wb("watch", "stop", timeout=60)


def stat_is_fifo(path: Path) -> bool:
    import stat

    return stat.S_ISFIFO(os.lstat(path).st_mode)
