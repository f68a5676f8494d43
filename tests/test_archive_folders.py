"""`archive import` of a project whose folder does not exist on this machine:
asked for on a terminal (the default offered: ./NAME), refused without one,
naming --project-dir, with nothing written."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from wbtest import NETGUARD, REPO
from wbtest import wb_inprocess as wbi


@pytest.fixture(scope="module")
def moved_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An archive of one project with one finished run, whose folder is gone."""
    from workbench.store import open_store
    from workbench.store import runs as store_runs

    root = tmp_path_factory.mktemp("archive-folders")
    folder = root / "penguins"
    shutil.copytree(REPO / "sample_projects" / "penguins-lightgbm", folder)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", str(root / "home"))
        assert wbi("project", "add", str(folder)).returncode == 0
        store = open_store()
        try:
            now = time.time()
            store_runs.create(
                store,
                store.scalar("SELECT id FROM projects"),
                "lightgbm",
                event_message="run {id} made for the test",
                status="succeeded",
                started_at=now,
                ended_at=now + 1,
                exit_code=0,
            )
        finally:
            store.close()
        out = root / "moved.wbx"
        made = wbi("archive", "export", "penguins", "-o", str(out))
        assert made.returncode == 0, made.stderr
    shutil.rmtree(folder)  # as on another machine: the folder is not here
    return out


def _projects(home: Path) -> list[tuple[str, str]]:
    if not (home / "workbench.db").exists():
        return []
    conn = sqlite3.connect(f"file:{home / 'workbench.db'}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT name, path FROM projects").fetchall()
    finally:
        conn.close()


def test_without_a_terminal_the_import_names_project_dir_and_writes_nothing(
    moved_archive, wb_home
):
    assert wbi("project", "list").returncode == 0
    with sqlite3.connect(wb_home / "workbench.db") as conn:
        before = list(conn.iterdump())
    conn.close()
    result = wbi("archive", "import", str(moved_archive))
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "does not exist here" in line and "--project-dir" in line and "penguins" in line
    with sqlite3.connect(wb_home / "workbench.db") as conn:
        assert list(conn.iterdump()) == before
    conn.close()
    assert not list(wb_home.glob(".archive-import-*"))  # the staged files are gone too

    dry = wbi("archive", "import", str(moved_archive), "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert [m["project"] for m in json.loads(dry.stdout)["missing_folders"]] == ["penguins"]
    human = wbi("archive", "import", str(moved_archive), "--dry-run")
    assert "the import asks for it (or give --project-dir)" in human.stdout


def _on_a_terminal(args: list[str], cwd: Path, answer: str, home: Path) -> tuple[int, str]:
    """Run the CLI with stdin and stdout on a pseudo-terminal; type `answer`
    once the question is on screen."""
    import pty
    import select

    master, slave = pty.openpty()
    env = {
        **os.environ,
        "WORKBENCH_HOME": str(home),
        "NO_COLOR": "1",
        "PYTHONPATH": os.pathsep.join([str(NETGUARD), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=cwd,
        env=env,
    )
    os.close(slave)
    seen = b""
    answered = False
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # the other end closed
                break
            if not data:
                break
            seen += data
            if not answered and b"on this machine" in seen and seen.rstrip().endswith(b":"):
                os.write(master, answer.encode() + b"\n")
                answered = True
        proc.wait(timeout=120)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, seen.decode(errors="replace").replace("\r\n", "\n")


def test_on_a_terminal_the_folder_is_asked_for_with_a_default(moved_archive, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    home = tmp_path / "home"
    code, screen = _on_a_terminal(["archive", "import", str(moved_archive)], work, "", home)
    assert code == 0, screen
    assert f"[{work / 'penguins'}]" in screen  # the default offered: ./penguins
    assert _projects(home) == [("penguins", str((work / "penguins").resolve()))]

    other = tmp_path / "home2"
    code, screen = _on_a_terminal(
        ["archive", "import", str(moved_archive)], work, str(tmp_path / "elsewhere"), other
    )
    assert code == 0, screen
    assert _projects(other) == [("penguins", str((tmp_path / "elsewhere").resolve()))]
