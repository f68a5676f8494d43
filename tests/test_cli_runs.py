"""`run metrics` and `run compare`; `run list` at any width, into pipes and with
limits; `run logs` streamed, tailed and followed across a rotation."""

from __future__ import annotations

import json

import pytest
from wbtest import wb_inprocess

import workbench as wb
from workbench.runs.compare import lower_is_better
from workbench.templates import init_project


@pytest.fixture
def cli():
    """These commands read the store and start no process: run them in this one."""
    return wb_inprocess


def _two_runs(tmp_path) -> list[int]:
    folder = init_project(tmp_path / "p", "script")
    ids = []
    for lr, scale in ((0.1, 1.0), (0.01, 0.5)):
        with wb.start_run(project=folder, params={"lr": lr, "layers": 2}) as run:
            for step in range(5000):
                wb.log_metric("loss", scale / (step + 1), step=step)
            wb.log_metrics({"accuracy": 1 - scale / 10, "rmse": scale})
            ids.append(run.id)
    return ids


def test_metrics_lists_keys_and_downsamples_a_series(cli, tmp_path):
    first, _ = _two_runs(tmp_path)
    keys = json.loads(cli("run", "metrics", str(first), "--json", check=True).stdout)
    loss = next(k for k in keys if k["key"] == "loss")
    assert loss["count"] == 5000 and loss["step"] == 4999
    assert loss["min"] == 1.0 / 5000 and loss["max"] == 1.0
    data = json.loads(
        cli("run", "metrics", str(first), "loss", "--points", "50", "--json", check=True).stdout
    )
    assert data["count"] == 5000
    assert len(data["points"]) == 50
    assert sum(p["count"] for p in data["points"]) == 5000
    assert data["points"][0]["max"] == 1.0
    assert data["points"][-1]["x"] == 4999
    human = cli("run", "metrics", str(first), "loss", "--points", "20", check=True).stdout
    assert human.splitlines()[0][0] == "█"  # the series starts at its maximum
    missing = cli("run", "metrics", str(first), "nope")
    assert missing.returncode == 2 and "keys: accuracy, loss, rmse" in missing.stderr


def test_compare_marks_differing_params_and_best_runs(cli, tmp_path):
    first, second = _two_runs(tmp_path)
    result = json.loads(cli("run", "compare", str(first), str(second), "--json", check=True).stdout)
    assert result["differing_params"] == ["lr"]
    assert result["params"]["layers"] == [2, 2]
    assert result["best"]["accuracy"] == second  # higher is better
    assert result["best"]["rmse"] == second  # lower is better
    assert result["best"]["loss"] == second
    table = cli("run", "compare", str(first), str(second), check=True).stdout
    assert "* lr" in table and "  layers" in table
    lonely = cli("run", "compare", str(first))
    assert lonely.returncode == 2 and "at least two runs" in lonely.stderr


def test_metric_direction():
    assert lower_is_better("val_loss") and lower_is_better("rmse") and lower_is_better("log_loss")
    assert not lower_is_better("accuracy") and not lower_is_better("roc_auc")
    assert not lower_is_better("glossiness")


# --- run list: any width, pipes, limits ----------------------------------------------------

LONG_PROJECT = "a-project-with-a-rather-long-name-indeed"


def _many_runs(count: int) -> None:
    """`count` finished runs with three metrics each, written straight to the store."""
    import time as _time

    from workbench.store import open_store
    from workbench.store.metrics import append_points

    store = open_store()
    try:
        with store.write() as conn:
            project = conn.execute(
                "INSERT INTO projects (name, path, created_at) VALUES (?, '/nowhere', 0)",
                (LONG_PROJECT,),
            ).lastrowid
            for i in range(count):
                run = conn.execute(
                    "INSERT INTO runs (project_id, status, trainer, created_at, started_at,"
                    " ended_at) VALUES (?, 'succeeded', 'lightgbm', ?, ?, ?)",
                    (project, i, 1_700_000_000 + i, 1_700_000_090 + i),
                ).lastrowid
                now = _time.time()
                append_points(
                    conn,
                    run,
                    {
                        "roc_auc": [(None, now, 0.91234)],
                        "accuracy": [(None, now, 0.87654)],
                        "log_loss": [(None, now, 0.3333)],
                    },
                )
    finally:
        store.close()


def _in_a_terminal(args: list[str], columns: int) -> str:
    """Run the CLI with stdout on a real pseudo-terminal `columns` wide."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench", *args],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the other end closed
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(master)
    assert proc.returncode == 0, proc.stderr.read()
    import re

    text = b"".join(chunks).decode().replace("\r\n", "\n")
    return re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", text)  # styles (NO_COLOR keeps bold)


def test_run_list_keeps_every_id_whole_in_an_80_column_terminal(cli):
    _many_runs(120)
    for columns in (80, 40, 20):
        out = _in_a_terminal(["run", "list"], columns)
        lines = [line for line in out.splitlines() if line.strip()]
        assert lines[0].split()[0] == "ID"
        ids = [line.split()[0] for line in lines[1:]]
        assert ids == [str(i) for i in range(120, 70, -1)], columns  # newest 50, whole
        assert all(len(line) <= columns for line in lines), columns
    wide = _in_a_terminal(["run", "list"], 80)
    assert "STATUS" in wide and "succeeded" in wide
    narrow = _in_a_terminal(["run", "list"], 20)
    assert "METRICS" not in narrow and "ID" in narrow  # columns dropped, ID kept


def test_run_list_into_a_pipe_is_tab_separated_with_a_header(cli):
    _many_runs(60)
    result = cli("run", "list", check=True)
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert rows[0] == ["ID", "PROJECT", "STATUS", "STARTED", "DURATION", "METRICS"]
    assert len(rows) == 51 and all(len(row) == 6 for row in rows)
    assert rows[1][:3] == ["60", LONG_PROJECT, "succeeded"]
    assert rows[1][3] == "2023-11-14 22:14:19"  # whole, never cut in a pipe
    assert "roc_auc=0.9123" in rows[1][5]
    assert "showing 50 of 60 runs" in result.stderr and "--all" in result.stderr


def test_run_list_limits_all_and_json(cli):
    _many_runs(55)
    assert len(json.loads(cli("run", "list", "--json", check=True).stdout)) == 50
    limited = cli("run", "list", "--json", "--limit", "3", check=True)
    assert [r["id"] for r in json.loads(limited.stdout)] == [55, 54, 53]
    assert "showing 3 of 55" in limited.stderr
    everything = cli("run", "list", "--all", "--json", check=True)
    assert len(json.loads(everything.stdout)) == 55 and "showing" not in everything.stderr
    mine = cli("run", "list", LONG_PROJECT, "--limit", "60", check=True)
    assert len(mine.stdout.splitlines()) == 56 and "showing" not in mine.stderr
    for bad in ("0", "-1", "99999999999999999999", "x"):
        refused = cli("run", "list", "--limit", bad)
        assert refused.returncode == 2 and "--limit" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
    both = cli("run", "list", "--all", "--limit", "5")
    assert both.returncode == 2 and "--all" in both.stderr


# --- run logs: streamed, tailed from the end, rotated ------------------------------------------


def _run_with_log(status: str = "succeeded") -> int:
    from workbench.store import open_store

    store = open_store()
    try:
        with store.write() as conn:
            project = conn.execute(
                "INSERT INTO projects (name, path, created_at) VALUES ('logs', '/nowhere', 0)"
            ).lastrowid
            return conn.execute(
                "INSERT INTO runs (project_id, status, trainer, created_at) VALUES (?, ?, 'x', 0)",
                (project, status),
            ).lastrowid
    finally:
        store.close()


def _peak_rss_kib(args: list[str]) -> tuple[int, bytes]:
    """Run the CLI in a fresh wrapper process; its child's peak RSS and stdout."""
    import subprocess
    import sys

    wrapper = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run([sys.executable, '-m', 'workbench', *sys.argv[1:]],"
        " stdout=subprocess.PIPE)\n"
        "sys.stderr.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
        "sys.stdout.buffer.write(done.stdout[-4096:])\n"
        "sys.exit(done.returncode)\n"
    )
    result = subprocess.run([sys.executable, "-c", wrapper, *args], capture_output=True)
    assert result.returncode == 0
    return int(result.stderr.decode().strip().splitlines()[-1]), result.stdout


def test_run_logs_tail_and_stream_a_large_log_in_bounded_memory(cli):
    from workbench.core import paths

    run = _run_with_log()
    log = paths.run_log(run)
    log.parent.mkdir(parents=True)
    line = b"x" * 199 + b"\n"
    with open(log, "wb") as fh:
        for i in range(500):
            fh.write(b"".join(b"%07d " % (i * 1000 + j) + line for j in range(1000)))
    assert log.stat().st_size == 104_000_000
    baseline, _ = _peak_rss_kib(["run", "list"])
    tail_rss, tail = _peak_rss_kib(["run", "logs", str(run), "--tail", "3"])
    assert tail.splitlines() == [b"%07d " % n + line[:-1] for n in (499_997, 499_998, 499_999)]
    whole_rss, end = _peak_rss_kib(["run", "logs", str(run)])
    assert end.endswith(b"0499999 " + line)
    # Neither holds the 100 MB file: both stay within a few MiB of a bare command.
    assert tail_rss < baseline + 20 * 1024, (tail_rss, baseline)
    assert whole_rss < baseline + 20 * 1024, (whole_rss, baseline)


def test_run_logs_read_the_rotated_part_first_and_tail_across_both(cli):
    from workbench.core import paths

    run = _run_with_log()
    log = paths.run_log(run)
    log.parent.mkdir(parents=True)
    paths.rotated_run_log(run).write_bytes(b"one\ntwo\nthree\n")
    log.write_bytes(b"four\nfive\n")
    assert cli("run", "logs", str(run), check=True).stdout == "one\ntwo\nthree\nfour\nfive\n"
    assert cli("run", "logs", str(run), "--tail", "3", check=True).stdout == "three\nfour\nfive\n"
    assert cli("run", "logs", str(run), "-n", "1", check=True).stdout == "five\n"
    assert cli("run", "logs", str(run), "--tail", "0", check=True).stdout == ""
    assert cli("run", "logs", str(run), "--tail", "99", check=True).stdout.count("\n") == 5
    log.write_bytes(b"no final newline")
    assert cli("run", "logs", str(run), "--tail", "1", check=True).stdout == "no final newline"


def test_run_logs_follow_goes_on_across_a_rotation(cli):
    import os
    import subprocess
    import sys
    import time

    from workbench.core import paths
    from workbench.store import open_store

    run = _run_with_log(status="running")
    store = open_store()
    try:
        with store.write() as conn:  # owned by this (live) test process
            import psutil

            me = psutil.Process()
            conn.execute(
                "UPDATE runs SET supervisor_pid = ?, supervisor_started_at = ? WHERE id = ?",
                (me.pid, me.create_time(), run),
            )
    finally:
        store.close()
    log = paths.run_log(run)
    log.parent.mkdir(parents=True)
    log.write_bytes(b"before\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench", "run", "logs", str(run), "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout.readline() == b"before\n"
        with open(log, "ab") as fh:
            fh.write(b"old tail\n")
        os.replace(log, paths.rotated_run_log(run))
        log.write_bytes(b"after rotation\n")
        assert proc.stdout.readline() == b"old tail\n"
        assert proc.stdout.readline() == b"after rotation\n"
        store = open_store()
        try:
            with store.write() as conn:
                conn.execute("UPDATE runs SET status = 'succeeded' WHERE id = ?", (run,))
        finally:
            store.close()
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.returncode == 0  # the run ended, so did following it
    finally:
        proc.kill()
        proc.wait()
