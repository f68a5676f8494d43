"""core.spawn: a detached child has its own session, no terminal input, its output
in the log, none of the parent's descriptors, and the parent's store."""

from __future__ import annotations

import json
import os
import sys
import textwrap

from wbtest import wait_until

from workbench.core import env
from workbench.core.spawn import child_env, spawn_detached

REPORT = textwrap.dedent(
    """
    import json, os, sys
    print(json.dumps({
        "sid": os.getsid(0), "pid": os.getpid(), "stdin": sys.stdin.read(),
        "fds": sorted(int(f) for f in os.listdir("/proc/self/fd")),
        "home": os.environ.get("WORKBENCH_HOME"), "extra": os.environ.get("EXTRA"),
        "cwd": os.getcwd(),
    }), flush=True)
    print("to stderr", file=sys.stderr, flush=True)
    """
)


def test_a_detached_child_has_its_own_session_and_only_stdio(tmp_path, wb_home):
    log = tmp_path / "logs" / "child.log"
    log.parent.mkdir()
    log.write_text("earlier line\n")
    keep = open(tmp_path / "inherited", "w")  # must not reach the child
    try:
        os.set_inheritable(keep.fileno(), True)
        child = spawn_detached(
            [sys.executable, "-c", REPORT], log=log, environ=child_env(EXTRA="yes"), cwd=tmp_path
        )
        assert wait_until(lambda: child.poll() is not None, what="the child to exit") is not None
    finally:
        keep.close()
    assert child.returncode == 0
    lines = log.read_text().splitlines()
    assert lines[0] == "earlier line"  # appended, not truncated
    report = json.loads(lines[1])
    assert lines[2] == "to stderr"
    assert report["sid"] == report["pid"] != os.getsid(0)
    assert report["stdin"] == ""
    assert [fd for fd in report["fds"] if fd > 2] in ([], [3])  # 3: listdir's own handle
    assert report["home"] == str(wb_home) and report["extra"] == "yes"
    assert report["cwd"] == str(tmp_path)


def test_without_a_log_output_is_discarded_and_the_log_folder_is_made(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    quiet = spawn_detached([sys.executable, "-c", "print('nowhere')"])
    wait_until(lambda: quiet.poll() is not None, what="the child to exit")
    assert quiet.returncode == 0 and list(work.iterdir()) == []
    log = tmp_path / "made" / "deep" / "out.log"
    child = spawn_detached([sys.executable, "-c", "print('here')"], log=log)
    wait_until(lambda: child.poll() is not None, what="the child to exit")
    assert log.read_text() == "here\n"


def test_child_env_pins_the_store_in_use(monkeypatch, wb_home):
    monkeypatch.setenv("OTHER", "kept")
    environ = child_env(EXTRA="1")
    assert environ[env.HOME] == str(wb_home)
    assert environ["OTHER"] == "kept" and environ["EXTRA"] == "1"
