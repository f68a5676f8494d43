"""Hostile run rows: runs, params, samples and process lists written by hand or by
another tool, with values of the wrong type, impossible pids and times, or
text that is not JSON.

Every case: `run list` and `run show` exit 0 with what can be shown (a value
that cannot be read shows as null, a run whose owner cannot be proven alive
as lost), never a traceback, and the store byte for byte as it was (listings
only read). A `run stop` never signals a process whose identity (pid *and*
start time) the row does not prove: it exits 2 with the reason, or stops the
run without touching the process, and the process lives on.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from wbtest import wb_inprocess as wb  # no case starts a process: run them in this one

from workbench.core import paths
from workbench.store import open_store

RUN = 2  # the hostile run; run 1 is a well-formed neighbour


def _populate(home: Path) -> None:
    store = open_store()
    try:
        with store.write() as conn:
            conn.execute(
                "INSERT INTO projects (name, path, created_at) VALUES ('p', ?, 0)",
                (str(home / "p"),),
            )
            for run_id in (1, RUN):
                conn.execute(
                    "INSERT INTO runs (id, project_id, status, trainer, created_at, started_at,"
                    " ended_at, exit_code) VALUES (?, 1, 'succeeded', 'script', 10, 11, 12, 0)",
                    (run_id,),
                )
                conn.execute(
                    "INSERT INTO params (run_id, key, value) VALUES (?, 'lr', '0.1')", (run_id,)
                )
    finally:
        store.close()


def _sql(statement: str, *args: object) -> Callable[[int], None]:
    """Run `statement` against the store; `{child}` is a live process's pid."""

    def apply(child: int) -> None:
        conn = sqlite3.connect(paths.db_path())
        try:
            with conn:
                conn.execute(statement.format(child=child), args)
        finally:
            conn.close()

    return apply


def _processes(text: str | bytes) -> Callable[[int], None]:
    """The run lost, its recorded process list replaced by `text`."""

    def apply(child: int) -> None:
        _sql(f"UPDATE runs SET status = 'lost' WHERE id = {RUN}")(child)
        folder = paths.run_dir(RUN)
        folder.mkdir(parents=True, exist_ok=True)
        data = text.format(child=child) if isinstance(text, str) else text
        (folder / "processes").write_bytes(data.encode() if isinstance(data, str) else data)

    return apply


RUNNING = f"UPDATE runs SET status = 'running', ended_at = NULL, exit_code = NULL WHERE id = {RUN}"


def _running(columns: str) -> Callable[[int], None]:
    def apply(child: int) -> None:
        _sql(RUNNING)(child)
        _sql(f"UPDATE runs SET {columns} WHERE id = {RUN}")(child)

    return apply


def _sample(gpu: object, cpu: object = 50.0) -> Callable[[int], None]:
    return _sql(
        "INSERT INTO resource_samples (run_id, ts, cpu_percent, rss_bytes, gpu)"
        f" VALUES ({RUN}, 11.5, ?, 1000, ?)",
        cpu,
        gpu,
    )


# id -> (tampering, what `run show --json` then says: key -> expected value)
SHOWN: dict[str, tuple[Callable[[int], None], dict[str, object]]] = {
    "supervisor pid negative": (_running("supervisor_pid = -5"), {"status": "lost"}),
    "supervisor pid zero": (_running("supervisor_pid = 0"), {"status": "lost"}),
    "supervisor pid beyond any kernel": (
        _running("supervisor_pid = 4611686018427387904"),
        {"status": "lost"},
    ),
    "supervisor pid text": (_running("supervisor_pid = 'init'"), {"status": "lost"}),
    "supervisor pid a real number": (_running("supervisor_pid = 1.5"), {"status": "lost"}),
    "supervisor start time text": (
        _running("supervisor_pid = {child}, supervisor_started_at = 'yesterday'"),
        {"status": "lost"},
    ),
    "supervisor start time infinite": (
        _running("supervisor_pid = {child}, supervisor_started_at = 1e999"),
        {"status": "lost"},
    ),
    "supervisor start time missing": (
        _running("supervisor_pid = {child}, supervisor_started_at = NULL"),
        {"status": "lost"},
    ),
    "supervisor start time negative": (
        _running("supervisor_pid = {child}, supervisor_started_at = -1e300"),
        {"status": "lost"},
    ),
    "another host's heartbeat text": (
        _running("hostname = 'elsewhere', heartbeat_at = 'soon'"),
        {"status": "lost"},
    ),
    "another host's heartbeat infinite": (
        _running("hostname = 'elsewhere', heartbeat_at = -1e999"),
        {"status": "lost"},
    ),
    "hostname a blob": (_running("hostname = X'FF00FE'"), {"status": "lost"}),
    "started_at text": (
        _sql(f"UPDATE runs SET started_at = 'noon' WHERE id = {RUN}"),
        {"started_at": None, "duration_s": None},
    ),
    "ended_at infinite": (
        _sql(f"UPDATE runs SET ended_at = 1e999 WHERE id = {RUN}"),
        {"ended_at": None},
    ),
    "created_at text": (
        _sql(f"UPDATE runs SET created_at = 'long ago' WHERE id = {RUN}"),
        {"created_at": "1970-01-01T00:00:00Z"},
    ),
    "exit code text": (
        _sql(f"UPDATE runs SET exit_code = 'zero' WHERE id = {RUN}"),
        {"exit_code": None},
    ),
    "exit code a real number": (
        _sql(f"UPDATE runs SET exit_code = 0.5 WHERE id = {RUN}"),
        {"exit_code": None},
    ),
    "priority text": (
        _sql(f"UPDATE runs SET priority = 'urgent' WHERE id = {RUN}"),
        {"priority": 0},
    ),
    "message a blob": (
        _sql(f"UPDATE runs SET message = X'FF00FE' WHERE id = {RUN}"),
        {"message": "\ufffd\x00\ufffd"},
    ),
    "trainer a number": (_sql(f"UPDATE runs SET trainer = 42 WHERE id = {RUN}"), {"trainer": "42"}),
    "environment not JSON": (
        _sql(f"UPDATE runs SET environment = ? WHERE id = {RUN}", "{python: 3"),
        {"environment": None},
    ),
    "environment a JSON list": (
        _sql(f"UPDATE runs SET environment = '[1, 2]' WHERE id = {RUN}"),
        {"environment": None},
    ),
    "environment nested 100000 deep": (
        _sql(f"UPDATE runs SET environment = ? WHERE id = {RUN}", "[" * 100_000),
        {"environment": None},
    ),
    "environment a blob": (
        _sql(f"UPDATE runs SET environment = X'00FF' WHERE id = {RUN}"),
        {"environment": None},
    ),
    "param value not JSON": (
        _sql(f"UPDATE params SET value = 'fast please' WHERE run_id = {RUN}"),
        {"params": {"lr": "fast please"}},
    ),
    "param value a blob": (
        _sql(f"UPDATE params SET value = X'FF' WHERE run_id = {RUN}"),
        {"params": {"lr": "\ufffd"}},
    ),
    "param value nested 100000 deep": (
        _sql(f"UPDATE params SET value = ? WHERE run_id = {RUN}", "[" * 100_000),
        {"params": {"lr": "[" * 100_000}},
    ),
    "gpu sample not JSON": (_sample("{index: 0"), {"resources.gpu": None}),
    "gpu sample a JSON object": (_sample('{"index": 0}'), {"resources.gpu": None}),
    "gpu reading without an index": (_sample('[{"utilization": 50}]'), {"resources.gpu": None}),
    "gpu reading index text": (_sample('[{"index": "zero"}]'), {"resources.gpu": None}),
    "gpu reading a number": (_sample("[7, null]"), {"resources.gpu": None}),
    "gpu peak text": (
        _sample('[{"index": 0, "utilization": "hot", "memory_used": 5}]'),
        {"resources.gpu.0.utilization_max": None, "resources.gpu.0.memory_used_max": 5},
    ),
    "cpu percent text": (_sample(None, "busy"), {"resources.cpu_percent_max": None}),
}


@pytest.fixture
def child() -> Iterator[int]:
    """A live process of this test's that no row may get signalled."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def _snapshot(home: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(home)): p.read_bytes()
        for p in sorted(home.rglob("*"))
        if p.is_file() and not p.name.endswith(("-wal", "-shm", ".lock"))
    }


def _get(document: dict, dotted: str) -> object:
    value: object = document
    for part in dotted.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]  # type: ignore[index]
    return value


@pytest.mark.parametrize("case", list(SHOWN), ids=list(SHOWN))
def test_a_hostile_run_row_is_shown_without_a_traceback(case: str, wb_home: Path, child: int):
    tamper, expected = SHOWN[case]
    _populate(wb_home)
    tamper(child)
    open_store().close()  # the identity file takes the new counts now, not in a listing
    before = _snapshot(wb_home)
    listed = wb("run", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "Traceback" not in listed.stdout + listed.stderr
    assert [r["id"] for r in json.loads(listed.stdout)] == [RUN, 1]
    shown = wb("run", "show", str(RUN), "--json")
    assert shown.returncode == 0, shown.stderr
    assert "Traceback" not in shown.stdout + shown.stderr
    document = json.loads(shown.stdout)
    for key, value in expected.items():
        assert _get(document, key) == value, (key, _get(document, key))
    text = wb("run", "show", str(RUN))  # the table, for a terminal or a pipe
    assert text.returncode == 0 and "Traceback" not in text.stdout + text.stderr, text.stderr
    assert _snapshot(wb_home) == before  # listings only read
    os.kill(child, 0)  # alive: nothing signalled it


# id -> (tampering, exit code of `run stop`, a piece of its one line)
STOPPED: dict[str, tuple[Callable[[int], None], int, str]] = {
    "lost run's trainer pid without a start time": (
        _sql(f"UPDATE runs SET status = 'lost', pid = {{child}} WHERE id = {RUN}"),
        2,
        "none of its processes is alive",
    ),
    "lost run's trainer start time text": (
        _sql(
            f"UPDATE runs SET status = 'lost', pid = {{child}}, pid_started_at = 'now'"
            f" WHERE id = {RUN}"
        ),
        2,
        "none of its processes is alive",
    ),
    "lost run's trainer start time infinite": (
        _sql(
            f"UPDATE runs SET status = 'lost', pid = {{child}}, pid_started_at = 1e999"
            f" WHERE id = {RUN}"
        ),
        2,
        "none of its processes is alive",
    ),
    "lost run's session led by init": (
        _sql(
            f"UPDATE runs SET status = 'lost', supervisor_pid = 1, supervisor_started_at = 0"
            f" WHERE id = {RUN}"
        ),
        2,
        "none of its processes is alive",
    ),
    "process list with a NaN start time": (_processes("{child} nan\n"), 2, "none of its"),
    "process list with an infinite start time": (_processes("{child} inf\n"), 2, "none of its"),
    "process list with a negative start time": (_processes("{child} -1e9\n"), 2, "none of its"),
    "process list with a huge pid": (_processes("99999999999999999999 1.0\n"), 2, "none of its"),
    "process list with a negative pid": (_processes("-1 1.0\n"), 2, "none of its"),
    "process list of binary bytes": (
        _processes(bytes(range(256)) * 64),
        2,
        "none of its processes is alive",
    ),
    "process list of one long line": (_processes("1" * 100_000), 2, "none of its"),
    # Owners that cannot be proven alive: the command's reconciling marks them lost first.
    "running run's supervisor pid without a start time": (
        _running("supervisor_pid = {child}, supervisor_started_at = NULL"),
        2,
        "none of its processes is alive",
    ),
    "running run's trainer pid without a start time": (
        _running("supervisor_pid = -1, pid = {child}, pid_started_at = NULL"),
        2,
        "none of its processes is alive",
    ),
}


@pytest.mark.parametrize("case", list(STOPPED), ids=list(STOPPED))
def test_a_hostile_run_row_never_gets_another_process_stopped(
    case: str, wb_home: Path, child: int
):
    tamper, code, expected = STOPPED[case]
    _populate(wb_home)
    tamper(child)
    (wb_home / "config.toml").write_text("[runs]\nstop_grace = 1\n")
    result = wb("run", "stop", str(RUN))
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr
    os.kill(child, 0)  # still alive: its identity was never proven
    assert subprocess.run(["true"]).returncode == 0  # this process, too, was left alone


def test_an_event_whose_data_is_not_json_reads_as_none(wb_home: Path):
    from workbench.activity import recent_events

    _populate(wb_home)
    store = open_store()
    try:
        with store.write() as conn:
            for data in ("{not json", "[1, 2]", "7", "[" * 100_000):
                conn.execute(
                    "INSERT INTO events (ts, kind, message, data) VALUES (1, 'x', 'm', ?)", (data,)
                )
        assert [e["data"] for e in recent_events(store, 4)] == [None] * 4
    finally:
        store.close()


def test_the_corpus_is_large_enough():
    assert len(SHOWN) + len(STOPPED) + 1 >= 40
