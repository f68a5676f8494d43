"""A store whose write lock another process holds for 30 s (three times SQLite's
busy timeout) delays runs but never fails them nor loses a point.

The lock is held by a real process in `BEGIN IMMEDIATE`; the runs are told to
log only once it is held, so they write into the lock whatever the machine's
speed. The test takes at least 30 s by design.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_runs_e2e import script_project

pytestmark = pytest.mark.slow

LOCK_S = 30

TRAIN_PY = """\
import os, time
from pathlib import Path
import workbench as wb

wb.log_metric("x", 0, step=0)
wb.flush()
Path("ready").write_text("ready")
while not Path("go").exists():
    time.sleep(0.05)
for i in range(1, 61):
    wb.log_metric("x", i, step=i)
    if i % 10 == 0:
        wb.flush()  # waits for the lock, then returns
    time.sleep(0.01)
print("trainer done", flush=True)
"""

INLINE = """\
import sys, time
from pathlib import Path
import workbench as wb

folder, go = sys.argv[1], Path(sys.argv[2])
with wb.start_run(project=folder) as run:
    print(run.id, flush=True)
    while not go.exists():
        time.sleep(0.05)
    for i in range(100):
        wb.log_metric("y", i, step=i)
        time.sleep(0.005)
print("inline done", flush=True)
"""

HOLD = """\
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
print("released", flush=True)
"""


def _wait_for(predicate, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, message
        time.sleep(0.05)


def _stored(home: Path, run_id: str, key: str) -> list[tuple[int, float]]:
    import sqlite3

    conn = sqlite3.connect(home / "workbench.db", timeout=60)
    try:
        return conn.execute(
            "SELECT m.step, m.value FROM metrics m JOIN metric_series s ON s.id = m.series_id"
            " WHERE s.run_id = ? AND s.key = ? ORDER BY m.idx",
            (run_id, key),
        ).fetchall()
    finally:
        conn.close()


def test_a_lock_held_for_30_s_delays_runs_but_never_fails_them(cli, tmp_path, wb_home):
    wb_home.mkdir(parents=True, exist_ok=True)
    (wb_home / "config.toml").write_text("[runs]\nsample_interval = 0.2\n")
    project = script_project(tmp_path / "busy", TRAIN_PY, name="busy")
    cli("project", "add", str(project), check=True)
    run_id = cli("run", "start", "busy", check=True).stdout.split()[0]
    _wait_for((project / "ready").exists, 120, "the script run never got going")

    go = project / "go"
    inline = subprocess.Popen(
        [sys.executable, "-c", INLINE, str(project), str(go)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    holder = None
    try:
        inline_id = inline.stdout.readline().strip()
        assert inline_id.isdigit(), inline.stderr.read()
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(wb_home / "workbench.db"), str(LOCK_S)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdout.readline().strip() == "locked"
        go.write_text("go")  # both runs now log, flush and end into the held lock

        assert holder.stdout.readline().strip() == "released"
        holder.wait(timeout=30)
        out, err = inline.communicate(timeout=120)
        assert inline.returncode == 0, err
        assert "inline done" in out
        _wait_for(
            lambda: (
                json.loads(cli("run", "show", run_id, "--json", check=True).stdout)["status"]
                not in ("running", "queued")
            ),
            120,
            "the script run never ended",
        )
    finally:
        for proc in (inline, holder):
            if proc is not None and proc.poll() is None:
                proc.kill()

    script_run = json.loads(cli("run", "show", run_id, "--json", check=True).stdout)
    assert script_run["status"] == "succeeded", script_run["message"]
    assert _stored(wb_home, run_id, "x") == [(i, float(i)) for i in range(61)]
    inline_run = json.loads(cli("run", "show", inline_id, "--json", check=True).stdout)
    assert inline_run["status"] == "succeeded", inline_run["message"]
    assert _stored(wb_home, inline_id, "y") == [(i, float(i)) for i in range(100)]
    log = cli("run", "logs", run_id, check=True).stdout
    assert "trainer done" in log


def test_a_command_gives_up_on_a_held_lock_with_a_clear_error(tmp_path, wb_home):
    from workbench.core.errors import StoreError
    from workbench.store import open_store

    store = open_store()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(wb_home / "workbench.db"), "30"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreError, match="busy"), store.write(patience=0.5) as conn:
            conn.execute("INSERT INTO projects (name, path, created_at) VALUES ('x', 'x', 0)")
        assert not store.conn.in_transaction
    finally:
        holder.kill()
        holder.wait()
        store.close()
    assert os.path.exists(wb_home / "workbench.db")
